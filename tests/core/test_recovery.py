"""Whatever the data folder holds, the history opens: a seeded fault campaign over damaged
pages, truncation, a wiped header and a garbage -wal file (tests/support/damage.py; run it as
`python -m tests.support.damage` for the table), plus a folder that cannot be written and
leftovers of an interrupted migration."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from desktop_chat.core.history import recovery
from desktop_chat.core.history.store import HISTORY_FILE, Store
from desktop_chat.core.model.message import Message, Role
from tests.support import damage


@pytest.mark.parametrize(("case", "kind", "blocks", "seed"), damage.CASES,
                         ids=[c[0] for c in damage.CASES])
def test_a_damaged_history_opens_and_every_message_is_shown_or_reported(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str, kind: str, blocks: int,
        seed: int) -> None:
    caplog.set_level(logging.INFO)
    outcome = damage.run_case(tmp_path, kind, blocks, seed, case)
    assert outcome.starts
    assert outcome.garbled == 0  # what is shown is what was written
    assert outcome.recovered + outcome.reported_lost >= outcome.messages
    aside = list(tmp_path.glob("history.damaged-*.sqlite3"))
    if outcome.recovered < outcome.messages or aside:
        assert outcome.notice is not None and "kept as history.damaged-" in outcome.notice
        assert len(aside) == 1  # the damaged file is kept, under a clear name
    # The recovered history is sound: opening it again finds nothing to recover.
    store, notice = recovery.open_history(tmp_path / HISTORY_FILE)
    assert store is not None and notice is None and store.quick_check() == []
    store.close()
    assert not [r for r in caplog.records if "Traceback" in r.getMessage()]


def test_messages_whose_conversation_was_lost_are_kept(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    with Store(path) as store:
        kept = store.create_conversation("kept", "m")
        store.add_message(kept, Message.of(Role.USER, "still here"))
        lost = store.create_conversation("lost", "m")
        first = store.add_message(lost, Message.of(Role.USER, "orphan question"))
        store.add_message(lost, Message.of(Role.ASSISTANT, "orphan answer", parent_id=first))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DELETE FROM conversations WHERE id = ?", (lost,))  # as if its page was lost
    conn.close()
    target = tmp_path / "fresh.sqlite3"
    Store(target).close()
    recovered = recovery.salvage(path, target)
    assert (recovered.conversations, recovered.messages) == (2, 3)
    with Store(target) as store:
        titles = {c.title: c.id for c in store.list_conversations()}
        assert set(titles) == {"kept", "Recovered messages"}
        path_texts = [m.content for m in store.active_path(titles["Recovered messages"])]
        assert path_texts == ["orphan question", "orphan answer"]


def test_a_folder_that_cannot_be_created_says_nothing_will_be_saved(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store, notice = recovery.open_history(blocker / "data" / HISTORY_FILE)
    assert store is None
    assert notice is not None and "cannot write to" in notice and "--data-dir" in notice
    assert "nothing will be saved" in notice


def test_an_unfinished_backup_is_removed_and_the_migration_backs_up_again(
        tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FILE
    Store(path).close()
    partial = tmp_path / f"{HISTORY_FILE}.v2-20260101T000000000000Z.bak.partial"
    partial.write_bytes(b"half a copy")
    store, notice = recovery.open_history(path)
    assert store is not None and notice is None
    store.close()
    assert not partial.exists()


def test_the_page_check_can_come_after_opening_and_recovers_the_store_in_use(
        tmp_path: Path) -> None:
    """The app opens the history without sqlite's page check and runs it once its window is
    on screen (issue #18): a damaged file is then recovered under the same Store object."""
    path = tmp_path / HISTORY_FILE
    texts = damage.build(path, seed=2)
    damage.damage_pages(path, 5, seed=2)
    store, notice = recovery.open_history(path, check=False)
    assert store is not None and notice is None  # opened as it is, not checked yet
    try:
        notice = recovery.check_open(store)
        assert notice is not None and "were recovered" in notice
        assert list(tmp_path.glob("history.damaged-*.sqlite3"))
        assert store.quick_check() == []  # the same object now holds the recovered file
        listed = store.list_conversations(500)
        assert listed
        for summary in listed:
            for message in store.active_path(summary.id):
                assert texts[message.id] == message.content
        assert recovery.check_open(store) is None  # sound now: nothing more to do
    finally:
        store.close()
