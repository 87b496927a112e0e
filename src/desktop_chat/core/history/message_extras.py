"""What schema v3 added to a message: its attached images (rows of `attachments`) and whether
its usage was estimated offline. Shared by `Store` and the import writer, so an import stores
them exactly as the app does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from desktop_chat.core.history.db import BulkWriter
from desktop_chat.core.model.message import Attachment, Usage

# Ids per `IN (...)` query: far below sqlite's variable limit on any build.
_CHUNK = 500


def insert_attachments(conn: sqlite3.Connection, message_id: int,
                       attachments: Sequence[Attachment]) -> None:
    conn.executemany(
        "INSERT INTO attachments (message_id, position, mime, name, data) VALUES (?, ?, ?, ?, ?)",
        [(message_id, position, a.mime, a.name, a.data) for position, a in
         enumerate(attachments)],
    )


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


def set_estimated(conn: sqlite3.Connection, message_id: int, usage: Usage | None) -> None:
    """Record whether the message's usage is an offline estimate (insert_message writes the
    counts only)."""
    if usage is not None and usage.estimated:
        conn.execute("UPDATE messages SET usage_estimated = 1 WHERE id = ?", (message_id,))


class HistoryWriter(BulkWriter):
    """The import writer, with the v3 extras."""

    def add_attachments(self, message_id: int, attachments: Sequence[Attachment]) -> None:
        insert_attachments(self._conn, message_id, attachments)

    def set_estimated(self, message_id: int, usage: Usage | None) -> None:
        set_estimated(self._conn, message_id, usage)
