"""The app starts whatever its data folder holds: one that cannot be created (the window says
nothing will be saved and the chat works for the session), and a damaged history (recovered,
with a notice, just after the window appears; the recovered conversations open)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from desktop_chat.core.history.store import HISTORY_FILE
from desktop_chat.ui.sidebar import ID_ROLE
from tests.support import damage
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, wait_until


def banner(chat: ChatDriver) -> str:
    assert chat.window.errorBanner.isVisible(), "no notice shown"
    return chat.window.errorBanner.text()


def test_a_data_folder_that_cannot_be_created_still_chats(
        make_window: Callable[..., ChatDriver], server: LoopbackServer, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the folder should be")
    chat = make_window("--data-dir", str(blocker / "data"))
    assert "cannot write to" in banner(chat) and "nothing will be saved" in banner(chat)
    server.push(Scenario(deltas=["Still ", "here."]))
    chat.send("Hello?")
    chat.wait_for_reply()
    assert "Still here." in chat.transcript_text()
    assert chat.window.controller.store is None


def test_a_damaged_history_is_recovered_and_its_conversations_open(
        make_window: Callable[..., ChatDriver], tmp_path: Path) -> None:
    data = tmp_path / "damaged-data"
    data.mkdir()
    texts = damage.build(data / HISTORY_FILE, seed=2)
    damage.damage_pages(data / HISTORY_FILE, 5, seed=2)
    chat = make_window("--data-dir", str(data))
    # sqlite's page check runs once the window is on screen (issue #18), then recovers
    wait_until(chat.loop, lambda: "were recovered" in chat.window.errorBanner.text())
    notice = banner(chat)
    assert "The history file was damaged" in notice and "were recovered" in notice
    assert list(data.glob("history.damaged-*.sqlite3"))
    view = chat.window.conversationList
    assert view.count() > 0
    for row in range(min(view.count(), 5)):  # each opens, showing the text that was written
        conversation_id = view.item(row).data(ID_ROLE)
        chat.window.controller.open_chat(conversation_id)
        wait_until(chat.loop, lambda cid=conversation_id:
                   chat.window.controller.conversation_id == cid)
        for message in chat.window.controller.session.messages:
            assert texts[message.id] == message.content
