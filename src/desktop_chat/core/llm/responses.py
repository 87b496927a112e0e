"""OpenAI's Responses API, mapped onto the same events as Chat Completions.

`ChatClient` opens the stream (so retries and HTTP error mapping stay in one place); this
module only shapes the request body and turns the server's semantic events into ours. It
needs no SDK import: it reads the events' fields, whatever class the SDK gave them.

The SDK raises nothing for a Responses `error` event or a `response.failed` event (they have
no top-level "error" key), so both are turned into `Failed` here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from desktop_chat.core.config.providers import GenerationParams
from desktop_chat.core.llm import errors
from desktop_chat.core.llm.errors import ChatError
from desktop_chat.core.llm.events import (
    Failed,
    Finished,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallRequest,
    ToolCallsRequested,
)
from desktop_chat.core.model.message import Usage

log = logging.getLogger("desktop_chat.responses")

TEXT_EVENTS = frozenset({"response.output_text.delta", "response.refusal.delta"})
# Summaries from OpenAI's reasoning models; full reasoning text from open models (gpt-oss).
REASONING_EVENTS = frozenset({"response.reasoning_summary_text.delta",
                              "response.reasoning_text.delta"})
INSTRUCTION_ROLES = frozenset({"system", "developer"})
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}

ErrorMapper = Callable[[Exception, bool], ChatError]


def request_body(messages: list[dict[str, Any]], params: GenerationParams,
                 tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Chat-shaped messages -> `instructions` + `input` items, plus the params that are set.

    System messages become `instructions`; user images become `input_image` items; an
    assistant message's `tool_calls` become `function_call` items and `tool` messages
    `function_call_output` items. Chat-shaped `tools` become Responses function tools."""
    instructions = "\n\n".join(
        _plain_text(m.get("content")) for m in messages if m.get("role") in INSTRUCTION_ROLES
    )
    body: dict[str, Any] = {
        "input": [item for m in messages if m.get("role") not in INSTRUCTION_ROLES
                  for item in _input_items(m)],
    }
    if tools:
        body["tools"] = [_function_tool(t) for t in tools]
    if instructions:
        body["instructions"] = instructions
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.max_tokens is not None:
        body["max_output_tokens"] = params.max_tokens
    if params.reasoning_effort:
        # "auto": the reasoning summary streams as response.reasoning_summary_text.delta
        body["reasoning"] = {"effort": params.reasoning_effort, "summary": "auto"}
    return body


def _function_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    return {"type": "function", "name": function.get("name", ""),
            "description": function.get("description", ""),
            "parameters": function.get("parameters", {"type": "object", "properties": {}})}


