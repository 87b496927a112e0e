"""The SQLite history: schema and migrations, the message tree, the reply being streamed,
crash and concurrency safety, search, and damaged rows."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from desktop_chat.core.config.providers import ConversationSettings, GenerationParams
from desktop_chat.core.history import schema
from desktop_chat.core.history.records import HIGHLIGHT_END, HIGHLIGHT_START
from desktop_chat.core.history.store import INTERRUPTED_ERROR, Store, StoreError
from desktop_chat.core.model.message import Attachment, ReplyState, Role, Usage
from tests.conftest import DATA
from tests.support.history import add, begin_reply, finish, progress

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path) as opened:
        yield opened


def chat(store: Store, *texts: str, title: str = "Chat") -> tuple[int, list[int]]:
    """A linear conversation alternating user/assistant; returns (id, message ids)."""
    conversation = store.create_conversation(title, "m")
    ids: list[int] = []
    for i, text in enumerate(texts):
        role = Role.USER if i % 2 == 0 else Role.ASSISTANT
        ids.append(add(store, conversation, ids[-1] if ids else None, role, text))
    return conversation, ids


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def run_python(code: str, *args: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, **popen,
    )


# -- opening, schema, migrations --------------------------------------------------------------


def test_a_new_store_is_wal_at_the_current_schema_without_backup(store: Store,
                                                                 db_path: Path) -> None:
    pragma = store._conn.execute
    assert pragma("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert pragma("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert pragma("PRAGMA foreign_keys").fetchone()[0] == 1
    assert pragma("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert pragma("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == 5
    assert store.full_text_search
    assert schema.backups(db_path) == []


def test_fresh_and_migrated_databases_have_the_same_shape(tmp_path: Path) -> None:
    def shape(path: Path) -> list[tuple[str, str]]:
        with raw(path) as conn:
            return conn.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()

    Store(tmp_path / "new.sqlite3").close()
    old = tmp_path / "old.sqlite3"
    with raw(old) as conn:
        conn.executescript((DATA / "history_v1.sql").read_text("utf-8"))
    Store(old).close()
    assert shape(old) == shape(tmp_path / "new.sqlite3")


def make_v1(path: Path) -> None:
    conn = raw(path)
    conn.executescript((DATA / "history_v1.sql").read_text("utf-8"))
    conn.close()


def test_v1_history_is_migrated_and_backed_up_first(db_path: Path) -> None:
    make_v1(db_path)
    with Store(db_path) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        summaries = store.list_conversations()
        assert [s.title for s in summaries] == [
            "Cut off by a crash", "Café au lait", "Sourdough starter"]
        assert [s.message_count for s in summaries] == [2, 2, 4]
        path = store.active_path(1)
        assert [m.content[:8] for m in path] == ["How do I", "Discard ", "And how ", "Daily at"]
        assert path[1].model == "gpt-4o-mini" and path[1].usage is None
        assert store.active_path(2)[-1].state is ReplyState.STOPPED
        assert store.conversation(1).uid  # every old conversation got an identity
        assert store.search("fridge")[0].message_id == 4  # the old text is indexed
        assert store.mark_interrupted_on_start() == 1
        assert all(m.attachments == [] for m in path)  # v3: no images yet, and none lost
        q = add(store, 1, path[-1].id, Role.USER, "a photo of my starter",
                              attachments=[PHOTO])
        assert store.message(q).attachments == [PHOTO]
    [backup] = schema.backups(db_path)
    assert backup.name.startswith("history.sqlite3.v1-")
    with raw(backup) as conn:  # the copy is the untouched v1 database
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 8


def make_v2(path: Path) -> None:
    """A history as schema version 2 wrote it: the v1 file upgraded by the v2 step alone
    (MIGRATIONS entries never change once released), plus rows only v2 could hold."""
    make_v1(path)
    conn = raw(path)
    conn.execute("BEGIN")
    schema.MIGRATIONS[1](conn)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("UPDATE messages SET reasoning = 'Starters like warmth.', prompt_tokens = 9, "
                 "completion_tokens = 30, total_tokens = 39 WHERE id = 2")
    conn.execute("""UPDATE conversations SET extra = '{"scroll": 0.25}' WHERE id = 1""")
    conn.execute("COMMIT")
    conn.close()


PHOTO = Attachment("image/jpeg", b"\xff\xd8\xff\xe0" + bytes(64), "starter.jpg")


def test_v2_history_is_migrated_to_v3_and_backed_up_first(db_path: Path) -> None:
    make_v2(db_path)
    with Store(db_path) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        path = store.active_path(1)
        assert [m.content[:8] for m in path] == ["How do I", "Discard ", "And how ", "Daily at"]
        assert path[1].reasoning == "Starters like warmth."
        assert path[1].usage == Usage(9, 30, 39)  # not estimated: the server said so
        assert store.conversation(1).extra == {"scroll": 0.25}
        assert store.search("fridge")[0].message_id == 4
        reply = begin_reply(store, 1, path[-1].id, "m")
        finish(store, reply, ReplyState.COMPLETE, "ok", usage=Usage(1, 2, 3, True))
        assert store.message(reply).usage == Usage(1, 2, 3, estimated=True)
    [backup] = schema.backups(db_path)
    assert backup.name.startswith("history.sqlite3.v2-")
    with raw(backup) as conn:  # the copy is the untouched v2 database
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "attachments" not in tables and "message_fts" in tables


def test_a_failed_v3_step_leaves_the_v2_file_and_a_backup(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_v2(db_path)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE attachments (id INTEGER PRIMARY KEY)")
        raise sqlite3.OperationalError("disk full")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS[:2], broken])
    with pytest.raises(StoreError, match="disk full"):
        Store(db_path)
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "attachments" not in tables and len(schema.backups(db_path)) == 1


def test_backup_includes_what_is_still_in_the_wal_file(db_path: Path) -> None:
    make_v1(db_path)
    writer = raw(db_path)  # stays open so its WAL is not checkpointed into the main file
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO conversations (title, created_at, updated_at) "
                   "VALUES ('only in the WAL', 1, 1)")
    assert db_path.with_name(db_path.name + "-wal").stat().st_size > 0
    Store(db_path).close()
    writer.close()
    with raw(schema.backups(db_path)[0]) as conn:
        titles = [r[0] for r in conn.execute("SELECT title FROM conversations")]
    assert "only in the WAL" in titles


def test_only_the_last_three_backups_are_kept(db_path: Path) -> None:
    for stamp in ("20200101T000000000000", "20210101T000000000000", "20220101T000000000000"):
        (db_path.parent / f"{db_path.name}.v1-{stamp}Z.bak").write_bytes(b"old")
    unrelated = db_path.parent / "other.sqlite3.v1-20200101T000000000000Z.bak"
    unrelated.write_bytes(b"not ours")
    make_v1(db_path)
    Store(db_path).close()
    kept = [p.name[len(db_path.name):] for p in schema.backups(db_path)]
    assert len(kept) == 3 and kept[:2] == [".v1-20210101T000000000000Z.bak",
                                           ".v1-20220101T000000000000Z.bak"]
    assert unrelated.exists()


def test_a_history_from_a_newer_version_is_refused_unchanged(db_path: Path) -> None:
    Store(db_path).close()
    with raw(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match="written by a newer version of desktop-chat"):
        Store(db_path)
    assert db_path.read_bytes() == before and schema.backups(db_path) == []


def test_a_file_that_is_not_a_database_gives_a_clear_error(db_path: Path) -> None:
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="could not be opened"):
        Store(db_path)


def test_a_failed_migration_leaves_the_old_version_and_a_backup(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_v1(db_path)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE messages ADD COLUMN half_done TEXT")
        raise sqlite3.OperationalError("disk on fire")

    monkeypatch.setattr(schema, "MIGRATIONS", [schema.MIGRATIONS[0], broken])
    with pytest.raises(StoreError, match="disk on fire"):
        Store(db_path)
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        columns = [r[1] for r in conn.execute("PRAGMA table_info(messages)")]
    assert "half_done" not in columns and len(schema.backups(db_path)) == 1


# -- conversations -----------------------------------------------------------------------------


def test_conversations_are_listed_newest_activity_first(store: Store) -> None:
    first, _ = chat(store, "one", title="First")
    second, _ = chat(store, "two", "2", title="Second")
    assert [s.title for s in store.list_conversations()] == ["Second", "First"]
    add(store, first, None, Role.USER, "again")
    summaries = store.list_conversations()
    assert [(s.id, s.message_count) for s in summaries] == [(first, 2), (second, 2)]
    assert [s.id for s in store.list_conversations(limit=1, offset=1)] == [second]


def test_rename_delete_undo_and_purge(store: Store) -> None:
    kept, _ = chat(store, "keep me")
    gone, _ = chat(store, "delete me")
    store.rename_conversation(kept, "Renamed")
    store.delete_conversation(gone)
    assert [s.title for s in store.list_conversations()] == ["Renamed"]
    assert store.search("delete") == []
    store.restore_conversation(gone)
    assert len(store.list_conversations()) == 2
    store.delete_conversation(gone)
    assert store.purge_deleted(older_than=timedelta(days=30)) == 0
    assert store.purge_deleted() == 1
    assert store.conversation(gone) is None and store.all_messages(gone) == []
    assert store.conversation(kept).title == "Renamed"


def test_settings_are_stored_per_conversation(store: Store) -> None:
    conversation = store.create_conversation(extra={"system_prompt": "Be terse."})
    store.set_conversation_extra(conversation, {"scroll": 0.5, "system_prompt": "Be kind."})
    assert store.conversation(conversation).extra == {"scroll": 0.5, "system_prompt": "Be kind."}


def test_overrides_are_kept_in_extra_beside_other_settings(store: Store) -> None:
    conversation = store.create_conversation(extra={"scroll": 0.5})
    assert store.conversation_settings(conversation) == ConversationSettings()
    overrides = ConversationSettings(
        model="gpt-x", system_prompt="",  # "": no system prompt here, whatever the default
        params=GenerationParams(temperature=0.2, max_tokens=500, reasoning_effort="low"))
    store.set_conversation_settings(conversation, overrides)
    assert store.conversation_settings(conversation) == overrides
    assert store.conversation(conversation).extra == {"scroll": 0.5, "overrides": {
        "model": "gpt-x", "system_prompt": "",
        "params": {"temperature": 0.2, "max_tokens": 500, "reasoning_effort": "low"}}}
    store.set_conversation_settings(conversation, ConversationSettings())
    assert store.conversation(conversation).extra == {"scroll": 0.5}
    store.set_conversation_settings(999, overrides)  # a conversation that is gone: no-op
    assert store.conversation_settings(999) == ConversationSettings()


@pytest.mark.parametrize(
    "overrides",
    ["text", {"model": 5}, {"params": []}, {"params": {"temperature": 9}},
     {"params": {"top_p": "high"}}, {"params": {"max_tokens": 0}},
     {"params": {"max_tokens": True}}, {"params": {"reasoning_effort": "max"}}],
)
def test_damaged_overrides_read_as_none_and_are_counted(store: Store,
                                                        overrides: object) -> None:
    conversation = store.create_conversation(extra={"overrides": overrides, "scroll": 1})
    assert store.conversation_settings(conversation) == ConversationSettings()
    assert store.skipped_rows == 1
    store.set_conversation_settings(conversation, ConversationSettings(model="m"))
    assert store.conversation(conversation).extra == {"overrides": {"model": "m"}, "scroll": 1}


# -- the reply being streamed ------------------------------------------------------------------


def test_reply_lifecycle(store: Store) -> None:
    conversation, [prompt] = chat(store, "Hi")
    before = store.conversation(conversation).updated_at
    reply = begin_reply(store, conversation, prompt, "gpt-x")
    assert store.message(reply).state is ReplyState.STREAMING
    progress(store, reply, "Hel", "thinking")
    assert (store.message(reply).content, store.message(reply).reasoning) == ("Hel", "thinking")
    finish(store, reply, ReplyState.COMPLETE, "Hello!", "thinking done",
                       Usage(3, 2, 5), "stop")
    done = store.message(reply)
    assert (done.state, done.content, done.usage, done.finish_reason, done.model) == (
        ReplyState.COMPLETE, "Hello!", Usage(3, 2, 5), "stop", "gpt-x")
    assert store.conversation(conversation).updated_at >= before
    assert store.conversation(conversation).model == "gpt-x"
    with pytest.raises(ValueError):
        finish(store, reply, ReplyState.STREAMING, "")


def test_saving_partial_text_is_one_row_update(store: Store) -> None:
    conversation, [prompt] = chat(store, "Hi")
    reply = begin_reply(store, conversation, prompt, "m")
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    progress(store, reply, "some text")
    store._conn.set_trace_callback(None)
    # sqlite traces a statement again for each trigger program it runs: count distinct ones
    writes = {s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")}
    assert len(writes) == 1 and writes.pop().startswith("UPDATE messages")
    assert not any("conversations" in s for s in statements)


def test_saving_a_long_reply_every_second_is_cheap(store: Store) -> None:
    conversation, [prompt] = chat(store, "Write a lot")
    reply = begin_reply(store, conversation, prompt, "m")
    text = ("word " * 20_000)[:100_000]
    started = time.perf_counter()
    for _ in range(20):
        progress(store, reply, text)
    per_call_ms = (time.perf_counter() - started) / 20 * 1000
    print(f"\nupdate_reply_text with 100 kB of text: {per_call_ms:.2f} ms per call")
    assert store.message(reply).content == text


def test_replies_left_streaming_become_interrupted_with_their_text(store: Store) -> None:
    conversation, [prompt] = chat(store, "Hi")
    reply = begin_reply(store, conversation, prompt, "m")
    progress(store, reply, "partial")
    assert store.mark_interrupted_on_start() == 1
    message = store.message(reply)
    assert (message.state, message.content, message.error) == (
        ReplyState.INTERRUPTED, "partial", INTERRUPTED_ERROR)
    assert store.mark_interrupted_on_start() == 0


CRASHING_WRITER = """
    import sys, time
    from pathlib import Path
    from desktop_chat.core.model.message import Role
    from desktop_chat.core.history.store import Store
    from tests.support.history import add, begin_reply, progress
    store = Store(Path(sys.argv[1]))
    conversation = store.create_conversation("Crash")
    prompt = add(store, conversation, None, Role.USER, "Tell me a story")
    reply = begin_reply(store, conversation, prompt, "m")
    text = ""
    for i in range(5):
        text += f"chunk {i}, "
        progress(store, reply, text, "plotting")
    print(reply, text, sep="\\n", flush=True)
    time.sleep(60)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_process_loses_no_saved_text(db_path: Path) -> None:
    process = run_python(CRASHING_WRITER, str(db_path), stdout=subprocess.PIPE)
    try:
        reply, text = int(process.stdout.readline()), process.stdout.readline().rstrip("\n")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert process.returncode == -signal.SIGKILL and text.endswith("chunk 4, ")
    with Store(db_path) as store:
        assert store.mark_interrupted_on_start() == 1
        message = store.message(reply)
        assert (message.state, message.content, message.reasoning) == (
            ReplyState.INTERRUPTED, text, "plotting")
        assert store.search("chunk")[0].message_id == reply


