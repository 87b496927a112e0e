"""SQL shared by `Store` and the import writer (`BulkWriter`): connections, transactions, the
one way a message is written, tree walks. An import writes rows exactly the way the app does.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from desktop_chat.core.history import documents
from desktop_chat.core.history.records import MESSAGE_COLUMNS, StoreError, usage_columns
from desktop_chat.core.history.tool_calls import calls_json
from desktop_chat.core.logs import redact_secrets
from desktop_chat.core.model.message import Message

_CHUNK = 500  # ids per `IN (...)` query: far below sqlite's variable limit on any build

_ROWS_SQL = f"""
SELECT {", ".join("m." + c.strip() for c in MESSAGE_COLUMNS.split(","))},
    (SELECT count(*) FROM messages s WHERE s.conversation_id = m.conversation_id
        AND s.parent_id IS m.parent_id) AS sibling_count,
    (SELECT count(*) FROM messages s WHERE s.conversation_id = m.conversation_id
        AND s.parent_id IS m.parent_id AND s.id < m.id) AS sibling_index
FROM messages m WHERE m.id IN ({{marks}})
"""


def lenient_decode(data: bytes) -> str:
    """Text as stored, with U+FFFD for bytes that are not UTF-8."""
    return data.decode("utf-8", "replace")


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are explicit `BEGIN IMMEDIATE`, which
    takes the write lock up front and so waits (busy_timeout) instead of failing later with
    a lock upgrade that no timeout can resolve."""
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    # Text that is not UTF-8 (a buggy writer, a bad sector) reads with U+FFFD in place of the
    # bad bytes instead of failing the whole query.
    conn.text_factory = lenient_decode
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def enable_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> str:
    """Switch to WAL, retrying: unlike other statements, changing the journal mode does not
    wait for a lock held by another process (two first launches at once), it fails."""
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # some errors (disk full, I/O) already rolled back
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def insert_message(conn: sqlite3.Connection, conversation_id: int, message: Message) -> int:
    """Write `message` under its `parent_id`, with its own timestamps: its text and reasoning
    in its row, its images as rows of `attachments` (in the caller's transaction, so never
    one without the other). What a server sent about the outcome (error, finish reason) is
    stored redacted (`server_text`). Returns the new row's id."""
    usage = message.usage
    cursor = conn.execute(
        "INSERT INTO messages (conversation_id, parent_id, role, content, reasoning, state, "
        "model, finish_reason, error, prompt_tokens, completion_tokens, total_tokens, "
        "usage_estimated, created_at, updated_at, tool_calls) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (conversation_id, message.parent_id, message.role.value, message.content,
         message.reasoning, message.state.value, message.model,
         server_text(message.finish_reason), server_text(message.error), *usage_columns(usage),
         int(usage is not None and usage.estimated), message.created_at,
         message.updated_at or message.created_at, calls_json(message)),
    )
    message_id = int(cursor.lastrowid or 0)
    conn.executemany(
        "INSERT INTO attachments (message_id, position, mime, name, data) VALUES (?, ?, ?, ?, ?)",
        [(message_id, position, a.mime, a.name, a.data)
         for position, a in enumerate(message.attachments)],
    )
    if message.documents or message.passages:
        documents.insert_parts(conn, message_id, message)
    return message_id


def server_text(text: str | None) -> str | None:
    """A string a server or a tool sent (an error message or body, a tool result), as the
    history keeps it: without any key (the same redaction as the logs)."""
    return None if text is None else redact_secrets(text)


def attachment_rows(conn: sqlite3.Connection, message_ids: Sequence[int],
                    ) -> list[sqlite3.Row]:
    """The attachments of these messages, by message then position."""
    rows: list[sqlite3.Row] = []
    for start in range(0, len(message_ids), _CHUNK):
        chunk = message_ids[start:start + _CHUNK]
        rows += conn.execute(
            "SELECT id, message_id, position, mime, name, data FROM attachments WHERE "
            f"message_id IN ({', '.join('?' * len(chunk))}) ORDER BY message_id, position",
            chunk,
        ).fetchall()
    return rows


