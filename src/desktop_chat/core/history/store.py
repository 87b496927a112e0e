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

import dataclasses
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from desktop_chat.core.config.providers import ConversationSettings
from desktop_chat.core.history import search
from desktop_chat.core.history.db import (
    check_in_conversation,
    insert_message,
    newest_leaf,
    path_rows,
    path_start,
)
from desktop_chat.core.history.message_extras import (
    attachment_rows,
    insert_attachments,
    set_estimated,
)
from desktop_chat.core.history.records import (
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    SETTINGS_KEY,
    ConversationSummary,
    DamagedRow,
    SearchHit,
    StoredConversation,
    StoredMessage,
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
from desktop_chat.core.history.store_base import StoreBase
from desktop_chat.core.model.message import Attachment, ReplyState, Role, Usage

__all__ = ["HISTORY_FILE", "INTERRUPTED_ERROR", "Store", "StoreError"]

log = logging.getLogger("desktop_chat.store")

HISTORY_FILE = "history.sqlite3"
INTERRUPTED_ERROR = "The reply was interrupted: the app closed before it finished."


class Store(StoreBase):
    """The history in one file. Opening creates or upgrades it (raising `StoreError` with a
    message for the user when it cannot); every method may be called from any thread."""

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
        """Not deleted, newest activity first."""
        rows = self._rows(
            "SELECT c.id, c.title, c.model, c.created_at, c.updated_at, (SELECT count(*) "
            "FROM messages m WHERE m.conversation_id = c.id) AS message_count "
            "FROM conversations c WHERE c.deleted_at IS NULL "
            "ORDER BY c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?",
            (-1 if limit is None else limit, offset),
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

    def add_message(self, conversation_id: int, parent_id: int | None, role: Role,
                    content: str, *, state: ReplyState = ReplyState.COMPLETE,
                    model: str | None = None, reasoning: str = "", usage: Usage | None = None,
                    finish_reason: str | None = None, error: str | None = None,
                    attachments: Sequence[Attachment] = ()) -> int:
        """Append under `parent_id` (None: a first message) and make it the active leaf.
        A second child of the same parent is a new branch (edit & resend, regenerate).
        Attachments are written in the same transaction: never a message without them."""
        now = time.time()
        with self._write() as conn:
            check_in_conversation(conn, conversation_id, parent_id)
            message_id = insert_message(
                conn, conversation_id, parent_id, role, content, state=state, model=model,
                reasoning=reasoning, usage=usage, finish_reason=finish_reason, error=error,
                created_at=now, updated_at=now,
            )
            insert_attachments(conn, message_id, attachments)
            set_estimated(conn, message_id, usage)
            conn.execute(
                "UPDATE conversations SET active_leaf_id = ?, updated_at = ?, "
                "model = coalesce(?, model) WHERE id = ?",
                (message_id, now, model, conversation_id),
            )
            return message_id

    def begin_reply(self, conversation_id: int, parent_id: int | None, model: str) -> int:
        """An empty assistant message in state streaming, to be filled as the reply grows."""
        return self.add_message(conversation_id, parent_id, Role.ASSISTANT, "",
                                state=ReplyState.STREAMING, model=model)

    def update_reply_text(self, message_id: int, content: str, reasoning: str = "") -> None:
        """Save what has arrived so far: one single-row UPDATE (plus its search index entry),
        cheap enough for the GUI thread about once a second."""
        with self._write() as conn:
            conn.execute("UPDATE messages SET content = ?, reasoning = ?, updated_at = ? "
                         "WHERE id = ?", (content, reasoning, time.time(), message_id))

    def finish_reply(self, message_id: int, state: ReplyState, content: str,
                     reasoning: str = "", usage: Usage | None = None,
                     finish_reason: str | None = None, error: str | None = None) -> None:
        if state is ReplyState.STREAMING:
            raise ValueError("finish_reply needs the outcome, not 'streaming'")
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "UPDATE messages SET state = ?, content = ?, reasoning = ?, finish_reason = ?, "
                "error = ?, prompt_tokens = ?, completion_tokens = ?, total_tokens = ?, "
                "usage_estimated = ?, updated_at = ? WHERE id = ?",
                (state.value, content, reasoning, finish_reason, error, *usage_columns(usage),
                 int(usage is not None and usage.estimated), now, message_id),
            )
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = "
                         "(SELECT conversation_id FROM messages WHERE id = ?)", (now, message_id))

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

    def message(self, message_id: int) -> StoredMessage | None:
        rows = self._rows(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        found = self._messages(rows)
        return found[0] if found else None

    def _messages(self, rows: list[sqlite3.Row], siblings: bool = False,
                  ) -> list[StoredMessage]:
        out = []
        for row in rows:
            try:
                position = (row["sibling_index"], row["sibling_count"]) if siblings else (0, 1)
                out.append(message_from_row(row, *position))
            except DamagedRow as exc:
                self._skip("message", row["id"], exc)
        return self._with_attachments(out)

    def _with_attachments(self, messages: list[StoredMessage]) -> list[StoredMessage]:
        """Attach the images; a damaged one is skipped (the message still shows)."""
        with self._lock:
            rows = attachment_rows(self._conn, [m.id for m in messages])
        found: dict[int, list[Attachment]] = {}
        for row in rows:
            try:
                found.setdefault(row["message_id"], []).append(attachment_from_row(row))
            except DamagedRow as exc:
                self._skip("attachment", row["id"], exc)
        return [dataclasses.replace(m, attachments=tuple(found[m.id])) if m.id in found
                else m for m in messages]

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

    def active_path(self, conversation_id: int) -> list[StoredMessage]:
        """The transcript: root to active leaf, with each message's sibling position."""
        return self.recent_messages(conversation_id, limit=None)

    def recent_messages(self, conversation_id: int, limit: int | None = 50,
                        before: int | None = None) -> list[StoredMessage]:
        """Up to `limit` messages of the active path, oldest first, ending at the active
        leaf or, with `before`, just above that message: page backwards by passing the
        first message of the previous page. An empty list means the top was reached."""
        with self._lock:
            start = path_start(self._conn, conversation_id, before)
            rows = [] if start is None else path_rows(self._conn, conversation_id, start, limit)
        return self._messages(rows, siblings=True)

    def all_messages(self, conversation_id: int) -> list[StoredMessage]:
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