# -- the tree ----------------------------------------------------------------------------------


def test_regenerate_and_edit_make_siblings_and_the_path_follows_the_choice(store: Store) -> None:
    conversation, [q, a] = chat(store, "Question", "Answer")
    regenerated = begin_reply(store, conversation, q, "m")
    finish(store, regenerated, ReplyState.COMPLETE, "Better answer")
    edited = add(store, conversation, None, Role.USER, "Question, edited")
    reply_to_edit = add(store, conversation, edited, Role.ASSISTANT, "Edited answer")
    assert store.siblings(a) == store.siblings(regenerated) == [a, regenerated]
    assert store.siblings(q) == [q, edited]
    path = store.active_path(conversation)
    assert [m.id for m in path] == [edited, reply_to_edit]
    assert [(m.sibling_index, m.sibling_count) for m in path] == [(1, 2), (0, 1)]
    assert store.set_active_leaf(conversation, q) == regenerated  # newest reply below
    path = store.active_path(conversation)
    assert [m.content for m in path] == ["Question", "Better answer"]
    assert [(m.sibling_index, m.sibling_count) for m in path] == [(0, 2), (1, 2)]
    store.set_active_leaf(conversation, a)
    assert [m.id for m in store.active_path(conversation)] == [q, a]
    assert store.conversation(conversation).active_leaf_id == a


