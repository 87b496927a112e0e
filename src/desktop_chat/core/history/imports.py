"""What every import shares: a parsed, validated form of a conversation and one way to write
many of them in a single transaction.

Importers first turn a file into `ParsedConversation`s of `Message`s (pure Python, raising
`TransferError` for anything malformed) and only then write; a write error, a malformed
conversation late in the file or a cancel (the progress callback raising) rolls the whole
import back.

Any input ends in one of two ways: an `ImportResult`, or a `TransferError` whose text names
the conversation and the field at fault (values are quoted shortened, see `shown`). A value
whose meaning is clear is coerced (a lone surrogate, which no UTF-8 file can hold, becomes
U+FFFD); one that is not is refused (a time outside the years 1970-9999, a token count beyond
64 bits, a role that is not text). A failure nobody foresaw still becomes a `TransferError`
naming the conversation, and the transaction is rolled back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from desktop_chat.core.history.db import BulkWriter
from desktop_chat.core.history.documents import StoredDocument
from desktop_chat.core.history.records import StoreError
from desktop_chat.core.history.store import Store
from desktop_chat.core.model.message import Attachment, Message, Reasoning, Text

log = logging.getLogger("desktop_chat.store")

Progress = Callable[[int, int], None]

# The last second `datetime` can show (9999-12-31 23:59:59 UTC): a later time, or one before
# 1970, is no date a chat has, and would fail wherever it is shown.
MAX_TIMESTAMP = 253_402_300_799.0
MAX_COUNT = 2**63 - 1  # SQLite's largest INTEGER
SHOWN_CHARS = 60  # of a value quoted in a message
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    where: str = "A conversation"  # how messages name it ("Conversation 3 ('Title')")
    active_leaf: Hashable | None = None  # the file's key of the message shown last
    skipped_messages: int = 0
    keep_if_empty: bool = False  # our own export keeps a chat with no messages yet
    # the documents its messages refer to, written before them (kept once per content hash)
    documents: list[StoredDocument] = field(default_factory=list)
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
    if writer.has_conversation(clean_text(conversation.uid)):
        result.already_present += 1
        return
    result.skipped_messages += conversation.skipped_messages
    if not conversation.messages and not conversation.keep_if_empty:
        result.empty_conversations += 1
        return
    try:
        extra = clean_json(conversation.extra, conversation.where)
        conversation_id = writer.add_conversation(
            uid=clean_text(conversation.uid), title=clean_text(conversation.title),
            created_at=conversation.created_at, updated_at=conversation.updated_at,
            model=clean_optional(conversation.model), extra=extra,
        )
        for document in conversation.documents:
            writer.add_document(document)
        ids: dict[int | None, int | None] = {None: None}  # local id -> database id
        for message in conversation.messages:
            stored = clean_message(dataclasses.replace(message, parent_id=ids[message.parent_id]))
            ids[message.id] = writer.add_message(conversation_id, stored)
    except (sqlite3.Error, StoreError, TransferError):
        raise
    except Exception as exc:  # a value nobody foresaw: refused, naming the conversation
        log.exception("%s could not be written", conversation.where)
        raise TransferError(f"{conversation.where} could not be saved: it holds a value "
                            f"that cannot be stored ({type(exc).__name__}).") from exc
    newest = ids[conversation.messages[-1].id] if conversation.messages else None
    leaf = conversation.active_leaf_id
    writer.set_active_leaf(conversation_id, newest if leaf is None else ids[leaf])
    result.conversations += 1
    result.messages += len(conversation.messages)


def parse_each(items: list[tuple[int, dict[str, Any]]],
               parse: Callable[[dict[str, Any], str], ParsedConversation],
               name: Callable[[int, dict[str, Any]], str]) -> Iterator[ParsedConversation]:
    """`parse(item, where)` for each item, lazily; a failure nobody foresaw (a bug of ours
    meeting an odd value) is a `TransferError` naming the conversation, like any other."""
    for number, item in items:
        where = name(number, item)
        try:
            parsed = parse(item, where)
        except TransferError:
            raise
        except MemoryError:
            raise TransferError(f"{where} is too large for the memory available.") from None
        except Exception as exc:
            log.exception("%s could not be read", where)
            raise TransferError(f"{where} could not be read: it holds a value this version "
                                f"does not understand ({type(exc).__name__}).") from exc
        parsed.where = where
        yield parsed


# -- checking values from a file ---------------------------------------------------------------


def timestamp(value: object, fallback: float | None = None, *, where: str, name: str,
              ) -> float:
    """Seconds since the epoch. A missing value, or one that is not a number, falls back (to
    now by default); a number that is no time between 1970 and 9999 (negative, huge,
    infinite, NaN) is refused, naming `where` and the field `name`."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return time.time() if fallback is None else fallback
    try:
        seconds = float(value)
    except OverflowError:  # an integer too large for a float
        seconds = math.inf
    if not 0.0 <= seconds <= MAX_TIMESTAMP:  # NaN fails both
        raise TransferError(f"{where}: its {name} ({shown(value)}) is not a time between the "
                            "years 1970 and 9999.")
    return seconds


