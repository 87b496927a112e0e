"""The plumbing under `Store` (core/history/store.py): opening and upgrading the file, the one
locked connection, damaged-row bookkeeping and the import writer. Split from store.py so that one
reads as the list of things a user can do with the history.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from desktop_chat.core.history import schema
from desktop_chat.core.history.db import connect, enable_wal, transaction
from desktop_chat.core.history.message_extras import HistoryWriter
from desktop_chat.core.history.records import StoreError

log = logging.getLogger("desktop_chat.store")


class StoreBase:
    """One history file. Opening creates or upgrades it (raising `StoreError` with a message
    for the user when it cannot); every method may be called from any thread."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._damaged: set[tuple[str, object]] = set()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect(self.path, busy_timeout_s)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"The history at {self.path} could not be opened: {exc}") from exc
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise

    def _prepare(self) -> None:
        try:
            version = schema.user_version(self._conn)
            if version > schema.SCHEMA_VERSION:
                raise StoreError(
                    f"This history was written by a newer version of desktop-chat (schema "
                    f"{version}; this version knows up to {schema.SCHEMA_VERSION}). Update "
                    f"desktop-chat to open it. The file was not changed: {self.path}"
                )
            if enable_wal(self._conn, self.busy_timeout_s) != "wal":
                log.warning("%s: WAL is not available here; writes will wait more", self.path)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            schema.migrate(self._conn, self.path)
            self.full_text_search = schema.has_search_index(self._conn)
            if not self.full_text_search:
                with self._write() as conn:
                    self.full_text_search = schema.ensure_search_index(conn)
        except (sqlite3.Error, OSError) as exc:  # OSError: the backup before a migration
            raise StoreError(
                f"The history at {self.path} could not be opened ({exc}). It may be damaged "
                "or not a desktop-chat history file."
            ) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with transaction(self._conn):
                    yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"The history could not be saved: {exc}") from exc

    def _rows(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _skip(self, kind: str, row_id: object, exc: Exception) -> None:
        if (kind, row_id) not in self._damaged:
            self._damaged.add((kind, row_id))
            log.warning("skipped damaged %s row: %s", kind, exc)

    @property
    def skipped_rows(self) -> int:
        """How many damaged rows were skipped (or shown without their settings) so far."""
        return len(self._damaged)

    def damage_notice(self) -> str | None:
        """A line for the window when damaged rows were skipped, else None."""
        count = self.skipped_rows
        return (f"{count} damaged {'entry' if count == 1 else 'entries'} in the history could "
                "not be shown. Details are in the log file.") if count else None

    @contextlib.contextmanager
    def bulk_writer(self) -> Iterator[HistoryWriter]:
        """One transaction on a connection of its own, for imports in a worker thread:
        everything written inside is committed together, or nothing if the block raises."""
        conn = connect(self.path, self.busy_timeout_s)
        try:
            with transaction(conn):
                yield HistoryWriter(conn)
        finally:
            conn.close()