def test_links_never_cross_conversations(store: Store) -> None:
    _, [m1] = chat(store, "one")
    second, _ = chat(store, "two")
    with pytest.raises(StoreError):
        add(store, second, m1, Role.ASSISTANT, "wrong place")
    with pytest.raises(StoreError):
        store.set_active_leaf(second, m1)
    assert len(store.all_messages(second)) == 1


def test_long_conversations_load_backwards_in_pages(store: Store) -> None:
    conversation, ids = chat(store, *[f"message {i}" for i in range(25)])
    page = store.recent_messages(conversation, limit=10)
    assert [m.id for m in page] == ids[15:]
    page = store.recent_messages(conversation, limit=10, before=page[0].id)
    assert [m.id for m in page] == ids[5:15]
    page = store.recent_messages(conversation, limit=10, before=page[0].id)
    assert [m.id for m in page] == ids[:5] and page[0].parent_id is None
    assert store.recent_messages(conversation, limit=10, before=page[0].id) == []
    assert store.recent_messages(store.create_conversation(), limit=10) == []


def test_deleting_a_message_removes_its_branch(store: Store) -> None:
    conversation, [q, a, _] = chat(store, "q", "a", "q2")
    store.delete_message(a)
    assert [m.id for m in store.all_messages(conversation)] == [q]
    assert [m.id for m in store.active_path(conversation)] == [q]
    store.delete_message(a)  # already gone: nothing happens


