"""What every import shares: a parsed, validated form of a conversation and one way to write
many of them in a single transaction.

Importers first turn a file into `ParsedConversation`s of `Message`s (pure Python, raising
`TransferError` for anything malformed) and only then write; a write error, a malformed
conversation late in the file or a cancel (the progress callback raising) rolls the whole
import back.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from desktop_chat.core.history.db import BulkWriter
from desktop_chat.core.history.records import StoreError
from desktop_chat.core.history.store import Store
from desktop_chat.core.model.message import Message

log = logging.getLogger("desktop_chat.store")

Progress = Callable[[int, int], None]


class TransferError(Exception):
    """An import or export that cannot be done; the message is meant for the user."""


@dataclass(slots=True)
class ImportResult:
    conversations: int = 0
    messages: int = 0
    skipped_messages: int = 0  # hidden, system, tool or empty entries left out
    already_present: int = 0  # conversations imported before (same uid), left alone
    empty_conversations: int = 0  # nothing left to show once skipped entries were removed

    def summary(self) -> str:
        text = (f"Imported {self.conversations} conversation(s) with {self.messages} "
                "message(s).")
        if self.already_present:
            text += f" {self.already_present} were already in your history."
        return text


@dataclass(slots=True)
class ParsedConversation:
    """A conversation read from a file, checked, not yet written. Its messages are ordinary
    `Message`s whose `id` and `parent_id` are numbers local to this conversation (1, 2, …,
    given by `add`); writing maps them to database ids."""

    title: str
    created_at: float
    updated_at: float
    messages: list[Message] = field(default_factory=list)  # parents before children
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    active_leaf: Hashable | None = None  # the file's key of the message shown last
    skipped_messages: int = 0
    keep_if_empty: bool = False  # our own export keeps a chat with no messages yet
    _local: dict[Hashable, int] = field(default_factory=dict, repr=False)

    def add(self, key: Hashable, parent: Hashable | None, message: Message) -> None:
        """Add `message`, known in the file as `key`, below the message added as `parent`
        (None: a root)."""
        message.id = self._local[key] = len(self._local) + 1
        message.parent_id = None if parent is None else self._local[parent]
        self.messages.append(message)

    @property
    def active_leaf_id(self) -> int | None:
        """The local id of the active leaf, if it was kept."""
        return self._local.get(self.active_leaf) if self.active_leaf is not None else None


def tree_order(parents: dict[Hashable, Hashable | None], where: str) -> list[Hashable]:
    """Keys ordered parents-first (depth first, siblings in their given order). A parent
    that is not a key makes a root. Raises on a cycle, which no real tree has."""
    children: dict[Hashable | None, list[Hashable]] = {}
    for key, parent in parents.items():
        children.setdefault(parent if parent in parents else None, []).append(key)
    order: list[Hashable] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        key = stack.pop()
        order.append(key)
        stack.extend(reversed(children.get(key, [])))
    if len(order) != len(parents):
        raise TransferError(f"{where}: its messages refer to each other in a loop.")
    return order


def write_all(store: Store, conversations: Iterable[ParsedConversation], total: int,
              progress: Progress | None = None) -> ImportResult:
    """Write everything in one transaction; `conversations` may be a lazy parser, so a
    malformed entry late in a file still rolls back all earlier ones."""
    result = ImportResult()
    try:
        with store.bulk_writer() as writer:
            _report(progress, 0, total)
            for done, conversation in enumerate(conversations, start=1):
                _write_one(writer, conversation, result)
                _report(progress, done, total)
    except (sqlite3.Error, StoreError) as exc:
        log.exception("import failed while writing")
        raise TransferError(f"The import could not be saved ({exc}). Nothing was imported.",
                            ) from exc
    log.info("imported %s", result)
    return result


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _write_one(writer: BulkWriter, conversation: ParsedConversation,
               result: ImportResult) -> None:
    if writer.has_conversation(conversation.uid):
        result.already_present += 1
        return
    result.skipped_messages += conversation.skipped_messages
    if not conversation.messages and not conversation.keep_if_empty:
        result.empty_conversations += 1
        return
    conversation_id = writer.add_conversation(
        uid=conversation.uid, title=conversation.title, created_at=conversation.created_at,
        updated_at=conversation.updated_at, model=conversation.model, extra=conversation.extra,
    )
    ids: dict[int | None, int | None] = {None: None}  # local id -> database id
    for message in conversation.messages:
        stored = dataclasses.replace(message, parent_id=ids[message.parent_id])
        ids[message.id] = writer.add_message(conversation_id, stored)
    newest = ids[conversation.messages[-1].id] if conversation.messages else None
    leaf = conversation.active_leaf_id
    writer.set_active_leaf(conversation_id, newest if leaf is None else ids[leaf])
    result.conversations += 1
    result.messages += len(conversation.messages)


# -- checking values from a file ---------------------------------------------------------------


def timestamp(value: object, fallback: float | None = None) -> float:
    """Seconds since the epoch; a missing or odd value falls back (to now by default)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    return time.time() if fallback is None else fallback


def optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def enumerate_items(data: object, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(number, item) for a list of JSON objects, numbered from 1 as a user counts."""
    if not isinstance(data, list):
        raise TransferError(f"This file does not contain a list of {what}.")
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise TransferError(f"Entry {number} of the {what} is not an object.")
        yield number, item
