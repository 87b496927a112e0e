"""What a server or a model says stays data in the window: it is shown as plain text (an
error page cannot pose as the app's own message), never shows a key the server quoted
(redacted as the log redacts it), cannot drive the app's own actions, and any stored
conversation exports, whatever its dates."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QImage, QTextDocument
from PySide6.QtGui import Qt as QtGui
from PySide6.QtWidgets import QApplication, QLabel, QListWidget, QMessageBox, QToolButton, QWidget

from desktop_chat.core.render.actions import Action, link
from desktop_chat.ui.crash import show_error_dialog
from tests.conftest import TEST_KEY
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.app_support import open_settings
from tests.ui.conftest import ChatDriver, run_for, until, wait_until
from tests.ui.test_images_window import drop_files
from tests.ui.test_rendering import click_anchor, click_at

# A server's error page dressed as the app's own message.
SPOOF = ('<html><body><p style="color:green">&#10004; Your session expired. '
         '<b>Sign in again</b> at <a href="https://evil.example">our page</a></p></body></html>')
HOSTILE = '<b style="color:green">✔ gpt</b>'  # a model name a server lists, a prompt title
# Unlike TEST_KEY ("sk-..."), nothing about it looks like a key: only knowing it redacts it.
PLAIN_KEY = "gsk_live_Q7w8E9r0T1y2PLAINKEY"


def failing(status: int, body: object, times: int = 1) -> list[Scenario]:
    """`times` answers with `status` and `body`; a 503 is retried at once (Retry-After: 0)."""
    headers = {"Retry-After": "0"}
    if isinstance(body, str):
        headers["Content-Type"] = "text/html"
    return [Scenario(status=status, error_body=body, headers=headers)] * times  # type: ignore[arg-type]


def widgets(chat: ChatDriver) -> Iterator[QWidget]:
    """The window, its dialogs and every widget in them."""
    tops = [chat.window, *(w for w in QApplication.topLevelWidgets()
                           if w.isVisible() and w is not chat.window)]
    for top in tops:
        yield top
        yield from top.findChildren(QWidget)


def as_shown(tooltip: str) -> str:
    """A tooltip's text as Qt shows it: rich text when it looks like HTML."""
    if not QtGui.mightBeRichText(tooltip):
        return tooltip
    doc = QTextDocument()
    doc.setHtml(tooltip)
    return doc.toPlainText()


def tooltips(chat: ChatDriver) -> Iterator[tuple[str, str]]:
    """(where, tooltip) for every widget and every list row."""
    for widget in widgets(chat):
        if widget.toolTip():
            yield widget.objectName() or type(widget).__name__, widget.toolTip()
        if isinstance(widget, QListWidget):
            for row in range(widget.count()):
                item = widget.item(row)
                yield f"{widget.objectName()} row {row}", item.toolTip()


def everything_shown(chat: ChatDriver) -> str:
    """Every text the window shows now: labels, message boxes, the transcript, the status
    bar, tooltips as they appear."""
    texts = [chat.transcript_text(), chat.window.statusBar().currentMessage()]
    texts += [w.text() for w in widgets(chat) if isinstance(w, QLabel)]
    texts += [as_shown(tip) for _where, tip in tooltips(chat)]
    return "\n".join(texts)


def strict_json(text: str) -> dict:
    """As any JSON reader reads it: NaN or Infinity (Python writes them) fail."""
    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


# -- plain text ------------------------------------------------------------------------------



def press_test_connection(chat: ChatDriver) -> tuple[Any, Any]:
    """Open Settings and press the first profile's Test connection; wait inside the loop."""
    dialog = open_settings(chat)
    form = dialog.providers.forms()[0]

    async def press() -> None:
        form.testButton.click()
        await until(chat.loop, form.testButton.isEnabled)

    chat.loop.run_until_complete(press())
    return dialog, form