# -- search ------------------------------------------------------------------------------------


def test_search_finds_a_word_from_an_old_message(store: Store) -> None:
    old, [_, answer] = chat(store, "Tell me about axolotls", "Axolotls regrow their limbs.",
                            title="Amphibians")
    for i in range(30):
        chat(store, f"filler {i}", "nothing to see")
    [hit] = store.search("regrow")
    assert (hit.conversation_id, hit.message_id, hit.title) == (old, answer, "Amphibians")
    assert f"{HIGHLIGHT_START}regrow{HIGHLIGHT_END}" in hit.snippet
    assert store.search("regr")[0].message_id == answer  # prefix, as the user types
    assert store.search("amphib")[0].message_id is None  # the title matched
    assert store.search("REGROW LIMBS")[0].message_id == answer


# (query, hits): every word of the query must occur; operator words count as plain words
@pytest.mark.parametrize(("query", "hits"), [
    ('"', 0), ('""', 0), ("'", 0), ("AND", 0), ("axolotl OR", 0), ("NEAR(", 0), ("", 0),
    ("   ", 0), ("%", 0), ("_", 0), ("\\", 0), ('a"b', 0), ("content:limbs", 0),
    ("limbs NOT axolotls", 0), ("limbs*", 1), ("-limbs", 1), ("^limbs", 1), ("(limbs", 1),
    ("limbs)", 1), ("{limbs}", 1), ('"limbs', 1), ("limbs + regrow", 1), ("limbs:", 1),
])
def test_search_treats_operators_and_quotes_as_text(store: Store, query: str, hits: int) -> None:
    chat(store, "Axolotls regrow their limbs.")
    assert len(store.search(query)) == hits


