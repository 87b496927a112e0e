"""What the loopback server says on the Chat Completions wire, and the scenarios that script it.

Events: reasoning deltas, content deltas, finish, usage; then either the stream error (replacing
everything from index ``stream_error_after_events`` on) or [DONE]; then the malformed line is
inserted at ``malformed_after_events``. ``raw_sse`` gets no finish/usage/[DONE] added.
The same `Scenario` scripts the Responses API wire (tests/support/responses_wire.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

MALFORMED_EVENT = b'data: {"choices": [{"delta": {"content": "x"\n\n'
_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request", "invalid_request_error", None),
    401: ("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
    404: ("The model does not exist", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request", "server_error", None),
}
_STREAM_ERROR = {"message": "The model crashed", "type": "server_error", "code": 500}


@dataclass
class Scenario:
    deltas: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    reasoning_field: str = "reasoning_content"
    pace: float = 0.0
    status: int = 200
    error_body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    usage_always: bool = False
    finish_reason: str | None = "stop"
    send_done: bool = True
    disconnect_after_bytes: int | None = None
    stall_after_events: int | None = None
    stall_before_headers: bool = False
    malformed_after_events: int | None = None
    stream_error_after_events: int | None = None
    stream_error: dict[str, Any] = field(default_factory=lambda: dict(_STREAM_ERROR))
    raw_sse: bytes | None = None
    reject_stream_options: bool = False
    model: str = "test-model"
    response_error: dict[str, Any] | None = None  # Responses API: end in response.failed
    # Tool calls after the text: {"id", "name", "arguments"} each (arguments: the JSON text,
    # streamed in pieces of `tool_arg_piece` characters); several are parallel calls. The
    # finish reason becomes "tool_calls" unless set to something else than "stop".
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    tool_arg_piece: int = 8

    @property
    def effective_finish(self) -> str | None:
        if self.tool_calls and self.finish_reason == "stop":
            return "tool_calls"
        return self.finish_reason

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        if isinstance(data.get("raw_sse"), str):
            data = {**data, "raw_sse": data["raw_sse"].encode()}
        return cls(**data)


@dataclass
class RecordedRequest:
    """One request as the server saw it; `path` has no query, `target` is the raw request line
    target (an absolute URL when the request came through a proxy)."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any] | None  # the JSON body, if it was a JSON object
    query: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    target: str = ""
    received_at: float = field(default_factory=time.perf_counter)  # when it arrived


def default_error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    default_message, kind, code = _DEFAULT_ERRORS.get(status, (f"HTTP {status}", kind, None))
    error = {"message": message or default_message, "type": kind, "param": None, "code": code}
    return {"error": error}


def sse_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def build_events(sc: Scenario, include_usage: bool) -> list[bytes]:
    """All SSE events (each ending in a blank line) the scenario writes, faults included."""
    if sc.raw_sse is not None:
        events = split_raw(sc.raw_sse)
    else:
        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": sc.model}
        deltas = [{sc.reasoning_field: t} for t in sc.reasoning]
        deltas += [{"content": t} for t in sc.deltas]
        deltas += tool_call_deltas(sc)
        if deltas:
            deltas[0] = {"role": "assistant", **deltas[0]}
        choices: list[Any] = [[{"index": 0, "delta": d, "finish_reason": None}] for d in deltas]
        if sc.effective_finish is not None:
            choices.append([{"index": 0, "delta": {}, "finish_reason": sc.effective_finish}])
        events = [sse_event({**base, "choices": c}) for c in choices]
        if sc.usage is not None and (include_usage or sc.usage_always):
            events.append(sse_event({**base, "choices": [], "usage": sc.usage}))
    if sc.stream_error_after_events is not None:
        events = [*events[: sc.stream_error_after_events], sse_event({"error": sc.stream_error})]
    elif sc.send_done and sc.raw_sse is None:
        events.append(b"data: [DONE]\n\n")
    if sc.malformed_after_events is not None:
        events.insert(sc.malformed_after_events, MALFORMED_EVENT)
    return events


def pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), max(1, size))] or [""]


def tool_call_deltas(sc: Scenario) -> list[dict[str, Any]]:
    """Each call as OpenAI streams it: id, type and name first, then its arguments in pieces."""
    out: list[dict[str, Any]] = []
    for index, call in enumerate(sc.tool_calls):
        out.append({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                    "function": {"name": call["name"], "arguments": ""}}]})
        out += [{"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                for piece in pieces(call.get("arguments", ""), sc.tool_arg_piece)]
    return out


def split_raw(raw: bytes) -> list[bytes]:
    """A captured SSE body as its events, replayed byte for byte."""
    parts = raw.split(b"\n\n")
    return [p + b"\n\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def completion(sc: Scenario) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(sc.deltas)}
    if sc.reasoning:
        message[sc.reasoning_field] = "".join(sc.reasoning)
    usage = sc.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    choice = {"index": 0, "message": message, "finish_reason": sc.finish_reason or "stop"}
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": sc.model, "choices": [choice], "usage": usage}