def test_an_html_error_page_is_named_in_words_with_its_text_under_details(
        chat: ChatDriver, server: LoopbackServer) -> None:
    """The page is never shown raw, nor obeyed: the status in words in the banner, the
    page's text (tags stripped, entities decoded) under Details, folded until asked for."""
    server.push(*failing(503, SPOOF, times=3))
    chat.send("hello")
    chat.wait_for_reply()
    assert not chat.window.errorBanner.isVisible()  # said once: in the card
    view = chat.window.transcript
    assert view.error_text() == ("The server is temporarily unavailable (HTTP 503). Try again "
                                 "in a moment.")
    details = next(bar.findChild(QToolButton, "detailsButton") for bar in
                   (view.failureBar, view.lastBar) if bar.findChild(QToolButton, "detailsButton"))
    details.click()  # the page's text, folded until asked for: tags stripped, never obeyed
    assert view.error_text().endswith("✔ Your session expired. Sign in again at our page")
    assert "<b>" not in chat.transcript_text()


def test_no_widget_showing_untrusted_text_reads_it_as_html(
        chat: ChatDriver, server: LoopbackServer) -> None:
    """The server's model names, its error pages and a prompt-made title, everywhere they
    appear: every label showing them is plain text, every tooltip shows them as they are."""
    window = chat.window
    server.models = [HOSTILE, "test-model"]
    server.models_scenario = Scenario()
    window.modelPicker.setCurrentText(HOSTILE)
    window.modelPicker.commit()
    server.push(Scenario(deltas=["An answer."]))
    chat.send(f"{HOSTILE} what is this?")  # the conversation is titled from it
    chat.wait_for_reply()
    server.push(*failing(503, SPOOF, times=3))
    chat.send("and again")
    chat.wait_for_reply()
    assert window.modelLabel.text().startswith(f"Model: {HOSTILE}")

    server.models_scenario = Scenario(status=500, error_body=SPOOF)
    dialog, form = press_test_connection(chat)
    assert "HTTP 500" in form.testResult.text()
    assert "<b>" not in form.testResult.text()  # an error page is named, never quoted

    showing = {}
    for widget in widgets(chat):
        if isinstance(widget, QLabel) and ("<b" in widget.text() or "&#" in widget.text()):
            name = widget.objectName() or widget.accessibleName() or widget.text()[:40]
            showing[name] = widget.textFormat()
    assert {"Model"} <= showing.keys(), showing  # not vacuous
    assert {name: fmt for name, fmt in showing.items()
            if fmt is not Qt.TextFormat.PlainText} == {}

    tips = list(tooltips(chat))
    obeyed = [(where, tip) for where, tip in tips if HOSTILE in tip and QtGui.mightBeRichText(tip)]
    assert obeyed == []
    shown = [as_shown(tip) for _where, tip in tips]
    assert any(tip.startswith(f"Model: {HOSTILE}") for tip in shown), tips  # status line
    assert f"{HOSTILE} what is this?" in shown, tips  # the conversation's row
    dialog.reject()


def test_an_image_name_is_shown_as_it_is(
        chat: ChatDriver, server: LoopbackServer, tmp_path: Path) -> None:
    """A file's name (or an imported image's) in the tooltips of its thumbnails."""
    name = "<b>✔ spoof<i>.png"
    image = QImage(24, 16, QImage.Format.Format_RGB32)
    image.fill(QColor("#d93025"))
    image.save(str(tmp_path / name))
    drop_files(chat, tmp_path / name)
    (tile,) = [label for label in chat.window.attachmentStrip.findChildren(QLabel)
               if not label.pixmap().isNull()]
    assert as_shown(tile.toolTip()).startswith(f"{name} (")
    chat.send("what is it?")
    chat.wait_for_reply()
    document = chat.window.transcript.document()
    tips, block = [], document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            tips.append(it.fragment().charFormat().toolTip())
            it += 1
        block = block.next()
    assert [as_shown(tip) for tip in tips if tip] == [name]


