"""The conversation history: one SQLite file, written as things happen. Why this shape:
- WAL + `synchronous=NORMAL`: a commit costs no fsync, so a streaming reply can be saved
  every second from the GUI thread; a killed process loses nothing committed (a power cut
  may drop the last commits). `busy_timeout` lets two processes share it.
- Messages form a tree (`parent_id`): regenerating or editing adds a sibling; each
  conversation remembers its active leaf, and the transcript is the path root → leaf.
- The reply being streamed is one row updated in place (`update_reply_text`), never a
  rewrite of the conversation. A row still "streaming" at start-up was cut off by a crash.
- Rows are checked when read; a damaged one is skipped, logged and counted (`skipped_rows`,
  `damage_notice()`): one bad row never hides a conversation or crashes.

Threading: a Store owns one connection and serialises every use of it with a lock, so it may
be called from any thread (short calls from the GUI thread; `asyncio.to_thread` for slower
reads). Long writes (imports) use `bulk_writer()`, which opens its own connection: the GUI's
reads keep working from the WAL snapshot while the import's single transaction runs; the
GUI's writes wait for it (up to `busy_timeout_s`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Self, TypeVar

from desktop_chat.core.config.providers import ConversationSettings
from desktop_chat.core.documents.extract import Section
from desktop_chat.core.history import documents, schema, search
from desktop_chat.core.history.db import (
    BulkWriter,
    active_path_ids,
    attachment_rows,
    check_in_conversation,
    connect,
    enable_wal,
    insert_message,
    newest_leaf,
    rows_in_order,
    server_text,
    transaction,
)
from desktop_chat.core.history.records import (
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    SETTINGS_KEY,
    TITLE_SHOWN_CHARS,
    ConversationSummary,
    DamagedRow,
    SearchHit,
    StoredConversation,
    StoreError,
    attachment_from_row,
    conversation_from_row,
    message_from_row,
    parse_extra,
    settings_from_extra,
    settings_json,
    summary_from_row,
    usage_columns,
    usage_from_row,
)
from desktop_chat.core.history.tool_calls import calls_json
from desktop_chat.core.model.message import (
    Attachment,
    DocumentRef,
    Message,
    Passage,
    ReplyState,
    Usage,
)

__all__ = ["HISTORY_FILE", "INTERRUPTED_ERROR", "Store", "StoreError"]

log = logging.getLogger("desktop_chat.store")
T = TypeVar("T")

HISTORY_FILE = "history.sqlite3"
INTERRUPTED_ERROR = "The reply was interrupted: the app closed before it finished."


_CAUSES = (
    ("disk is full", "the disk is full"),
    ("locked", "the file is busy (an import, or another program, is writing to it)"),
    ("busy", "the file is busy (an import, or another program, is writing to it)"),
    ("readonly", "the history file cannot be written (it is read-only)"),
    ("disk i/o error", "the disk reported an error"),
    ("malformed", "the history file is damaged"),
)


def in_words(exc: sqlite3.Error) -> str:
    """What a failed write means for the user (the sqlite text goes to the log)."""
    text = str(exc).lower()
    return next((words for key, words in _CAUSES if key in text), str(exc))


class Store:
    """The history in one file. Opening creates or upgrades it (raising `StoreError` with a
    message for the user when it cannot); every method may be called from any thread."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._damaged: set[tuple[str, object]] = set()
        self._write_wait_s: float | None = None  # limit_write_wait's, kept by reopen()
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

    def reopen(self, between: Callable[[], T]) -> T:
        """Close the file, run `between` (which may replace the file at `path`, e.g. with a
        recovered history), open it again and return what `between` returned. Every other
        use of this store waits meanwhile, so nothing is written to the file being replaced
        and nothing holding this store needs to know."""
        with self._lock:
            self._conn.close()
            try:
                return between()
            finally:
                self._damaged.clear()
                try:
                    self._conn = connect(self.path, self.busy_timeout_s)
                    self._prepare()
                    if self._write_wait_s is not None:
                        self.limit_write_wait(self._write_wait_s)
                except (OSError, sqlite3.Error) as exc:
                    raise StoreError(f"The history at {self.path} could not be opened "
                                     f"again: {exc}") from exc

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
                reason = in_words(exc)
                raise StoreError(f"The history could not be saved: {reason}.", reason) from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Reads fail as `StoreError` with words for the user: a damaged page in the file
        (which sqlite only finds when it reads it) fails what needed it, never the app."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.DatabaseError as exc:
                log.error("history read failed: %s", exc)
                raise StoreError(f"This part of the history could not be read ({exc}). The "
                                 "file may be damaged; details are in the log.") from exc

    def _rows(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self._read() as conn:
            return conn.execute(sql, params).fetchall()

    def limit_write_wait(self, seconds: float) -> None:
        """How long a write on this store's connection waits for another writer (an import
        in its helper process) before it fails with StoreError. The window's store waits only
        briefly: a write on the GUI thread must never freeze it; a failed save is retried."""
        with self._lock:
            self._write_wait_s = seconds
            self._conn.execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")

    def quick_check(self) -> list[str]:
        """sqlite's quick check of every page (no index comparison): the problems found,
        [] for a sound file. Damage would otherwise surface later, on the page a user
        opens. Raises StoreError when the file cannot even be read that far."""
        with self._read() as conn:
            found = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
        return [] if found == ["ok"] else found

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
    def bulk_writer(self) -> Iterator[BulkWriter]:
        """One transaction on a connection of its own, for imports in a worker thread:
        everything written inside is committed together, or nothing if the block raises."""
        conn = connect(self.path, self.busy_timeout_s)
        try:
            with transaction(conn):
                yield BulkWriter(conn)
        finally:
            conn.close()

    # -- conversations -----------------------------------------------------------------------

    def create_conversation(self, title: str = "", model: str | None = None,
                            extra: dict[str, Any] | None = None) -> int:
        now = time.time()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO conversations (uid, title, model, created_at, updated_at, extra) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (uuid.uuid4().hex, title, model, now, now, json.dumps(extra or {})),
            )
            return int(cursor.lastrowid or 0)

    def conversation(self, conversation_id: int) -> StoredConversation | None:
        """With its settings; damaged settings read as {} rather than hiding it."""
        rows = self._rows(f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?",
                          (conversation_id,))
        try:
            extra = parse_extra(rows[0]["extra"], conversation_id) if rows else {}
        except DamagedRow as exc:
            self._skip("conversation settings", conversation_id, exc)
            extra = {}
        try:
            return conversation_from_row(rows[0], extra) if rows else None
        except DamagedRow as exc:
            self._skip("conversation", conversation_id, exc)
            return None

    def list_conversations(self, limit: int | None = 200, offset: int = 0,
                           ) -> list[ConversationSummary]:
        """Not deleted, newest activity first; titles as lists show them (`shown_title`)."""
        rows = self._rows(
            "SELECT c.id, substr(c.title, 1, ?) AS title, c.model, c.created_at, c.updated_at, "
            "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count "
            "FROM conversations c WHERE c.deleted_at IS NULL "
            "ORDER BY c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?",
            (TITLE_SHOWN_CHARS + 1, -1 if limit is None else limit, offset),
        )
        out = []
        for row in rows:
            try:
                out.append(summary_from_row(row))
            except DamagedRow as exc:
                self._skip("conversation", row["id"], exc)
        return out

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE conversations SET title = ? WHERE id = ?",
                         (title, conversation_id))

    def set_conversation_extra(self, conversation_id: int, extra: dict[str, Any]) -> None:
        """Free-form per-conversation settings (system prompt, scroll position...)."""
        with self._write() as conn:
            conn.execute("UPDATE conversations SET extra = ? WHERE id = ?",
                         (json.dumps(extra), conversation_id))

    def conversation_settings(self, conversation_id: int) -> ConversationSettings:
        """Its overrides (model, system prompt, params); damaged ones read as none."""
        conversation = self.conversation(conversation_id)
        try:
            return settings_from_extra(conversation.extra if conversation else {},
                                       conversation_id)
        except DamagedRow as exc:
            self._skip("conversation overrides", conversation_id, exc)
            return ConversationSettings()

    def set_conversation_settings(self, conversation_id: int,
                                  settings: ConversationSettings) -> None:
        """Replace its overrides, keeping the other settings in `extra`."""
        with self._write() as conn:
            row = conn.execute("SELECT extra FROM conversations WHERE id = ?",
                               (conversation_id,)).fetchone()
            if row is None:
                return
            try:
                extra = parse_extra(row["extra"], conversation_id)
            except DamagedRow:
                extra = {}  # unreadable anyway: replaced by what can be read again
            extra.pop(SETTINGS_KEY, None)
            if not settings.is_empty:
                extra[SETTINGS_KEY] = settings_json(settings)
            conn.execute("UPDATE conversations SET extra = ? WHERE id = ?",
                         (json.dumps(extra), conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        """Hide it; `restore_conversation` undoes, `purge_deleted` removes it for good."""
        with self._write() as conn:
            conn.execute("UPDATE conversations SET deleted_at = ? WHERE id = ? "
                         "AND deleted_at IS NULL", (time.time(), conversation_id))

    def restore_conversation(self, conversation_id: int) -> None:
        with self._write() as conn:
            conn.execute("UPDATE conversations SET deleted_at = NULL WHERE id = ?",
                         (conversation_id,))

    def discard_conversation(self, conversation_id: int) -> None:
        """Remove at once, without undo: for a conversation whose only prompt was withdrawn."""
        with self._write() as conn:
            conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def purge_deleted(self, older_than: timedelta = timedelta(0)) -> int:
        """Remove conversations deleted at least `older_than` ago; returns how many."""
        cutoff = time.time() - older_than.total_seconds()
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM conversations WHERE deleted_at IS NOT NULL "
                                  "AND deleted_at <= ?", (cutoff,))
            return cursor.rowcount

    # -- messages ----------------------------------------------------------------------------

    def add_message(self, conversation_id: int, message: Message) -> int:
        """Append `message` under its `parent_id` (None: a first message) and make it the
        active leaf; a second child of the same parent is a new branch (edit & resend,
        regenerate). Sets the message's id and timestamps and returns the id. A reply to be
        streamed into is added in state streaming, then `save_progress` / `finish_reply`."""
        now = time.time()
        with self._write() as conn:
            check_in_conversation(conn, conversation_id, message.parent_id)
            message.created_at = message.updated_at = now
            message.id = insert_message(conn, conversation_id, message)
            conn.execute(
                "UPDATE conversations SET active_leaf_id = ?, updated_at = ?, "
                "model = coalesce(?, model) WHERE id = ?",
                (message.id, now, message.model, conversation_id),
            )
            return message.id

    def save_progress(self, reply: Message) -> None:
        """Save what has arrived so far: one single-row UPDATE (plus its search index entry),
        cheap enough for the GUI thread about once a second."""
        with self._write() as conn:
            conn.execute("UPDATE messages SET content = ?, reasoning = ?, tool_calls = ?, "
                         "updated_at = ? WHERE id = ?",
                         (reply.content, reply.reasoning, calls_json(reply), time.time(),
                          reply.id))

    def finish_reply(self, reply: Message) -> None:
        """Save the reply in its final state: text, reasoning, usage, outcome (its error
        redacted: a server may quote the key back)."""
        if reply.state is ReplyState.STREAMING:
            raise ValueError("finish_reply needs the outcome, not 'streaming'")
        now = reply.updated_at = time.time()
        usage = reply.usage
        with self._write() as conn:
            conn.execute(
                "UPDATE messages SET state = ?, content = ?, reasoning = ?, finish_reason = ?, "
                "error = ?, prompt_tokens = ?, completion_tokens = ?, total_tokens = ?, "
                "usage_estimated = ?, tool_calls = ?, updated_at = ? WHERE id = ?",
                (reply.state.value, reply.content, reply.reasoning,
                 server_text(reply.finish_reason), server_text(reply.error),
                 *usage_columns(usage), int(usage is not None and usage.estimated),
                 calls_json(reply), now, reply.id),
            )
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = "
                         "(SELECT conversation_id FROM messages WHERE id = ?)", (now, reply.id))
            if reply.passages and reply.id is not None:  # the sources it was given
                documents.insert_parts(conn, reply.id, reply)

    def delete_message(self, message_id: int) -> None:
        """Remove a message and everything below it (e.g. a prompt whose request failed
        before any text arrived). The active leaf moves to its parent if it was inside."""
        with self._write() as conn:
            row = conn.execute("SELECT conversation_id, parent_id FROM messages WHERE id = ?",
                               (message_id,)).fetchone()
            if row is None:
                return
            conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            conn.execute(
                "UPDATE conversations SET active_leaf_id = ? WHERE id = ? AND NOT EXISTS "
                "(SELECT 1 FROM messages WHERE id = conversations.active_leaf_id)",
                (row["parent_id"], row["conversation_id"]),
            )

    def mark_interrupted_on_start(self) -> int:
        """Replies left 'streaming' by a crash become 'interrupted', keeping their text. Call
        once at start-up, only in the instance that owns the data dir: a second live
        instance would cut off the first one's reply."""
        with self._write() as conn:
            count = conn.execute(
                "UPDATE messages SET state = ?, error = coalesce(error, ?), updated_at = ? "
                "WHERE state = ?",
                (ReplyState.INTERRUPTED.value, INTERRUPTED_ERROR, time.time(),
                 ReplyState.STREAMING.value),
            ).rowcount
        if count:
            log.info("marked %d reply(ies) cut off by a crash as interrupted", count)
        return count

    def message(self, message_id: int) -> Message | None:
        rows = self._rows(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        found = self._messages(rows)
        return found[0] if found else None

    def _messages(self, rows: list[sqlite3.Row], siblings: bool = False) -> list[Message]:
        out = []
        for row in rows:
            try:
                position = (row["sibling_index"], row["sibling_count"]) if siblings else (0, 1)
                out.append(message_from_row(row, *position))
            except DamagedRow as exc:
                self._skip("message", row["id"], exc)
        self._add_attachments(out)
        return out

    def _add_attachments(self, messages: list[Message]) -> None:
        """Add each message's images, in order; a damaged one is skipped (the message still
        shows)."""
        with self._read() as conn:
            rows = attachment_rows(conn, [m.id for m in messages if m.id is not None])
        found: dict[int, list[Attachment]] = {}
        for row in rows:
            try:
                found.setdefault(row["message_id"], []).append(attachment_from_row(row))
            except DamagedRow as exc:
                self._skip("attachment", row["id"], exc)
        for message in messages:
            message.parts += found.get(message.id or 0, [])
        self._add_documents(messages)

    def _add_documents(self, messages: list[Message]) -> None:
        """Add each message's documents (a prompt's) and passages (a reply's), in order."""
        with self._read() as conn:
            rows = documents.part_rows(conn, [m.id for m in messages if m.id is not None])
        found: dict[int, list[DocumentRef | Passage]] = {}
        for row in rows:
            try:
                found.setdefault(row["message_id"], []).append(documents.part_from_row(row))
            except DamagedRow as exc:
                self._skip("document link", (row["message_id"], row["position"]), exc)
        for message in messages:
            message.parts += found.get(message.id or 0, [])

    def conversation_usages(self, conversation_id: int) -> list[Usage]:
        """The usage of every reply in every branch (each was paid for), oldest first: sum
        them with `core.usage.totals`."""
        rows = self._rows(
            "SELECT id, prompt_tokens, completion_tokens, total_tokens, usage_estimated "
            "FROM messages WHERE conversation_id = ? AND coalesce(prompt_tokens, "
            "completion_tokens, total_tokens) IS NOT NULL ORDER BY id", (conversation_id,))
        out = []
        for row in rows:
            try:
                out.append(usage_from_row(row))
            except DamagedRow as exc:
                self._skip("message", row["id"], exc)
        return [u for u in out if u is not None]

    # -- documents ---------------------------------------------------------------------------

    def add_document(self, document: documents.StoredDocument) -> DocumentRef:
        """Keep a document's text and index its passages (once per content hash: a file
        attached again is not stored twice). Returns the reference a message carries (named
        as the file attached this time)."""
        with self._own_writer("the document") as conn:
            self._prepare_documents(conn)
            with transaction(conn):
                documents.add_document(conn, document)
                stored = documents.document_ref(conn, document.ref.sha256)
        assert stored is not None
        return DocumentRef(stored.sha256, document.ref.name, stored.kind, stored.size,
                           stored.pages, stored.tokens)

    @contextlib.contextmanager
    def _own_writer(self, what: str) -> Iterator[sqlite3.Connection]:
        """A connection of its own to write `what` on, so that the window's reads go on
        meanwhile (safe in a worker thread); failures as `StoreError` naming `what`."""
        try:
            conn = connect(self.path, self.busy_timeout_s)
        except sqlite3.Error as exc:
            raise StoreError(f"The history could not be opened to keep {what}: "
                             f"{in_words(exc)}.") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            reason = in_words(exc)
            raise StoreError(f"{what[0].upper()}{what[1:]} could not be kept in the history: "
                             f"{reason}.", reason) from exc
        finally:
            conn.close()

    def _backup_before(self, conn: sqlite3.Connection, what: str) -> None:
        """The automatic backup a schema change makes, before `what` is added to it."""
        try:
            schema.backup(conn, self.path, schema.user_version(conn))
        except OSError as exc:
            raise StoreError(f"The history could not be backed up before adding "
                             f"{what} to it: {exc.strerror or exc}.") from exc
    def _prepare_documents(self, conn: sqlite3.Connection) -> None:
        """The first document in a history with messages: back it up as a migration does,
        then add the tables."""
        if documents.has_tables(conn):
            return
        if conn.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is not None:
            self._backup_before(conn, "documents")
        with transaction(conn):
            documents.ensure_tables(conn)

    def document(self, sha256: str) -> DocumentRef | None:
        with self._read() as conn:
            return documents.document_ref(conn, sha256)

    def document_sections(self, sha256: str) -> list[Section]:
        """The document's text as extracted, in order ([] when it is not kept)."""
        with self._read() as conn:
            return documents.sections(conn, sha256)

    def search_documents(self, shas: list[str], query: str,
                         limit: int = documents.SEARCH_LIMIT) -> list[Passage]:
        """The passages of these documents that best match `query` (any text), best first."""
        words = search.terms(query)
        with self._read() as conn:
            return documents.search(conn, shas, words, limit)

    def first_passages(self, shas: list[str], per_document: int) -> list[Passage]:
        """The opening passages of these documents, taking turns between them."""
        with self._read() as conn:
            return documents.first_passages(conn, shas, per_document)

    # -- vectors for hybrid retrieval (core/chat/retrieval.py); safe in a worker thread --

    def unembedded_passages(self, shas: list[str], model: str) -> list[tuple[int, str]]:
        """(passage id, text to embed) of these documents' passages without a vector for
        `model`."""
        with self._read() as conn:
            return documents.unembedded(conn, shas, model)

    def add_passage_vectors(self, model: str, rows: list[tuple[int, bytes]]) -> None:
        """Keep float32 vectors of passages for `model`. The first ones add their table,
        after the same backup a migration takes."""
        with self._own_writer("embeddings") as conn:
            if not documents.has_vectors(conn):
                self._backup_before(conn, "embeddings")
            with transaction(conn):
                documents.add_vectors(conn, model, rows)

    def passage_vectors(self, sha256: str, model: str) -> list[tuple[int, bytes]]:
        with self._read() as conn:
            return documents.vectors(conn, sha256, model)

    def ranked_passage_ids(self, shas: list[str], query: str,
                           limit: int = documents.SEARCH_LIMIT) -> list[tuple[int, float]]:
        """(passage id, BM25 score: lower is better) of these documents' passages for
        `query` (any text), best first."""
        words = search.terms(query)
        with self._read() as conn:
            return documents.search_ids(conn, shas, words, limit)

    def passages(self, ids: list[int]) -> list[Passage]:
        with self._read() as conn:
            return documents.passages_by_id(conn, ids)

    def forget_unused_documents(self, older_than_s: float = 24 * 3600) -> int:
        """Remove documents read for a message that was never sent (start-up)."""
        with self._write() as conn:
            return documents.forget_unused(conn, older_than_s)

    # -- the tree ----------------------------------------------------------------------------

    def siblings(self, message_id: int) -> list[int]:
        """Ids of the messages sharing this one's parent (itself included), oldest first."""
        rows = self._rows(
            "SELECT s.id FROM messages m JOIN messages s ON s.conversation_id = "
            "m.conversation_id AND s.parent_id IS m.parent_id WHERE m.id = ? ORDER BY s.id",
            (message_id,),
        )
        return [row[0] for row in rows]

    def set_active_leaf(self, conversation_id: int, message_id: int) -> int:
        """Show the branch through `message_id`: below it, follow the newest replies down to
        a leaf. Returns that leaf."""
        with self._write() as conn:
            check_in_conversation(conn, conversation_id, message_id)
            leaf = newest_leaf(conn, message_id)
            conn.execute("UPDATE conversations SET active_leaf_id = ? WHERE id = ?",
                         (leaf, conversation_id))
            return leaf

    def active_path(self, conversation_id: int) -> list[Message]:
        """The transcript: root to active leaf, with each message's sibling position."""
        return self.recent_messages(conversation_id, limit=None)

    def recent_messages(self, conversation_id: int, limit: int | None = 50,
                        before: int | None = None) -> list[Message]:
        """Up to `limit` messages of the active path, oldest first, ending at the active
        leaf or, with `before`, just above that message: page backwards by passing the
        first message of the previous page. An empty list means the top was reached."""
        with self._read() as conn:
            path = active_path_ids(conn, conversation_id)
            if before is not None:
                path = path[:path.index(before)] if before in path else []
            if limit is not None:
                path = path[-limit:] if limit > 0 else []
            rows = rows_in_order(conn, path)
        return self._messages(rows, siblings=True)

    def all_messages(self, conversation_id: int) -> list[Message]:
        """Every message of every branch, in the order they were added (parents first)."""
        rows = self._rows(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? "
                          "ORDER BY id", (conversation_id,))
        return self._messages(rows)

    # -- search --------------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Conversations whose title matches, then messages (any branch), best first. Any
        text is a valid query; a failing search logs and returns nothing."""
        words = search.terms(query)
        if not words:
            return []
        find = search.search_messages_fts if self.full_text_search else (
            search.search_messages_like)
        try:
            with self._lock:
                titles = search.search_titles(self._conn, words, limit)
                return (titles + find(self._conn, words, limit))[:limit]
        except sqlite3.Error:
            log.exception("search for %d word(s) failed", len(words))
            return []