def test_search_ignores_accents_and_deleted_conversations(store: Store) -> None:
    conversation, _ = chat(store, "Un café au lait, s'il vous plaît")
    assert len(store.search("cafe")) == 1
    store.delete_conversation(conversation)
    assert store.search("cafe") == []


def test_search_falls_back_to_like_without_fts5(db_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "fts5_available", lambda conn: False)
    with Store(db_path) as store:
        assert not store.full_text_search
        _, [_, answer] = chat(store, "Tell me about axolotls", "Axolotls regrow 100% of limbs.")
        [hit] = store.search("REGROW")
        assert hit.message_id == answer and f"{HIGHLIGHT_START}regrow" in hit.snippet
        assert store.search("100%")[0].message_id == answer
        assert store.search("_") == []
    monkeypatch.undo()
    with Store(db_path) as store:  # FTS5 is back: the index is built on open
        assert store.full_text_search and store.search("regrow")[0].message_id == answer


def test_search_index_stays_consistent(store: Store) -> None:
    conversation, [q] = chat(store, "alpha")
    reply = begin_reply(store, conversation, q, "m")
    for text in ("beta", "beta gamma", "beta gamma delta"):
        progress(store, reply, text)
    store.delete_conversation(conversation)
    store.purge_deleted()
    other, _ = chat(store, "epsilon")
    store._conn.execute("INSERT INTO message_fts(message_fts, rank) VALUES ('integrity-check', 1)")
    assert store._conn.execute("SELECT count(*) FROM message_fts WHERE message_fts MATCH 'beta'"
                               ).fetchone()[0] == 0
    assert store.search("epsilon")[0].conversation_id == other


