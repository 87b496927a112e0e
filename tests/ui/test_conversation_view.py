"""The conversation view of issue #14: its interaction defects (1, 2, 3, 14), each reproduced
the way a new user met it, and the pieces of the new look that can be checked by behaviour
(the last reply's buttons, the waiting indicator, the error card with its details)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase, QFontMetricsF
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolButton

from desktop_chat.core.model.message import Message, ReplyState, Role
from desktop_chat.core.render.actions import Action
from desktop_chat.core.render.markdown import Theme
from desktop_chat.ui.transcript import Transcript
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver
from tests.ui.test_rendering import click_anchor

CUT = 350  # bytes after which the server drops the connection: "Part one, " has arrived


def offered(chat: ChatDriver, name: str) -> bool:
    bar = chat.window.transcript.lastBar
    return not bar.isHidden() and bar.findChild(QToolButton, name) is not None


def contents(chat: ChatDriver) -> list[str]:
    return [m.content for m in chat.window.controller.session.messages]


def two_exchanges(chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["Answer one."]), Scenario(deltas=["Answer two."]))
    chat.send("Question one")
    chat.wait_for_reply()
    chat.send("Question two")
    chat.wait_for_reply()


# -- defect 1: editing a sent message happens in place; Esc cancels ------------------------

def test_edit_is_in_place_and_esc_cancels_with_nothing_changed(
        chat: ChatDriver, server: LoopbackServer) -> None:
    two_exchanges(chat, server)
    before = contents(chat)
    click_anchor(chat, Action.EDIT, 0)
    editor = chat.window.transcript.editor
    assert editor.isVisible() and editor.box.toPlainText() == "Question one"
    assert chat.window.composer.toPlainText() == ""  # the composer is not involved
    editor.box.setPlainText("Question one, changed")
    QTest.keyClick(editor.box, Qt.Key.Key_Escape)
    assert not editor.isVisible()
    assert contents(chat) == before
    # The next thing typed is a new message at the end, not a replacement of the first.
    server.push(Scenario(deltas=["Answer three."]))
    chat.send("Question three")
    chat.wait_for_reply()
    assert contents(chat) == [*before, "Question three", "Answer three."]
    assert server.requests[-1].body["messages"][0]["content"] == "Question one"


def test_edit_save_and_send_makes_a_branch_in_place(
        chat: ChatDriver, server: LoopbackServer) -> None:
    two_exchanges(chat, server)
    click_anchor(chat, Action.EDIT, 2)
    editor = chat.window.transcript.editor
    editor.box.setPlainText("Question two, better")
    server.push(Scenario(deltas=["Better answer."]))
    editor.saveButton.click()
    chat.wait_for_reply()
    assert not editor.isVisible()
    assert contents(chat) == ["Question one", "Answer one.", "Question two, better",
                              "Better answer."]


# -- defect 2: a failed send after a cut stream keeps Retry and Continue ---------------------

def test_failed_send_after_a_cut_keeps_retry_and_continue(
        chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["Part one, ", "part two"], disconnect_after_bytes=CUT))
    chat.send("Long answer please")
    chat.wait_for_reply()
    assert offered(chat, "retryButton") and offered(chat, "continueButton")
    server.push(Scenario(status=500))
    chat.send("Something else")
    chat.wait_for_reply()
    assert chat.window.composer.toPlainText() == "Something else"  # handed back
    assert offered(chat, "retryButton") and offered(chat, "continueButton")
    # said once, in a card where the reply would have been; no banner repeats it
    assert chat.window.transcript.error_text()
    assert not chat.window.errorBanner.isVisible()
    assert not chat.window.transcript.failureBar.isHidden()
    # and Continue still works
    server.push(Scenario(deltas=[" and the rest."]))
    click_anchor(chat, Action.CONTINUE)
    chat.wait_for_reply()
    assert contents(chat)[-1].startswith("Part one, ") and contents(chat)[-1].endswith(
        " and the rest.")


# -- defect 3: Continue extends the interrupted reply in place ------------------------------

def test_continue_extends_the_reply_in_place(chat: ChatDriver, server: LoopbackServer) -> None:
    from desktop_chat.core.chat.session import CONTINUE_INSTRUCTION

    server.push(Scenario(deltas=["Part one, ", "part two"], disconnect_after_bytes=CUT))
    chat.send("Long answer please")
    chat.wait_for_reply()
    partial = contents(chat)[-1]
    server.push(Scenario(deltas=[" and the rest."]))
    click_anchor(chat, Action.CONTINUE)
    chat.wait_for_reply()
    messages = chat.window.controller.session.messages
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT]  # no new turn
    assert messages[-1].content == partial + " and the rest."
    assert messages[-1].state is ReplyState.COMPLETE
    # the instruction went to the server once, and nowhere else
    sent = server.requests[-1].body["messages"]
    assert sent[-1] == {"role": "user", "content": CONTINUE_INSTRUCTION}
    assert sent[-2] == {"role": "assistant", "content": partial}
    text = chat.transcript_text()
    assert CONTINUE_INSTRUCTION not in text and "continue" not in text.lower()
    assert text.count(partial.strip()) == 1
    store, cid = chat.window.controller.store, chat.window.controller.conversation_id
    assert store is not None and cid is not None
    stored = store.active_path(cid)
    assert [(m.role, m.content) for m in stored] == [
        (Role.USER, "Long answer please"), (Role.ASSISTANT, partial + " and the rest.")]
    chat.copy_last_reply()
    assert chat.clipboard() == partial + " and the rest."


# -- defect 14: emoji are drawn, not boxes ----------------------------------------------------

def test_emoji_have_a_font(qapp) -> None:
    from desktop_chat.ui import emoji_font

    family = emoji_font.ensure_emoji_font()
    assert family is not None
    assert QFontMetricsF(QFont(family)).inFontUcs4(emoji_font.SAMPLE)
    if emoji_font.platform_emoji_family() is None or family == "OpenMoji Color":
        # the bundled font is the application's emoji fallback
        assert family in QFontDatabase.applicationEmojiFontFamilies()


# -- the look, by behaviour ---------------------------------------------------------------------

def test_waiting_indicator_until_the_first_token_then_nothing_animates(qapp) -> None:
    view = Transcript(Theme())
    view.resize(800, 600)
    view.show()
    view.begin_reply("m", 1)
    assert view.waiting.animating
    view.append_reply_text("First words")
    assert not view.waiting.animating and view.waiting.isHidden()


def test_error_card_shows_details_on_demand(qapp) -> None:
    view = Transcript(Theme())
    view.resize(800, 600)
    view.show()
    view.show_messages([
        Message.of(Role.USER, "Hi"),
        Message.of(Role.ASSISTANT, "Half", state=ReplyState.INTERRUPTED,
                   error="The server failed.\n\nHTTP 502: upstream closed"),
    ])
    assert view.error_text() == "The server failed."
    details = view.lastBar.findChild(QToolButton, "detailsButton")
    assert details is not None
    details.click()
    assert view.error_text() == "The server failed.\nHTTP 502: upstream closed"
    assert view.lastBar.findChild(QToolButton, "retryButton") is not None


def test_last_reply_buttons_always_others_on_hover(qapp) -> None:
    view = Transcript(Theme())
    view.resize(800, 600)
    view.show()
    view.show_messages([Message.of(Role.USER, "One"), Message.of(Role.ASSISTANT, "Uno"),
                        Message.of(Role.USER, "Two"), Message.of(Role.ASSISTANT, "Dos")])
    assert not view.lastBar.isHidden() and view.lastBar.row.index == 3
    assert view.lastBar.findChild(QToolButton, "regenerateButton") is not None
    assert view.hoverBar.isHidden()
    first_reply = view._rows[1]
    view.show_actions_for(first_reply)
    assert not view.hoverBar.isHidden()
    assert view.hoverBar.findChild(QToolButton, "copyButton") is not None
    assert view.hoverBar.findChild(QToolButton, "regenerateButton") is None  # last only


def test_a_long_code_block_keeps_its_header_in_sight(qapp) -> None:
    lines = "\n".join(f"    total += step({i})" for i in range(80))
    view = Transcript(Theme())
    view.resize(800, 500)
    view.show()
    view.show_messages([Message.of(Role.USER, "Code"),
                        Message.of(Role.ASSISTANT, f"```python\ndef f():\n{lines}\n```\n")])
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    assert not view.stickyHeader.isHidden()
    copied: list[str] = []
    view.code_copy_requested.connect(copied.append)
    view.stickyHeader.copyButton.click()
    assert copied == [f"def f():\n{lines}\n"]
    bar.setValue(0)
    assert view.stickyHeader.isHidden()
