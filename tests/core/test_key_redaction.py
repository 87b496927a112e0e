"""A key a server echoes back (issue #20) never reaches the history or its exports: what a
server sent about a reply's outcome is redacted like the logs (the keys the app knows and
well-known key shapes) when the session records it, when the store writes it, when an import
writes it and when an export reads it; a migration cleans histories written before."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from desktop_chat.core import logs
from desktop_chat.core.chat.session import ChatSession
from desktop_chat.core.history import schema
from desktop_chat.core.history.store import Store
from desktop_chat.core.history.transfer import FORMAT, export_json, export_markdown, import_json
from desktop_chat.core.llm.client import ChatClient, Endpoint
from desktop_chat.core.model.message import ReplyState, Role
from tests.conftest import DATA
from tests.support.history import add, begin_reply, finish
from tests.support.openai_server import LoopbackServer, Scenario

# Shaped like no well-known key: only knowing it keeps it out.
KNOWN_KEY = "Zq81xLmw0PkV3nTcY6ahRsB27fUe"
SHAPED_KEYS = [
    "sk-proj-9a8b7c6d5e4f3a2b1c0d", "sk-ant-api03-AbCdEfGhIjKlMnOp", "sk-or-v1-0123456789abcdef",
    "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "gsk_A1b2C3d4E5f6G7h8I9j0K1l2",
    "xai-A1b2C3d4E5f6G7h8I9j0K1l2", "hf_A1b2C3d4E5f6G7h8I9j0K1l2", "AKIAIOSFODNN7EXAMPLE",
    "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", "pplx-A1b2C3d4E5f6G7h8I9j0K1l2",
]
ECHO = "Incorrect API key provided: {key}. You can find your API key in your account."


@pytest.fixture(autouse=True)
def known_key() -> None:
    logs.add_secret(KNOWN_KEY)  # as Secrets does for every key it hands out


def test_redaction_covers_known_keys_and_key_shapes_and_spares_words() -> None:
    for key in [KNOWN_KEY, *SHAPED_KEYS]:
        assert logs.redact_secrets(ECHO.format(key=key)) == ECHO.format(key="[REDACTED]")
    assert logs.redact_secrets('{"api_key": "abcdef123456"}') == '{"api_key": "[REDACTED]"}'
    ordinary = "the task-manager_12345 and risk-assessment-report stay readable"
    assert logs.redact_secrets(ordinary) == ordinary


def test_the_store_writes_a_reply_error_redacted(store: Store) -> None:
    c = store.create_conversation("Echo")
    q = add(store, c, None, Role.USER, "hi")
    failed_first = add(store, c, q, Role.ASSISTANT, "", state=ReplyState.FAILED,
                       error=ECHO.format(key=KNOWN_KEY))
    reply = begin_reply(store, c, q, "m")
    finish(store, reply, ReplyState.INTERRUPTED, "partial", error=ECHO.format(key=SHAPED_KEYS[0]))
    assert store.message(failed_first).error == ECHO.format(key="[REDACTED]")
    assert store.message(reply).error == ECHO.format(key="[REDACTED]")
    assert not keys_in(store.path)


def test_an_echoed_key_in_a_stream_error_is_never_stored(server: LoopbackServer,
                                                        store: Store) -> None:
    server.push(Scenario(deltas=["Some ", "text"], stream_error_after_events=2,
                         stream_error={"message": ECHO.format(key=KNOWN_KEY),
                                       "type": "invalid_request_error"}))

    async def turn() -> ChatSession:
        client = ChatClient(Endpoint(server.base_url, KNOWN_KEY))
        session = ChatSession(client, "test-model", store=store)
        try:
            await session.run(session.start("hello"))
        finally:
            await client.aclose()
        return session

    session = asyncio.run(turn())
    reply = session.messages[-1]
    assert reply.state is ReplyState.INTERRUPTED
    assert reply.error is not None and "Incorrect API key provided: [REDACTED]" in reply.error
    assert KNOWN_KEY not in reply.error
    assert store.message(reply.id or 0).error == reply.error
    assert not keys_in(store.path)


def test_an_imported_error_is_stored_redacted(store: Store) -> None:
    data = {"format": FORMAT, "version": 1, "conversations": [{"uid": "u", "messages": [
        {"id": 1, "role": "user", "content": "hi"},
        {"id": 2, "parent": 1, "role": "assistant", "content": "half", "state": "interrupted",
         "error": ECHO.format(key=KNOWN_KEY)}]}]}
    import_json(store, data)
    [summary] = store.list_conversations()
    assert store.active_path(summary.id)[-1].error == ECHO.format(key="[REDACTED]")
    assert not keys_in(store.path)


def test_exports_redact_what_an_older_build_stored(store: Store) -> None:
    c = store.create_conversation("Old")
    q = add(store, c, None, Role.USER, "hi")
    reply = add(store, c, q, Role.ASSISTANT, "half", state=ReplyState.INTERRUPTED)
    with store._lock:  # as a build before the fix wrote it
        store._conn.execute("UPDATE messages SET error = ? WHERE id = ?",
                            (ECHO.format(key=KNOWN_KEY), reply))
    exported = json.dumps(export_json(store)) + export_markdown(store, c)
    assert KNOWN_KEY not in exported
    assert exported.count("Incorrect API key provided: [REDACTED]") == 2


# -- the migration -----------------------------------------------------------------------------


def make_v3(path: Path, errors: list[str]) -> None:
    """A history as schema version 3 wrote it, replies holding the given errors."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript((DATA / "history_v1.sql").read_text("utf-8"))
    for version in (1, 2):
        conn.execute("BEGIN")
        schema.MIGRATIONS[version](conn)
        conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    for row_id, error in enumerate(errors, start=2):
        conn.execute("UPDATE messages SET error = ?, state = 'interrupted' WHERE id = ?",
                     (error, row_id))
    conn.close()


def keys_in(path: Path) -> list[str]:
    """The keys found in the history's files (the database, its WAL)."""
    data = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*")
                    if not p.name.endswith(".bak"))
    return [k for k in [KNOWN_KEY, *SHAPED_KEYS] if k.encode() in data]


def test_the_v4_migration_removes_keys_from_stored_errors(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    errors = [ECHO.format(key=KNOWN_KEY), "Connection lost.", ECHO.format(key=SHAPED_KEYS[3])]
    make_v3(path, errors)
    assert keys_in(path) == [KNOWN_KEY, SHAPED_KEYS[3]]
    with Store(path) as store:
        assert schema.user_version(store._conn) == schema.SCHEMA_VERSION == 5
        stored = [store.message(i).error for i in (2, 3, 4)]  # type: ignore[union-attr]
        assert stored == [ECHO.format(key="[REDACTED]"), "Connection lost.",
                          ECHO.format(key="[REDACTED]")]
        assert [m.content[:8] for m in store.active_path(1)][:2] == ["How do I", "Discard "]
    assert keys_in(path) == []  # overwritten on disk, not only unlinked
    [backup] = schema.backups(path)  # taken first, as for every migration
    assert backup.name.startswith("history.sqlite3.v3-")


def test_an_old_history_is_known_to_need_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    assert not schema.needs_migration(path)  # none yet
    make_v3(path, [])
    assert schema.needs_migration(path)
    Store(path).close()
    assert not schema.needs_migration(path)