# -- damaged rows ------------------------------------------------------------------------------


def test_damaged_rows_are_skipped_and_counted(store: Store, db_path: Path) -> None:
    conversation, [q, a, q2, a2] = chat(store, "q", "a", "q2", "a2")
    bad_settings, _ = chat(store, "fine")
    broken_list_entry = store.create_conversation("broken")
    with raw(db_path) as conn:
        conn.execute("UPDATE messages SET role = 'wizard' WHERE id = ?", (a,))
        conn.execute("UPDATE messages SET state = 'exploded' WHERE id = ?", (a2,))
        conn.execute("UPDATE messages SET content = X'00FF' WHERE id = ?", (q,))
        conn.execute("UPDATE conversations SET extra = '{not json' WHERE id = ?", (bad_settings,))
        conn.execute("UPDATE conversations SET created_at = 'yesterday' WHERE id = ?",
                     (broken_list_entry,))
    assert store.damage_notice() is None
    assert [m.id for m in store.active_path(conversation)] == [q2]
    assert store.skipped_rows == 3
    assert store.message(a) is None
    assert store.conversation(bad_settings).extra == {}
    assert broken_list_entry not in [s.id for s in store.list_conversations()]
    assert bad_settings in [s.id for s in store.list_conversations()]
    assert store.skipped_rows == 5
    assert store.active_path(conversation) and store.skipped_rows == 5  # counted once
    assert store.damage_notice().startswith("5 damaged entries")
    assert isinstance(store.search("q2"), list)


@pytest.mark.parametrize("damage", ["self", "loop", "other conversation", "long loop"])
def test_impossible_links_show_the_longest_valid_path(store: Store, db_path: Path,
                                                      damage: str) -> None:
    """A history edited by hand or damaged on disk: the walk up from the leaf ends where the
    chain breaks, in time linear in the conversation (before: a million-step walk)."""
    conversation, ids = chat(store, *(f"m{i}" for i in range(2_000 if damage == "long loop"
                                                            else 6)))
    other, [stranger] = chat(store, "elsewhere")
    leaf, second = ids[-1], ids[1]
    with raw(db_path) as conn:
        if damage == "self":  # the second message says it answers itself
            conn.execute("UPDATE messages SET parent_id = id WHERE id = ?", (second,))
        elif damage in ("loop", "long loop"):  # the first message answers the last
            conn.execute("UPDATE messages SET parent_id = ? WHERE id = ?", (leaf, ids[0]))
        else:
            conn.execute("UPDATE messages SET parent_id = ? WHERE id = ?", (stranger, second))
    path = [m.id for m in store.active_path(conversation)]
    expected = ids if damage in ("loop", "long loop") else ids[1:]
    assert path == expected
    page = [m.id for m in store.recent_messages(conversation, limit=3)]
    assert page == expected[-3:]
    earlier = [m.id for m in store.recent_messages(conversation, limit=3, before=page[0])]
    assert earlier == expected[-6:-3]  # paging never repeats a message
    assert store.set_active_leaf(conversation, ids[0]) in ids  # walking down ends too
    assert [m.id for m in store.active_path(other)] == [stranger]


