"""MCP prompts as `/` commands and resources as context, through the real window, with the
real stdio test server (tests/support/mcp_server.py) and the loopback OpenAI server: only the
keyboard is used to pick, and the requests sent carry the prompt's text and the resource's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit, QMenu

from desktop_chat.core.tools.catalog import PromptInfo, ResourceInfo, ResourceTemplate
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, wait_until
from tests.ui.test_tools_window import with_tools


def key(chat: ChatDriver, which: Qt.Key) -> None:
    QTest.keyClick(chat.window.composer, which)


def menu_labels(chat: ChatDriver) -> list[str]:
    return [o.label for o in chat.window.tools.context.menu.offers]  # type: ignore[union-attr]


def user_text(server: LoopbackServer) -> str:
    body = server.replies_asked[-1].body
    assert body is not None
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else " ".join(
        p.get("text", "") for p in content)


def test_a_prompt_with_arguments_by_keyboard_only(
        make_window: Callable[..., ChatDriver], server: LoopbackServer,
        tmp_path: Path) -> None:
    chat = with_tools(make_window, tmp_path)
    window = chat.window
    context = window.tools.context  # type: ignore[union-attr]
    composer = window.composer
    composer.setFocus()
    QTest.keyClicks(composer, "/")
    assert context.menu.isVisible()
    assert menu_labels(chat)[:3] == ["test › review", "test › brief", "test › with-notes"]
    assert "test › notes" in menu_labels(chat)  # resources too, to attach
    key(chat, Qt.Key.Key_Down)
    key(chat, Qt.Key.Key_Down)
    key(chat, Qt.Key.Key_Up)
    assert context.menu.list.currentRow() == 1  # brief
    assert QApplication.focusWidget() is composer  # the menu never takes the focus
    key(chat, Qt.Key.Key_Escape)  # closes the menu, leaves the text, stops nothing
    assert not context.menu.isVisible() and composer.toPlainText() == "/"
    composer.clear()
    QTest.keyClicks(composer, "/etc/hosts")  # matches nothing: no menu, Enter would send it
    assert not context.menu.isVisible()
    composer.clear()
    QTest.keyClicks(composer, "/rev")  # typing filters
    assert menu_labels(chat) == ["test › review"]
    key(chat, Qt.Key.Key_Down)  # wraps around a single row: still review
    key(chat, Qt.Key.Key_Tab)
    form = context.form
    assert form.isVisible() and not context.menu.isVisible()
    code = form.findChild(QLineEdit, "promptArgument_code")
    assert code is not None and QApplication.focusWidget() is code
    QTest.keyClick(code, Qt.Key.Key_Return)  # `code` is required: the form says so
    assert form.isVisible() and "code" in form.message.text()
    QTest.keyClicks(code, "def f(): return 1/0")
    QTest.keyClick(code, Qt.Key.Key_Tab)
    language = form.findChild(QLineEdit, "promptArgument_language")
    assert QApplication.focusWidget() is language
    QTest.keyClicks(language, "Python 3")
    QTest.keyClick(language, Qt.Key.Key_Return)
    wait_until(chat.loop, lambda: "Please review" in composer.toPlainText(), 20)
    expected = "Please review this Python 3 code for bugs:\n\ndef f(): return 1/0"
    assert composer.toPlainText() == expected  # visible, editable, not sent yet
    assert server.replies_asked == []
    assert QApplication.focusWidget() is composer
    server.push(Scenario(deltas=["It divides by zero."]))
    key(chat, Qt.Key.Key_Return)
    chat.wait_for_reply()
    assert user_text(server) == expected


def test_escape_in_the_form_cancels_and_keeps_the_message(
        make_window: Callable[..., ChatDriver], tmp_path: Path) -> None:
    chat = with_tools(make_window, tmp_path)
    context = chat.window.tools.context  # type: ignore[union-attr]
    QTest.keyClicks(chat.window.composer, "/review")
    key(chat, Qt.Key.Key_Return)
    code = context.form.findChild(QLineEdit, "promptArgument_code")
    QTest.keyClick(code, Qt.Key.Key_Escape)
    assert not context.form.isVisible()
    assert QApplication.focusWidget() is chat.window.composer


def picker_actions(chat: ChatDriver) -> dict[str, QAction]:
    """Click the attach button; the resources its menu offers ("From MCP server")."""
    for menu in chat.window.findChildren(QMenu, "attachMenu"):
        menu.close()  # a real click on an item closes it; `trigger()` does not
    QTest.mouseClick(chat.window.attachButton, Qt.MouseButton.LeftButton)
    menus = [m for m in chat.window.findChildren(QMenu, "attachMenu") if m.isVisible()]
    assert len(menus) == 1
    picker = menus[0].findChild(QMenu, "resourcePicker")
    assert picker is not None
    return {a.text(): a for a in picker.actions()}


# a popup menu on the offscreen platform: noise of the platform, not a defect of ours
@pytest.mark.qt_log_ignore("does not support raise", "does not support grabbing")
def test_resources_attach_as_context_and_are_sent(
        make_window: Callable[..., ChatDriver], server: LoopbackServer,
        tmp_path: Path) -> None:
    chat = with_tools(make_window, tmp_path)
    window = chat.window
    composer = window.composer
    # the `/` menu: a Markdown resource becomes a document chip
    QTest.keyClicks(composer, "/release notes")  # a space ends the command word: no menu
    assert not window.tools.context.menu.isVisible()  # type: ignore[union-attr]
    composer.clear()
    QTest.keyClicks(composer, "/notes")
    # the name first, then names holding it, then descriptions ("Notes on a topic.")
    assert menu_labels(chat) == ["test › notes", "test › with-notes", "test › topic"]
    key(chat, Qt.Key.Key_Return)
    assert composer.toPlainText() == ""
    wait_until(chat.loop, lambda: [d.name for d in window.documentStrip.documents]
               == ["notes.md"], 20)
    # the attach button's resource picker: an image resource becomes an image
    actions = picker_actions(chat)
    assert list(actions) == ["test › notes", "test › pixel.png", "test › archive.bin"]
    actions["test › pixel.png"].trigger()
    wait_until(chat.loop, lambda: len(window.attachmentStrip.attachments) == 1, 20)
    assert window.attachmentStrip.attachments[0].mime == "image/png"
    # other binary data is refused, saying why
    picker_actions(chat)["test › archive.bin"].trigger()
    wait_until(chat.loop, lambda: window.errorBanner.isVisible(), 20)
    assert "cannot be sent to a model" in window.errorBanner.text()
    assert [d.name for d in window.documentStrip.documents] == ["notes.md"]
    server.push(Scenario(deltas=["HELIOTROPE, on Thursday."]))
    chat.send("What is the code word?")
    chat.wait_for_reply()
    sent = user_text(server)
    assert "The launch code word is HELIOTROPE" in sent and "What is the code word?" in sent
    body = server.replies_asked[-1].body
    assert body is not None and any(p.get("type") == "image_url"
                                    for p in body["messages"][-1]["content"])
    prompt = window.controller.session.messages[-2]
    assert [d.name for d in prompt.documents] == ["notes.md"]


def test_a_prompt_that_embeds_a_resource(
        make_window: Callable[..., ChatDriver], server: LoopbackServer,
        tmp_path: Path) -> None:
    chat = with_tools(make_window, tmp_path)
    window = chat.window
    QTest.keyClicks(window.composer, "/with")
    assert menu_labels(chat) == ["test › with-notes"]
    key(chat, Qt.Key.Key_Enter)
    wait_until(chat.loop, lambda: [d.name for d in window.documentStrip.documents]
               == ["notes.md"], 20)
    assert window.composer.toPlainText() == "What do the notes say about the launch?"
    server.push(Scenario(deltas=["Thursday."]))
    key(chat, Qt.Key.Key_Return)
    chat.wait_for_reply()
    sent = user_text(server)
    assert "HELIOTROPE" in sent and sent.endswith("What do the notes say about the launch?")


def test_a_resource_of_a_server_that_is_not_ready_is_refused_in_words(
        make_window: Callable[..., ChatDriver], tmp_path: Path) -> None:
    chat = with_tools(make_window, tmp_path)
    context = chat.window.tools.context  # type: ignore[union-attr]
    offers = context.offers()
    assert {type(o) for o in offers} == {PromptInfo, ResourceInfo, ResourceTemplate}
    chat.window.tools.service.host.restart("test")  # type: ignore[union-attr]
    gone = next(o for o in offers if isinstance(o, ResourceInfo))
    context.attach_resource(gone)  # while it restarts: said in words, nothing attached
    assert chat.window.documentStrip.reading == ["notes"]  # on its way: sending waits
    wait_until(chat.loop, lambda: chat.window.errorBanner.isVisible(), 20)
    assert "The server 'test' is not running (starting)" in chat.window.errorBanner.text()
    assert chat.window.documentStrip.reading == [] == chat.window.documentStrip.documents


def test_a_resource_template_asks_for_its_variables(
        make_window: Callable[..., ChatDriver], server: LoopbackServer,
        tmp_path: Path) -> None:
    chat = with_tools(make_window, tmp_path)
    window = chat.window
    form = window.tools.context.form  # type: ignore[union-attr]
    QTest.keyClicks(window.composer, "/topic")
    assert menu_labels(chat) == ["test › topic"]
    key(chat, Qt.Key.Key_Tab)
    field = form.findChild(QLineEdit, "promptArgument_topic")
    assert field is not None and QApplication.focusWidget() is field
    assert form.insertButton.text() == "Attach"
    QTest.keyClicks(field, "space travel")
    QTest.keyClick(field, Qt.Key.Key_Return)
    wait_until(chat.loop, lambda: [d.name for d in window.documentStrip.documents]
               == ["topic (space travel).txt"], 20)
    assert window.composer.toPlainText() == ""
    server.push(Scenario(deltas=["Nothing yet."]))
    chat.send("Anything on space travel?")
    chat.wait_for_reply()
    assert "Notes on space travel: nothing yet." in user_text(server)
