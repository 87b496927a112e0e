"""What the store hands out besides `Message`s (conversations, sidebar lines, search hits),
and the checks that turn a database row into one of them or into a `Message`.

Rows are validated on the way out, not trusted: a history file may have been written by a
buggy build, edited by hand or partly damaged. A row that does not make sense raises
`DamagedRow`; the store skips it with a log line instead of failing the whole view.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from desktop_chat.core.config.providers import (
    ConversationSettings,
    GenerationParams,
    ReasoningEffort,
)
from desktop_chat.core.history.tool_calls import add_calls
from desktop_chat.core.model.message import Attachment, Message, ReplyState, Role, Usage

# The key of `conversations.extra` that holds the per-conversation overrides.
SETTINGS_KEY = "overrides"
# A title as lists show it (the sidebar, search hits): an imported one may be megabytes, which
# would take seconds to lay out; the full text stays in the database.
TITLE_SHOWN_CHARS = 200

MESSAGE_COLUMNS = (
    "id, conversation_id, parent_id, role, content, reasoning, state, model, finish_reason, "
    "error, prompt_tokens, completion_tokens, total_tokens, created_at, updated_at, "
    "usage_estimated, tool_calls"
)
CONVERSATION_COLUMNS = (
    "id, uid, title, model, created_at, updated_at, active_leaf_id, deleted_at, extra"
)


class StoreError(Exception):
    """A history problem the user can act on; the message is meant to be shown as is.
    `reason`: for a failed write, why, in a few words ("the disk is full")."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class DamagedRow(ValueError):
    """A row that cannot be read as what it claims to be."""


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One line of the sidebar; `title` as shown (see `shown_title`)."""

    id: int
    title: str
    updated_at: float
    message_count: int
    created_at: float = 0.0
    model: str | None = None


@dataclass(frozen=True, slots=True)
class StoredConversation:
    id: int
    uid: str
    title: str
    created_at: float
    updated_at: float
    model: str | None = None
    active_leaf_id: int | None = None
    deleted_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """`message_id` is None when the conversation's title matched (`title` as shown, see
    `shown_title`). `snippet` marks matched
    words with HIGHLIGHT_START / HIGHLIGHT_END (control characters, so the view can escape
    the text for HTML first and then turn the marks into tags)."""

    conversation_id: int
    message_id: int | None
    title: str
    snippet: str
    updated_at: float


HIGHLIGHT_START = "\x02"
HIGHLIGHT_END = "\x03"


def message_from_row(row: sqlite3.Row, sibling_index: int = 0, sibling_count: int = 1,
                     ) -> Message:
    """The message of a `messages` row (its images are rows of `attachments`, added by the
    store)."""
    try:
        role, state = Role(row["role"]), ReplyState(row["state"])
    except ValueError as exc:
        raise DamagedRow(f"message {row['id']}: {exc}") from None
    created = _number(row, "created_at")
    message = Message.of(
        role,
        _text(row, "content"),
        reasoning=_text(row, "reasoning", allow_null=True),
        id=_integer(row, "id"),
        parent_id=_optional_integer(row, "parent_id"),
        state=state,
        model=_optional_text(row, "model"),
        usage=usage_from_row(row),
        finish_reason=_optional_text(row, "finish_reason"),
        error=_optional_text(row, "error"),
        created_at=created,
        updated_at=created if row["updated_at"] is None else _number(row, "updated_at"),
        sibling_index=sibling_index,
        sibling_count=sibling_count,
    )
    add_calls(message, row["tool_calls"])
    return message


def conversation_from_row(row: sqlite3.Row, extra: dict[str, Any]) -> StoredConversation:
    """`extra` is parsed by the caller (see `parse_extra`): damaged settings must not hide
    the conversation itself."""
    return StoredConversation(
        id=_integer(row, "id"),
        uid=_text(row, "uid", allow_null=True),
        title=lenient_text(row["title"]),
        created_at=_number(row, "created_at"),
        updated_at=_number(row, "updated_at"),
        model=_optional_text(row, "model"),
        active_leaf_id=_optional_integer(row, "active_leaf_id"),
        deleted_at=None if row["deleted_at"] is None else _number(row, "deleted_at"),
        extra=extra,
    )


def summary_from_row(row: sqlite3.Row) -> ConversationSummary:
    return ConversationSummary(
        id=_integer(row, "id"),
        title=shown_title(row["title"]),
        updated_at=_number(row, "updated_at"),
        message_count=_integer(row, "message_count"),
        created_at=_number(row, "created_at"),
        model=_optional_text(row, "model"),
    )


def parse_extra(raw: object, row_id: object) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise DamagedRow(f"conversation {row_id}: settings are not a JSON object")
    return value


def lenient_text(value: object) -> str:
    """Titles are shown, never interpreted: a damaged one is shown as best we can rather
    than hiding its conversation."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def shown_title(value: object) -> str:
    """A title for a list: at most `TITLE_SHOWN_CHARS` characters ("…" marks a cut), on one
    line. Queries select `substr(title, 1, TITLE_SHOWN_CHARS + 1)`, so a huge title is never
    even read."""
    title = lenient_text(value)
    if len(title) > TITLE_SHOWN_CHARS:
        title = title[:TITLE_SHOWN_CHARS - 1].rstrip() + "…"
    if "\n" in title or "\r" in title:
        title = " ".join(title.splitlines())
    return title