def test_text_that_is_not_utf8_reads_with_replacement_characters(store: Store,
                                                                 db_path: Path) -> None:
    conversation, [_q, a] = chat(store, "question", "answer")
    with raw(db_path) as conn:  # bytes stored as TEXT: what a buggy writer or bad sector leaves
        conn.execute("UPDATE messages SET content = CAST(X'616263FF' AS TEXT) WHERE id = ?",
                     (a,))
        conn.execute("UPDATE conversations SET title = CAST(X'C328' AS TEXT) WHERE id = ?",
                     (conversation,))
    messages = store.active_path(conversation)
    assert [m.content for m in messages] == ["question", "abc\ufffd"]
    assert store.list_conversations()[0].title == "\ufffd("
    assert store.search("question")


# -- several writers ---------------------------------------------------------------------------


def test_two_stores_on_one_file_write_concurrently(db_path: Path) -> None:
    stores = [Store(db_path), Store(db_path)]
    conversations = [s.create_conversation(f"writer {i}") for i, s in enumerate(stores)]
    errors: list[BaseException] = []

    def write(store: Store, conversation: int) -> None:
        try:
            parent = None
            for i in range(150):
                parent = add(store, conversation, parent, Role.USER, f"line {i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=pair)
               for pair in zip(stores, conversations, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for store in stores:
        assert [len(store.active_path(c)) for c in conversations] == [150, 150]
    assert stores[0]._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for store in stores:
        store.close()


def test_one_store_can_be_shared_by_threads(store: Store) -> None:
    conversation = store.create_conversation()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(50):
                add(store, conversation, None, Role.USER, f"{n}-{i}")
                store.list_conversations()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(store.all_messages(conversation)) == 200


PROCESS_WRITER = """
    import sys, time
    from pathlib import Path
    from desktop_chat.core.model.message import Role
    from desktop_chat.core.history.store import Store
    from tests.support.history import add, begin_reply, progress
    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.005)
    with Store(Path(sys.argv[1])) as store:  # both open (and set up) a brand-new file at once
        conversation = store.create_conversation(sys.argv[3])
        parent = None
        for i in range(150):
            parent = add(store, conversation, parent, Role.USER, f"{sys.argv[3]} {i}")
            if i % 50 == 0:
                progress(store, parent, f"{sys.argv[3]} {i} edited")
"""


def test_two_processes_on_one_file_do_not_corrupt_it(db_path: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    processes = [run_python(PROCESS_WRITER, str(db_path), str(go), name, stderr=subprocess.PIPE)
                 for name in ("left", "right")]
    time.sleep(0.3)  # both are waiting at the start line
    go.touch()
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    with Store(db_path) as store:
        summaries = store.list_conversations()
        assert sorted(s.title for s in summaries) == ["left", "right"]
        assert [s.message_count for s in summaries] == [150, 150]
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert len(store.search("edited")) == 6


def test_a_huge_title_is_shortened_in_lists_and_kept_whole(store: Store) -> None:
    title = "A very long title\nwith lines " * 500_000  # ~14 MB, as an import may bring
    conversation = store.create_conversation(title)
    add(store, conversation, None, Role.USER, "hello")
    [summary] = store.list_conversations()
    assert len(summary.title) == 200 and summary.title.endswith("…")
    assert "\n" not in summary.title and summary.title.startswith("A very long title with")
    [hit] = store.search("title")
    assert hit.title == summary.title and len(hit.snippet) < 300
    [hit] = store.search("hello")
    assert hit.title == summary.title
    stored = store.conversation(conversation)
    assert stored is not None and stored.title == title  # the full text is kept