def test_dialogs_show_their_text_as_plain_text(
        chat: ChatDriver, server: LoopbackServer, tmp_path: Path) -> None:
    """The link confirmation (the address is the model's) and the unexpected-error dialog."""
    server.push(Scenario(deltas=["See [the page](https://example.com/a<b>b</b>)."]))
    chat.send("a link please")
    chat.wait_for_reply()
    click_anchor(chat, "https://example.com/a%3Cb%3Eb%3C/b%3E")
    show_error_dialog(chat.window, tmp_path / "desktop-chat.log", ValueError("<b>x</b>"))
    boxes = {box.objectName(): box for box in chat.window.findChildren(QMessageBox)}
    assert {"linkDialog", "errorDialog"} <= boxes.keys()
    for box in boxes.values():
        assert box.textFormat() is Qt.TextFormat.PlainText, box.objectName()
        labels = [label for label in box.findChildren(QLabel) if label.text()]
        assert labels and all(label.textFormat() is Qt.TextFormat.PlainText
                              for label in labels), box.objectName()
        box.close()


# -- keys --------------------------------------------------------------------------------------

def quoting(key: str) -> str:
    return f"Invalid request from key {key} (org-1). Check your plan."


TRIGGERS: dict[str, Callable[[str], list[Scenario]]] = {
    "http-400": lambda key: failing(400, {"error": {"message": quoting(key)}}),
    "http-500": lambda key: failing(500, {"error": {"message": quoting(key)}}),
    "http-503-text": lambda key: failing(503, f"<html>{quoting(key)}</html>", times=3),
    "in-stream": lambda key: [Scenario(deltas=["Part one. ", "Part two."],
                                       stream_error_after_events=1,
                                       stream_error={"message": quoting(key),
                                                     "type": "server_error"})],
}


@pytest.mark.parametrize("key", [TEST_KEY, PLAIN_KEY], ids=["sk-shaped", "known-only"])
@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_a_key_the_server_quotes_is_never_shown(
        make_window: Callable[..., ChatDriver], server: LoopbackServer, key: str,
        trigger: str) -> None:
    chat = make_window(key=key)
    server.push(*TRIGGERS[trigger](key))
    chat.send("hello")
    chat.wait_for_reply()
    view = chat.window.transcript
    for bar in (view.failureBar, view.lastBar):  # what the server sent, under Details
        if (details := bar.findChild(QToolButton, "detailsButton")) is not None:
            details.click()
    shown = chat.window.shown_error()  # a reply's error: in its card in the transcript
    assert "Invalid request from key [REDACTED] (org-1)" in shown  # it was said, redacted
    if trigger == "in-stream":  # the reply is kept, with the error under it
        assert "Part one." in chat.transcript_text()
        assert "The server reported an error while replying: Invalid request from key " \
               "[REDACTED]" in chat.transcript_text()
        conversation = chat.window.controller.conversation_id
        chat.window.controller.new_chat()
        chat.window.controller.open_chat(conversation)  # the note as stored, shown again
        wait_until(chat.loop, lambda: "Part one." in chat.transcript_text())
        assert "[REDACTED]" in chat.transcript_text()
    assert key not in everything_shown(chat)


def test_a_key_in_a_connection_test_is_never_shown(
        make_window: Callable[..., ChatDriver], server: LoopbackServer) -> None:
    """Settings > Test connection says what the server answered."""
    chat = make_window(key=PLAIN_KEY)
    server.models_scenario = failing(500, {"error": {"message": quoting(PLAIN_KEY)}})[0]
    dialog, form = press_test_connection(chat)
    assert "Invalid request from key [REDACTED] (org-1)" in form.testResult.text()
    assert PLAIN_KEY not in everything_shown(chat)
    dialog.reject()


def test_the_status_bar_never_shows_a_key(chat: ChatDriver, server: LoopbackServer) -> None:
    """A refused link is named in the status bar: one that carries the key is redacted."""
    server.push(Scenario(deltas=[f"Open [the console](ftp://example.com/?key={TEST_KEY})."]))
    chat.send("where is it?")
    chat.wait_for_reply()
    click_anchor(chat, f"ftp://example.com/?key={TEST_KEY}")
    message = chat.window.statusBar().currentMessage()
    assert message.startswith("Did not open 'ftp://example.com/?key=[REDACTED]'")
    assert TEST_KEY not in everything_shown(chat)