def usage_columns(usage: Usage | None) -> tuple[int | None, int | None, int | None]:
    if usage is None:
        return None, None, None
    return usage.prompt_tokens, usage.completion_tokens, usage.total_tokens


def usage_from_row(row: sqlite3.Row) -> Usage | None:
    counts = [_optional_integer(row, name)
              for name in ("prompt_tokens", "completion_tokens", "total_tokens")]
    if all(c is None for c in counts):
        return None
    return Usage(*counts, estimated=bool(row["usage_estimated"]))


def attachment_from_row(row: sqlite3.Row) -> Attachment:
    """An attachment as stored; not re-checked against today's size limit (it was sent)."""
    data = row["data"]
    if not isinstance(data, bytes) or not isinstance(row["mime"], str):
        raise DamagedRow(f"attachment {row['id']}: its data or type has the wrong type")
    return Attachment(row["mime"], data, lenient_text(row["name"]))


# -- per-conversation overrides ----------------------------------------------------------------


def settings_from_extra(extra: dict[str, Any], row_id: object) -> ConversationSettings:
    """The overrides kept in `extra`; checked like a row, since a hand-edited or damaged value
    would otherwise be sent to the server on every request."""
    raw = extra.get(SETTINGS_KEY)
    if raw is None:
        return ConversationSettings()
    where = f"conversation {row_id}: overrides"
    if not isinstance(raw, dict):
        raise DamagedRow(f"{where} are not a JSON object")
    model, prompt = raw.get("model"), raw.get("system_prompt")
    if not all(v is None or isinstance(v, str) for v in (model, prompt)):
        raise DamagedRow(f"{where}: model or system prompt is not text")
    params = raw.get("params")
    return ConversationSettings(model=model or None, system_prompt=prompt,
                                params=None if params is None else _params(params, where),
                                tools_off=raw.get("tools_off") is True)


def settings_json(settings: ConversationSettings) -> dict[str, Any]:
    """The overrides as JSON; values left at None are not written."""
    out: dict[str, Any] = {}
    if settings.model:
        out["model"] = settings.model
    if settings.system_prompt is not None:
        out["system_prompt"] = settings.system_prompt
    if settings.params is not None:
        out["params"] = {name: value for name in _PARAM_NAMES
                         if (value := getattr(settings.params, name)) is not None}
    if settings.tools_off:
        out["tools_off"] = True
    return out


_PARAM_NAMES = ("temperature", "top_p", "max_tokens", "reasoning_effort")
_EFFORTS = frozenset(e.value for e in ReasoningEffort)


def _params(raw: object, where: str) -> GenerationParams:
    if not isinstance(raw, dict):
        raise DamagedRow(f"{where}: params are not a JSON object")
    temperature, top_p = raw.get("temperature"), raw.get("top_p")
    max_tokens, effort = raw.get("max_tokens"), raw.get("reasoning_effort")
    checks = [
        temperature is None or (_is_number(temperature) and 0 <= temperature <= 2),
        top_p is None or (_is_number(top_p) and 0 <= top_p <= 1),
        max_tokens is None or (type(max_tokens) is int and max_tokens > 0),
        effort is None or (isinstance(effort, str) and effort in _EFFORTS),
    ]
    if not all(checks):
        raise DamagedRow(f"{where}: a parameter is out of range or has the wrong type")
    return GenerationParams(
        temperature=None if temperature is None else float(temperature),
        top_p=None if top_p is None else float(top_p), max_tokens=max_tokens,
        reasoning_effort=effort)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _damaged(row: sqlite3.Row, name: str, expected: str) -> DamagedRow:
    return DamagedRow(f"row {row['id']}: {name} is {type(row[name]).__name__}, not {expected}")


def _text(row: sqlite3.Row, name: str, allow_null: bool = False) -> str:
    value = row[name]
    if value is None and allow_null:
        return ""
    if not isinstance(value, str):
        raise _damaged(row, name, "text")
    return value


def _optional_text(row: sqlite3.Row, name: str) -> str | None:
    value = row[name]
    if value is not None and not isinstance(value, str):
        raise _damaged(row, name, "text")
    return value


def _integer(row: sqlite3.Row, name: str) -> int:
    value = row[name]
    if not isinstance(value, int):
        raise _damaged(row, name, "an integer")
    return value


def _optional_integer(row: sqlite3.Row, name: str) -> int | None:
    return None if row[name] is None else _integer(row, name)


def _number(row: sqlite3.Row, name: str) -> float:
    value = row[name]
    if not isinstance(value, int | float):
        raise _damaged(row, name, "a number")
    return float(value)
