"""What the loopback server says on OpenAI's Responses API wire (POST /v1/responses).

The same `Scenario` as Chat Completions scripts it: `reasoning` becomes reasoning-summary
deltas, `deltas` output-text deltas, `usage` the usage of `response.completed` (chat-shaped
usage is translated). The last event is `response.completed` for finish_reason "stop",
`response.incomplete` for any other reason, `response.failed` when `response_error` is set,
and nothing when finish_reason is None. `stream_error_after_events` replaces every event from
that index on with an `error` event; indices count every event, so text starts at index 4
(created, in_progress, output_item.added, content_part.added) when there is no reasoning.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support.chat_wire import MALFORMED_EVENT, Scenario, pieces, split_raw

RESPONSE_ID = "resp_test"
MESSAGE_ID = "msg_test"
REASONING_ID = "rs_test"
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def responses_event(payload: dict[str, Any]) -> bytes:
    return (f"event: {payload['type']}\ndata: ".encode() + json.dumps(payload).encode()
            + b"\n\n")


def build_response_events(sc: Scenario) -> list[bytes]:
    """All SSE events (each ending in a blank line) the scenario writes, faults included."""
    if sc.raw_sse is not None:
        events = split_raw(sc.raw_sse)
    else:
        payloads = [
            {"type": "response.created", "response": response_object(sc, "in_progress")},
            {"type": "response.in_progress", "response": response_object(sc, "in_progress")},
            *_reasoning_item(sc),
            *_message_item(sc),
            *_function_calls(sc),
            *_terminal(sc),
        ]
        events = [responses_event({**p, "sequence_number": n}) for n, p in enumerate(payloads)]
    if sc.stream_error_after_events is not None:
        cut = sc.stream_error_after_events
        code = sc.stream_error.get("code")
        error = {"type": "error", "code": None if code is None else str(code),
                 "message": sc.stream_error.get("message", "error"), "param": None,
                 "sequence_number": cut}
        events = [*events[:cut], responses_event(error)]
    if sc.malformed_after_events is not None:
        events.insert(sc.malformed_after_events, MALFORMED_EVENT)
    return events


def _reasoning_item(sc: Scenario) -> list[dict[str, Any]]:
    if not sc.reasoning:
        return []
    where = {"item_id": REASONING_ID, "output_index": 0}
    item = {"id": REASONING_ID, "type": "reasoning", "summary": []}
    part = {"type": "summary_text", "text": ""}
    return [
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.reasoning_summary_part.added", **where, "summary_index": 0,
         "part": part},
        *({"type": "response.reasoning_summary_text.delta", **where, "summary_index": 0,
           "delta": text} for text in sc.reasoning),
        {"type": "response.reasoning_summary_text.done", **where, "summary_index": 0,
         "text": "".join(sc.reasoning)},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {**item, "summary": [{"type": "summary_text", "text": "".join(sc.reasoning)}]}},
    ]


def _message_item(sc: Scenario) -> list[dict[str, Any]]:
    index = 1 if sc.reasoning else 0
    where = {"item_id": MESSAGE_ID, "output_index": index, "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": []}
    item = {"id": MESSAGE_ID, "type": "message", "role": "assistant", "status": "in_progress",
            "content": []}
    text = "".join(sc.deltas)
    return [
        {"type": "response.output_item.added", "output_index": index, "item": item},
        {"type": "response.content_part.added", **where, "part": empty},
        *({"type": "response.output_text.delta", **where, "delta": d, "logprobs": []}
          for d in sc.deltas),
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": {**empty, "text": text}},
        {"type": "response.output_item.done", "output_index": index,
         "item": {**item, "status": "completed", "content": [{**empty, "text": text}]}},
    ]


def _function_calls(sc: Scenario) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    first = (1 if sc.reasoning else 0) + 1
    for offset, call in enumerate(sc.tool_calls):
        index, item_id = first + offset, f"fc_{call['id']}"
        item = {"id": item_id, "type": "function_call", "call_id": call["id"],
                "name": call["name"], "arguments": "", "status": "in_progress"}
        arguments = call.get("arguments", "")
        out.append({"type": "response.output_item.added", "output_index": index, "item": item})
        out += [{"type": "response.function_call_arguments.delta", "item_id": item_id,
                 "output_index": index, "delta": piece}
                for piece in pieces(arguments, sc.tool_arg_piece)]
        out.append({"type": "response.function_call_arguments.done", "item_id": item_id,
                    "output_index": index, "arguments": arguments})
        out.append({"type": "response.output_item.done", "output_index": index,
                    "item": {**item, "arguments": arguments, "status": "completed"}})
    return out


def _terminal(sc: Scenario) -> list[dict[str, Any]]:
    if sc.response_error is not None:
        return [{"type": "response.failed", "response": response_object(sc, "failed")}]
    if sc.finish_reason is None:
        return []
    if sc.finish_reason == "stop":
        return [{"type": "response.completed", "response": response_object(sc, "completed")}]
    return [{"type": "response.incomplete", "response": response_object(sc, "incomplete")}]


def response_object(sc: Scenario, status: str) -> dict[str, Any]:
    """The `response` a lifecycle event carries (also the body of a non-streamed request)."""
    done = status != "in_progress"
    reason = _INCOMPLETE.get(sc.finish_reason or "", "max_output_tokens")
    text = "".join(sc.deltas)
    output = [{"id": MESSAGE_ID, "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": text, "annotations": []}]}]
    return {
        "id": RESPONSE_ID, "object": "response", "created_at": int(time.time()),
        "model": sc.model, "status": status,
        "error": sc.response_error if status == "failed" else None,
        "incomplete_details": {"reason": reason} if status == "incomplete" else None,
        "output": output if done and status != "failed" else [],
        "usage": _usage(sc.usage) if done and status != "failed" else None,
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
    }


def _usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if usage is None or "input_tokens" in usage:
        return usage
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.get("total_tokens", prompt + completion)}
