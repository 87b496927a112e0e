"""A history that fills up while a reply streams: the window says at once that the reply is not
being saved and why, keeps every word on screen (and copyable), and saving resumes by itself
once there is room again. A send on the full disk keeps the prompt in the composer.

"Full" is real SQLite behaviour: `PRAGMA max_page_count` caps the file, and writes past it
fail with SQLITE_FULL ("database or disk is full"), as on a full disk.
"""

from __future__ import annotations

from desktop_chat.core.history.store import Store
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, until, wait_until

WORDS = [f"word{i} " for i in range(3_000)]  # ~27 kB: needs several new pages as it grows


def fill_up(store: Store) -> None:
    with store._lock:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")


def make_room(store: Store) -> None:
    with store._lock:
        store._conn.execute("PRAGMA max_page_count = 1073741823")


def banner(chat: ChatDriver) -> str:
    return chat.window.errorBanner.text() if chat.window.errorBanner.isVisible() else ""


def test_a_reply_the_full_disk_cannot_take_is_kept_shown_and_saved_later(
        chat: ChatDriver, server: LoopbackServer) -> None:
    store = chat.window.controller.store
    assert store is not None
    server.push(Scenario(deltas=WORDS, pace=0.001))  # ~3 s: the autosave runs meanwhile
    said_while_streaming: list[str] = []

    async def scenario() -> None:  # inside the loop throughout: the reply is streaming
        await until(chat.loop, chat.window.stopButton.isEnabled)
        fill_up(store)  # the prompt and the empty reply were written; nothing more fits
        await until(chat.loop, lambda: "not being saved" in banner(chat), timeout=20)
        if chat.window.stopButton.isEnabled():
            said_while_streaming.append(banner(chat))
        await until(chat.loop, lambda: not chat.window.stopButton.isEnabled(), timeout=20)

    chat.send("Write a lot")
    chat.loop.run_until_complete(scenario())
    assert said_while_streaming and "the disk is full" in said_while_streaming[0]
    text = "".join(WORDS)
    assert chat.window.controller.last_reply_text() == text  # all of it, in the window
    chat.copy_last_reply()
    assert chat.clipboard() == text
    assert chat.window.stateLabel.text() == "Ready · not saved"
    assert "Not saved: the disk is full" in chat.transcript_text()  # on the reply itself
    conversation = chat.window.controller.conversation_id
    assert conversation is not None
    saved = store.active_path(conversation)[-1]
    assert saved.content != text  # not yet: the history has what fitted

    make_room(store)
    assert chat.window.controller.save_again()  # what the retry timer does every few seconds
    assert store.active_path(conversation)[-1].content == text
    assert "not being saved" not in banner(chat)
    assert "Not saved" not in chat.transcript_text() and text in chat.transcript_text()


def test_the_retry_saves_by_itself_once_there_is_room(
        chat: ChatDriver, server: LoopbackServer) -> None:
    store = chat.window.controller.store
    assert store is not None
    chat.window.controller._save_retry.setInterval(50)
    server.push(Scenario(deltas=WORDS[:500], pace=0.002))
    chat.send("Write something")
    chat.when(chat.window.stopButton.isEnabled, lambda: fill_up(store))
    assert "not being saved" in banner(chat)
    make_room(store)
    wait_until(chat.loop, lambda: "not being saved" not in banner(chat), timeout=5)
    conversation = chat.window.controller.conversation_id
    assert store.active_path(conversation)[-1].content == "".join(WORDS[:500])


def test_a_prompt_sent_on_a_full_disk_stays_in_the_composer(
        chat: ChatDriver, server: LoopbackServer) -> None:
    store = chat.window.controller.store
    assert store is not None
    server.push(Scenario(deltas=["First answer."]))
    chat.send("First")
    chat.wait_for_reply()
    fill_up(store)
    chat.send("A long second question " * 400)
    assert "the disk is full" in banner(chat)
    assert chat.window.composer.toPlainText().startswith("A long second question")
    assert "Something went wrong" not in banner(chat)