# -- the view's own actions ------------------------------------------------------------------


def test_a_reply_cannot_use_any_of_the_views_actions(
        chat: ChatDriver, server: LoopbackServer) -> None:
    """Every action the view has, as a markdown link in a reply: clicked, none does
    anything; copied, every link keeps its text (an http one included)."""
    hrefs = [link(action, 0 if action.numbered else None) for action in Action]
    reply = " ".join(f"[go{n}]({href})" for n, href in enumerate(hrefs))
    reply += " and [a page](https://example.com/)."
    server.push(Scenario(deltas=[reply]))
    chat.send("tempt me")
    chat.wait_for_reply()
    view = chat.window.transcript
    for n in range(len(hrefs)):
        click_at(chat, view.document().find(f"go{n}").selectionStart() + 1)
    run_for(chat.loop, 0.2)
    assert len(server.replies_asked) == 1
    assert chat.window.composer.toPlainText() == ""
    assert not chat.window.errorBanner.isVisible()
    assert chat.window.statusBar().currentMessage() == ""
    view.selectAll()
    view.copy()
    copied = chat.clipboard()
    assert all(f"[go{n}]({href})" in copied for n, href in enumerate(hrefs)), copied
    assert "and a page." in copied


def test_our_own_links_with_arguments_out_of_range_do_nothing(
        chat: ChatDriver, server: LoopbackServer) -> None:
    """Well-formed links of ours that name nothing here (a message past the end, a reply
    rather than a prompt, a message of another conversation) are ignored, never an error."""
    chat.send("first chat")
    chat.wait_for_reply()
    elsewhere = chat.window.controller.session.messages[-1].id
    chat.window.controller.new_chat()
    chat.send("second chat")
    chat.wait_for_reply()
    server.requests.clear()
    for action, number in [(Action.EDIT, 999), (Action.EDIT, 1), (Action.COPY_REPLY, 999),
                           (Action.COPY_REPLY, 0), (Action.COPY_CODE, 5), (Action.TOGGLE, 3),
                           (Action.PREVIOUS, elsewhere), (Action.NEXT, elsewhere),
                           (Action.PREVIOUS, 10**17), (Action.NEXT, 0), (Action.EDIT, 10**17),
                           (Action.COPY_REPLY, 10**17)]:
        chat.window.transcript.anchorClicked.emit(QUrl(link(action, number)))
        run_for(chat.loop, 0.05)
    assert server.requests == []
    assert chat.window.composer.toPlainText() == ""
    assert not chat.window.errorBanner.isVisible()
    assert "second chat" in chat.transcript_text() and "first chat" not in chat.transcript_text()
    assert chat.window.findChild(QMessageBox, "errorDialog") is None


# -- exports -----------------------------------------------------------------------------------


@pytest.mark.parametrize("when", [1e308, math.inf, -1e308], ids=repr)
def test_any_stored_conversation_exports(chat: ChatDriver, tmp_path: Path, when: float) -> None:
    chat.send("When was this?")
    chat.wait_for_reply()
    store = chat.window.controller.store
    assert store is not None
    with store._conn:
        store._conn.execute("UPDATE conversations SET created_at = ?", (when,))
        store._conn.execute("UPDATE messages SET created_at = ?", (when,))
    menu = chat.window.fileMenu
    assert menu.export_to(tmp_path / "chat.md", "markdown")
    assert "When was this?" in (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert menu.export_to(tmp_path / "chat.json", "json")
    assert menu.export_to(tmp_path / "all.json", "all")
    for name in ("chat.json", "all.json"):
        data = strict_json((tmp_path / name).read_text(encoding="utf-8"))
        assert data["conversations"][0]["messages"][0]["content"] == "When was this?"
    assert not chat.window.errorBanner.isVisible()