def count(value: object, *, where: str, name: str) -> int | None:
    """A token count: None unless an integer; refused if no database can hold it."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if not 0 <= value <= MAX_COUNT:
        raise TransferError(f"{where}: its {name} ({shown(value)}) is not a token count "
                            "(a whole number from 0 to 2^63 - 1).")
    return value


def optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value from a file, quoted for a message to the user: strings shortened to `limit`
    characters, numbers as written unless they are very long, anything else by its kind."""
    if isinstance(value, str):
        cut = clean_text(value[:limit])
        return repr(cut + "…" if len(value) > limit else cut)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if value.bit_length() > 200:  # quoted whole it would be a wall of digits
            try:
                return f"a number of {len(str(abs(value)))} digits"
            except ValueError:  # more digits than Python turns into text
                return "a number of thousands of digits"
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return {list: "a list", dict: "an object"}.get(type(value), f"a {type(value).__name__}")


# -- making values storable --------------------------------------------------------------------


def clean_text(text: str) -> str:
    """`text` as UTF-8 can hold it: a lone surrogate (JSON allows "\\ud800" on its own; UTF-8,
    and so SQLite, does not) becomes U+FFFD, the replacement character."""
    if text.isascii():  # O(1) for most strings
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def clean_optional(text: str | None) -> str | None:
    return None if text is None else clean_text(text)


def clean_message(message: Message) -> Message:
    """The message with every string storable (see `clean_text`)."""
    parts = [type(p)(clean_text(p.text)) if isinstance(p, Text | Reasoning)
             else Attachment(p.mime, p.data, clean_text(p.name)) if isinstance(p, Attachment)
             else p for p in message.parts]
    return dataclasses.replace(
        message, parts=parts, model=clean_optional(message.model),
        error=clean_optional(message.error), finish_reason=clean_optional(message.finish_reason))


def clean_json(value: dict[str, Any], where: str) -> dict[str, Any]:
    """Free-form settings from a file, made storable: strings cleaned (see `clean_text`);
    refused when nested deeper than JSON can be written back."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except RecursionError:
        raise TransferError(f"{where}: its settings ('extra') are nested too deeply to keep."
                            ) from None
    except (TypeError, ValueError) as exc:
        raise TransferError(f"{where}: its settings ('extra') cannot be kept ({exc}).",
                            ) from None
    cleaned = clean_text(text)
    return value if cleaned is text else json.loads(cleaned)


def enumerate_items(data: object, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(number, item) for a list of JSON objects, numbered from 1 as a user counts."""
    if not isinstance(data, list):
        raise TransferError(f"This file does not contain a list of {what}.")
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise TransferError(f"Entry {number} of the {what} is not an object.")
        yield number, item
