"""A reply's tool calls as the history keeps them: one JSON list in `messages.tool_calls`.

The reply's text stays whole in `content` (so search and every reader that only wants text
work as before); each call records `at`, the length of the text written before it, so the
parts come back in the order they happened. A call still open when it was written (the app
died mid-call) comes back as interrupted once its reply is no longer streaming.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from desktop_chat.core.model.message import (
    STEP_BREAK,
    Message,
    Part,
    ReplyState,
    Text,
    ToolCall,
    ToolCallState,
)

log = logging.getLogger("desktop_chat.store")

COLUMN = "tool_calls"


def calls_json(message: Message) -> str:
    """The column's value for `message` ('[]' when it made no calls)."""
    out = calls_list(message)
    return json.dumps(out, ensure_ascii=False) if out else "[]"


def calls_list(message: Message) -> list[dict[str, Any]]:
    """The calls with where they stand in the text (also the JSON export's form)."""
    out: list[dict[str, Any]] = []
    at = 0  # the length of `content` before the call (as Message.content joins it)
    after_call = False
    for part in message.parts:
        if type(part) is Text and part.text:
            at += len(part.text) + (len(STEP_BREAK) if after_call and at else 0)
            after_call = False
        elif type(part) is ToolCall:
            out.append(call_json(part) | {"at": at})
            after_call = True
    return out


def call_json(call: ToolCall) -> dict[str, Any]:
    """One call as the history and the JSON export write it."""
    return {"id": call.call_id, "name": call.name, "server": call.server, "tool": call.tool,
            "arguments": call.arguments, "step": call.step, "state": call.state.value,
            "result": call.result, "duration_s": call.duration_s}


def call_from_json(raw: object) -> ToolCall | None:
    """A stored or imported call; None (logged) when it is not one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(
            raw.get("name"), str):
        log.warning("a stored tool call is damaged and was left out: %.200r", raw)
        return None
    try:
        state = ToolCallState(raw.get("state", "done"))
    except ValueError:
        state = ToolCallState.INTERRUPTED
    duration = raw.get("duration_s")
    step = raw.get("step")
    return ToolCall(raw["id"], raw["name"], _text(raw.get("arguments")), _text(raw.get("server")),
                    _text(raw.get("tool")), step if isinstance(step, int) else 0, state,
                    _text(raw.get("result")),
                    float(duration) if isinstance(duration, int | float) else None)


def add_calls(message: Message, raw: object) -> None:
    """Put the stored calls (the column's text, or an export's list) back among `message`'s
    parts."""
    if isinstance(raw, str):
        if raw in ("", "[]"):
            return
        try:
            entries = json.loads(raw)
        except ValueError:
            log.warning("message %s: its tool calls are not valid JSON and were left out",
                        message.id)
            return
    else:
        entries = raw
    if not isinstance(entries, list):
        return
    placed: list[tuple[int, ToolCall]] = []
    for entry in entries:
        call = call_from_json(entry)
        if call is None:
            continue
        if call.state.is_open and message.state is not ReplyState.STREAMING:
            call.state = ToolCallState.INTERRUPTED
        at = entry.get("at")  # type: ignore[union-attr]  # a dict: call_from_json checked
        placed.append((at if isinstance(at, int) and at >= 0 else len(message.content), call))
    message.parts = _interleave(message.parts, placed)


def _interleave(parts: list[Part], calls: list[tuple[int, ToolCall]]) -> list[Part]:
    text = "".join(p.text for p in parts if type(p) is Text)
    others = [p for p in parts if type(p) is not Text]
    leading = [p for p in others if type(p) is not ToolCall]  # reasoning, images
    out: list[Part] = leading
    start = 0
    for at, call in sorted(calls, key=lambda item: item[0]):
        at = min(at, len(text))
        if at > start:
            if out and type(out[-1]) is ToolCall and text.startswith(STEP_BREAK, start):
                start += len(STEP_BREAK)  # the break Message.content puts after a step
            out.append(Text(text[start:at]))
            start = at
        out.append(call)
    if start < len(text):
        if out and type(out[-1]) is ToolCall and start and text.startswith(STEP_BREAK, start):
            start += len(STEP_BREAK)
        out.append(Text(text[start:]))
    return out


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
