"""The controller's send rules, through the real window: every way of starting a reply (Send,
Regenerate, Continue, Edit) obeys the same block, and a history that cannot be written loses
nothing the user typed and leaves nothing half-done (send, rename, delete).

The history failures are real: another connection holds SQLite's write lock, as another
process or a stuck backup would, and the app's store gives up after a short busy timeout.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from desktop_chat.core.history.store import HISTORY_FILE
from desktop_chat.core.render.actions import Action
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, wait_until
from tests.ui.test_rendering import click_anchor

BLOCKED = "The offline engine is still starting…"


def banner(chat: ChatDriver) -> str:
    """The error shown: a reply's in its card in the transcript, others in the banner."""
    shown = chat.window.shown_error()
    assert shown, "no error shown"
    return shown


def titles(chat: ChatDriver) -> list[str]:
    view = chat.window.conversationList
    return [view.item(i).text() for i in range(view.count())]


@contextmanager
def history_locked(chat: ChatDriver) -> Iterator[None]:
    """Hold the history's write lock from another connection while the block runs."""
    store = chat.window.controller.store
    assert store is not None  # the app's own connection waits briefly, then gives up
    other = sqlite3.connect(store.path.parent / HISTORY_FILE, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def one_exchange(chat: ChatDriver, server: LoopbackServer, answer: str = "An answer.") -> int:
    server.push(Scenario(deltas=[answer]))
    chat.send("A question")
    chat.wait_for_reply()
    conversation_id = chat.window.controller.conversation_id
    assert conversation_id is not None and answer in chat.transcript_text()
    server.requests.clear()
    return conversation_id


# -- a history that cannot be written -----------------------------------------------------------


def test_a_prompt_the_history_cannot_save_stays_in_the_composer(
        chat: ChatDriver, server: LoopbackServer) -> None:
    with history_locked(chat):
        chat.send("Please keep this text")
        assert chat.window.composer.toPlainText() == "Please keep this text"
        assert "could not be saved" in banner(chat)
        assert "still in the message box" in banner(chat)
        assert not chat.window.stopButton.isEnabled()
        assert "Please keep this text" not in chat.transcript_text()
    assert server.requests == []  # nothing was sent that the history does not have
    assert chat.window.controller.session.messages == []
    assert chat.window.library.conversations() == []  # no empty conversation left behind
    # Once the history is writable again, Enter sends the same text.
    server.push(Scenario(deltas=["Kept and sent."]))
    chat.press_enter()
    chat.wait_for_reply()
    assert "Kept and sent." in chat.transcript_text()
    assert chat.window.composer.toPlainText() == ""


def test_a_follow_up_the_history_cannot_save_changes_nothing(
        chat: ChatDriver, server: LoopbackServer) -> None:
    one_exchange(chat, server)
    before = [m.content for m in chat.window.controller.session.messages]
    with history_locked(chat):
        chat.send("A second question")
    assert chat.window.composer.toPlainText() == "A second question"
    assert [m.content for m in chat.window.controller.session.messages] == before
    assert server.requests == []


def test_a_rename_the_history_cannot_save_keeps_the_old_title(
        chat: ChatDriver, server: LoopbackServer) -> None:
    conversation_id = one_exchange(chat, server)
    old = titles(chat)
    with history_locked(chat):
        row = chat.window.conversationList.item(0)  # edited in place, as the row's editor does
        row.setText("A new title")
        assert "could not be renamed" in banner(chat)
    assert titles(chat) == old
    assert chat.window.controller.session.conversation.title == "A question"
    stored = chat.window.controller.store.conversation(conversation_id)
    assert stored is not None and stored.title == "A question"


def test_a_delete_the_history_cannot_save_keeps_the_conversation(
        chat: ChatDriver, server: LoopbackServer) -> None:
    conversation_id = one_exchange(chat, server)
    with history_locked(chat):
        chat.window.sidebar.delete_requested.emit(conversation_id)
        assert "could not be deleted" in banner(chat)
    assert chat.window.undoButton.isHidden()  # no Undo offered for what did not happen
    assert "Conversation deleted" not in chat.window.statusBar().currentMessage()
    assert chat.window.controller.conversation_id == conversation_id  # still open
    assert "An answer." in chat.transcript_text()
    assert len(titles(chat)) == 1
    stored = chat.window.controller.store.conversation(conversation_id)
    assert stored is not None and stored.deleted_at is None


def test_the_window_never_waits_long_for_another_writer(chat: ChatDriver) -> None:
    """A write on the GUI thread waits 50 ms for an import (not sqlite's usual 5 s): a
    longer wait would freeze the window; what cannot be saved yet is retried."""
    store = chat.window.controller.store
    assert store is not None
    with store._lock:
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 50


# -- one block for every way of starting a reply ------------------------------------------------


def test_send_obeys_the_block(chat: ChatDriver, server: LoopbackServer) -> None:
    chat.window.controller.block(BLOCKED)
    chat.send("Hello?")
    assert BLOCKED in banner(chat)
    assert chat.window.composer.toPlainText() == "Hello?"
    assert server.requests == [] and not chat.window.stopButton.isEnabled()


def test_regenerate_obeys_the_block(chat: ChatDriver, server: LoopbackServer) -> None:
    one_exchange(chat, server)
    chat.window.controller.block(BLOCKED)
    click_anchor(chat, Action.REGENERATE)
    assert BLOCKED in banner(chat)
    assert server.requests == [] and not chat.window.stopButton.isEnabled()
    assert [m.content for m in chat.window.controller.session.messages] == [
        "A question", "An answer."]  # the shown reply was not taken away


def test_continue_obeys_the_block(chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["Part one, ", "part two"], disconnect_after_bytes=350))
    chat.send("A question")
    chat.wait_for_reply()
    server.requests.clear()
    chat.window.controller.block(BLOCKED)
    click_anchor(chat, Action.CONTINUE)
    assert BLOCKED in banner(chat)
    assert server.requests == [] and not chat.window.stopButton.isEnabled()
    assert len(chat.window.controller.session.messages) == 2


def test_edit_obeys_the_block_and_keeps_the_edited_text(
        chat: ChatDriver, server: LoopbackServer) -> None:
    one_exchange(chat, server)
    chat.window.controller.block(BLOCKED)
    click_anchor(chat, Action.EDIT, 0)
    editor = chat.window.transcript.editor
    editor.box.setPlainText("A better question")
    editor.saveButton.click()
    assert BLOCKED in banner(chat)
    assert editor.isVisible() and editor.box.toPlainText() == "A better question"
    assert server.requests == [] and not chat.window.stopButton.isEnabled()
    # Lifted: the same Save & send sends the edit as a new branch.
    chat.window.controller.block(None)
    server.push(Scenario(deltas=["A better answer."]))
    editor.saveButton.click()
    chat.wait_for_reply()
    wait_until(chat.loop, lambda: "A better answer." in chat.transcript_text())
    assert [m.content for m in chat.window.controller.session.messages] == [
        "A better question", "A better answer."]