def check_in_conversation(conn: sqlite3.Connection, conversation_id: int,
                          message_id: int | None) -> None:
    """Links never cross conversations: a wrong id is a caller's bug, caught before writing."""
    if message_id is None:
        return
    row = conn.execute("SELECT conversation_id FROM messages WHERE id = ?",
                       (message_id,)).fetchone()
    if row is None or row[0] != conversation_id:
        raise StoreError(f"message {message_id} is not in conversation {conversation_id}")


def active_path_ids(conn: sqlite3.Connection, conversation_id: int) -> list[int]:
    """The ids from the root to the active leaf. Links are not trusted: the walk ends where
    the chain breaks (a parent missing or in another conversation, a message that is its own
    ancestor), so a damaged history shows its longest valid path, in time linear in the
    conversation's size."""
    leaf = _active_leaf(conn, conversation_id)
    parents = dict(conn.execute("SELECT id, parent_id FROM messages WHERE conversation_id = ?",
                                (conversation_id,)).fetchall())
    path: list[int] = []
    seen: set[int] = set()
    node = leaf
    while node is not None and node in parents and node not in seen:
        seen.add(node)
        path.append(node)
        node = parents[node]
    path.reverse()
    return path


def rows_in_order(conn: sqlite3.Connection, ids: Sequence[int]) -> list[sqlite3.Row]:
    """The rows of these messages in the order given, each with `sibling_index` and
    `sibling_count`."""
    found: dict[int, sqlite3.Row] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start:start + _CHUNK])
        sql = _ROWS_SQL.format(marks=", ".join("?" * len(chunk)))
        found.update((row["id"], row) for row in conn.execute(sql, chunk))
    return [found[i] for i in ids if i in found]


def _active_leaf(conn: sqlite3.Connection, conversation_id: int) -> int | None:
    """The recorded active leaf, or (none recorded, or it is gone) the newest message."""
    row = conn.execute(
        "SELECT m.id FROM conversations c JOIN messages m ON m.id = c.active_leaf_id "
        "AND m.conversation_id = c.id WHERE c.id = ?", (conversation_id,)).fetchone()
    if row is None:
        row = conn.execute("SELECT max(id) FROM messages WHERE conversation_id = ?",
                           (conversation_id,)).fetchone()
    return None if row is None else row[0]


def newest_leaf(conn: sqlite3.Connection, message_id: int) -> int:
    """Below `message_id`, follow the newest child down to a leaf (a loop in damaged links
    ends the walk)."""
    seen, node = {message_id}, message_id
    while True:
        child = conn.execute("SELECT max(id) FROM messages WHERE parent_id = ?",
                             (node,)).fetchone()[0]
        if child is None or child in seen:
            return node
        seen.add(child)
        node = child


class BulkWriter:
    """Adds whole conversations with their own timestamps and ids remapped by the caller;
    used inside `Store.bulk_writer()`, whose transaction makes an import all or nothing."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def has_conversation(self, uid: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM conversations WHERE uid = ?", (uid,))
        return row.fetchone() is not None

    def add_conversation(self, *, uid: str, title: str, created_at: float, updated_at: float,
                         model: str | None = None, extra: dict[str, Any] | None = None) -> int:
        cursor = self._conn.execute(
            "INSERT INTO conversations (uid, title, model, created_at, updated_at, extra) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (uid, title, model, created_at, updated_at, json.dumps(extra or {})),
        )
        return int(cursor.lastrowid or 0)

    def add_message(self, conversation_id: int, message: Message) -> int:
        """`message.parent_id` is a database id already written by this writer."""
        return insert_message(self._conn, conversation_id, message)

    def set_active_leaf(self, conversation_id: int, message_id: int | None) -> None:
        self._conn.execute("UPDATE conversations SET active_leaf_id = ? WHERE id = ?",
                           (message_id, conversation_id))

    def add_document(self, document: documents.StoredDocument) -> int:
        """A document the messages written next link to (kept once per content hash)."""
        return documents.add_document(self._conn, document)
