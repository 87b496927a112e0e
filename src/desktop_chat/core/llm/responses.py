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


def request_body(messages: list[dict[str, Any]], params: GenerationParams) -> dict[str, Any]:
    """Chat-shaped messages -> `instructions` + `input` items, plus the params that are set.

    System messages become `instructions`; user images become `input_image` items."""
    instructions = "\n\n".join(
        _plain_text(m.get("content")) for m in messages if m.get("role") in INSTRUCTION_ROLES
    )
    body: dict[str, Any] = {
        "input": [_input_item(m) for m in messages if m.get("role") not in INSTRUCTION_ROLES],
    }
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
    try:
        async for event in sdk_stream:
            received_any = True
            mapped, terminal = _map(event)
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