def _input_items(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    role = message.get("role")
    if role == "tool":
        return [{"type": "function_call_output", "call_id": str(message.get("tool_call_id")),
                 "output": _plain_text(message.get("content"))}]
    calls = message.get("tool_calls") if role == "assistant" else None
    if not calls:
        return [_input_item(message)]
    items = [_input_item(message)] if _plain_text(message.get("content")) else []
    for call in calls:
        function = call.get("function") or {}
        items.append({"type": "function_call", "call_id": str(call.get("id")),
                      "name": function.get("name", ""),
                      "arguments": function.get("arguments", "{}")})
    return items


def _input_item(message: Mapping[str, Any]) -> dict[str, Any]:
    role = str(message.get("role") or "user")
    content = message.get("content")
    if role != "user" or not isinstance(content, list):
        return {"role": role, "content": _plain_text(content)}
    return {"role": role, "content": [_input_part(p) for p in content if isinstance(p, Mapping)]}


def _input_part(part: Mapping[str, Any]) -> dict[str, Any]:
    if part.get("type") == "image_url":
        image = part.get("image_url")
        url = image.get("url", "") if isinstance(image, Mapping) else str(image or "")
        detail = image.get("detail", "auto") if isinstance(image, Mapping) else "auto"
        return {"type": "input_image", "image_url": url, "detail": detail}
    if part.get("type") == "text":
        return {"type": "input_text", "text": str(part.get("text", ""))}
    return dict(part)  # already Responses-shaped (input_text, input_image, ...)


def _plain_text(content: Any) -> str:
    """Text of a string or of a parts list (images dropped: only user turns keep them)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content
            if isinstance(p, Mapping) and p.get("type") in ("text", "input_text", "output_text")
        )
    return "" if content is None else str(content)


async def events(sdk_stream: Any, stream_error: ErrorMapper) -> AsyncIterator[StreamEvent]:
    """Server events -> ours. Ends after the first terminal event; the response is closed
    however the iteration ends."""
    received_any = False
    calls: dict[str, list[str]] = {}  # item id -> [call id, name, argument pieces...]
    try:
        async for event in sdk_stream:
            received_any = True
            if _gather_call(calls, event):
                continue
            mapped, terminal = _map(event)
            if terminal and calls and not isinstance(mapped[-1], Failed):
                mapped.insert(len(mapped) - 1, ToolCallsRequested(tuple(
                    ToolCallRequest(c[0] or item, c[1], "".join(c[2:]))
                    for item, c in calls.items())))
            for item in mapped:
                yield item
            if terminal:
                return
    except Exception as exc:
        yield Failed(stream_error(exc, received_any))
        return
    finally:
        await sdk_stream.close()
    yield Failed(errors.interrupted("the server ended the stream before the reply was complete"))


def _gather_call(calls: dict[str, list[str]], event: Any) -> bool:
    """Collect function calls as they stream; True when the event was one of theirs."""
    kind = _get(event, "type")
    if kind in ("response.output_item.added", "response.output_item.done"):
        item = _get(event, "item")
        if _get(item, "type") != "function_call":
            return False
        key = str(_get(item, "id") or _get(item, "call_id"))
        call = calls.setdefault(key, [str(_get(item, "call_id") or ""),
                                      str(_get(item, "name") or "")])
        arguments = _get(item, "arguments")
        if kind.endswith(".done") and isinstance(arguments, str):
            del call[2:]
            call.append(arguments)  # the complete text wins over the pieces
        return True
    if kind == "response.function_call_arguments.delta":
        call = calls.setdefault(str(_get(event, "item_id")), ["", ""])
        call.append(str(_get(event, "delta") or ""))
        return True
    return kind == "response.function_call_arguments.done"


def _map(event: Any) -> tuple[list[StreamEvent], bool]:
    """One server event -> (our events, whether the reply is over)."""
    kind = _get(event, "type")
    if kind in TEXT_EVENTS:
        return [TextDelta(str(_get(event, "delta") or ""))], False
    if kind in REASONING_EVENTS:
        return [ReasoningDelta(str(_get(event, "delta") or ""))], False
    if kind == "response.reasoning_summary_part.added" and (_get(event, "summary_index") or 0):
        return [ReasoningDelta("\n\n")], False  # summary parts are separate paragraphs
    if kind == "response.completed":
        return [*_usage(_get(event, "response")), Finished("stop")], True
    if kind == "response.incomplete":
        response = _get(event, "response")
        reason = _get(_get(response, "incomplete_details"), "reason")
        return [*_usage(response), Finished(_INCOMPLETE_REASONS.get(str(reason), "length"))], True
    if kind == "response.failed":
        error = _get(_get(event, "response"), "error")
        return [Failed(_server_error(error, "The response failed"))], True
    if kind == "error":
        return [Failed(_server_error(event, "An error occurred during streaming"))], True
    return [], False


def _server_error(error: Any, fallback: str) -> ChatError:
    message = _get(error, "message")
    code = _get(error, "code")
    text = message if isinstance(message, str) and message else fallback
    log.warning("Responses stream failed: %s (code %s)", text, code)
    return errors.stream_error(text, f"code={code!r}")


def _usage(response: Any) -> list[StreamEvent]:
    usage = _get(response, "usage")
    if usage is None:
        return []
    return [Usage(
        prompt_tokens=_get(usage, "input_tokens"),
        completion_tokens=_get(usage, "output_tokens"),
        total_tokens=_get(usage, "total_tokens"),
    )]


def _get(obj: Any, name: str) -> Any:
    """A field of an SDK model or of a plain dict (unknown event types may arrive as either)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
