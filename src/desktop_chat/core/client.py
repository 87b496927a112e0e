"""The only module that talks to the `openai` SDK.

`ChatClient.stream(request)` turns one Chat Completions request into an async iterator of
typed events, maps every SDK/HTTP failure onto a `ChatError` with user-facing text, retries
rate limits visibly, and closes the HTTP response when the consumer stops early.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import openai

from desktop_chat.core import errors
from desktop_chat.core.errors import ChatError
from desktop_chat.core.events import (
    Failed,
    Finished,
    ReasoningDelta,
    Retrying,
    StreamEvent,
    TextDelta,
    UsageReport,
)

log = logging.getLogger("desktop_chat.client")

RETRYABLE_STATUS = frozenset({429, 503})
# Servers that need no key (Ollama, llama.cpp, vLLM ...) still get a syntactically valid one.
PLACEHOLDER_KEY = "no-key-set"


@dataclass(frozen=True, slots=True)
class Endpoint:
    base_url: str
    api_key: str | None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 90.0

    @property
    def needs_key(self) -> bool:
        return (urlsplit(self.base_url).hostname or "").endswith("api.openai.com")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 2  # retries after the first try
    max_wait_s: float = 30.0  # a longer Retry-After is reported instead of waited for


Sleep = Callable[[float], Awaitable[None]]


class ChatClient:
    def __init__(
        self, endpoint: Endpoint, retry: RetryPolicy | None = None, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.endpoint = endpoint
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._include_usage = True  # switched off for servers that reject stream_options
        self._sdk = openai.AsyncOpenAI(
            api_key=endpoint.api_key or PLACEHOLDER_KEY,
            base_url=endpoint.base_url,
            timeout=openai.Timeout(endpoint.read_timeout_s, connect=endpoint.connect_timeout_s),
            max_retries=0,  # we retry ourselves, so the window can say so
        )

    async def aclose(self) -> None:
        await self._sdk.close()

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        if self.endpoint.api_key is None and self.endpoint.needs_key:
            yield Failed(errors.no_key(self.endpoint.base_url))
            return
        attempt = 0
        while True:
            try:
                sdk_stream = await self._open(request)
                break
            except openai.APIStatusError as exc:
                if self._is_stream_options_rejection(exc):
                    continue
                error = self._status_error(exc, request.model)
                delay = self._retry_delay(exc, error, attempt)
                if delay is None:
                    yield Failed(error)
                    return
                attempt += 1
                log.info("retrying after HTTP %s in %.1f s (attempt %d)", exc.status_code,
                         delay, attempt)
                busy = "Rate limited by the server" if exc.status_code == 429 else (
                    f"The server is busy (HTTP {exc.status_code})")
                yield Retrying(delay, attempt, busy)
                await self._sleep(delay)
            except Exception as exc:  # every failure becomes a message, never a traceback
                yield Failed(self._request_error(exc))
                return
        # aclosing: when our consumer stops early, the response closes now, not at GC time
        async with contextlib.aclosing(self._events(sdk_stream)) as events:
            async for event in events:
                yield event

    async def _open(self, request: ChatRequest) -> Any:
        extra: dict[str, Any] = {}
        if self._include_usage:
            extra["stream_options"] = {"include_usage": True}
        # The SDK walks `messages` through its type transformer on the event loop: 240 ms for
        # 1,000 messages, a frozen window on every send in a long chat. Ours are plain JSON
        # already, so they go into the body as they are (the request is byte-for-byte the same).
        return await self._sdk.chat.completions.create(
            model=request.model,
            messages=[],
            stream=True,
            extra_body={"messages": request.messages},
            **extra,
        )

    async def _events(self, sdk_stream: Any) -> AsyncIterator[StreamEvent]:
        """Chunks -> events. The response is closed however the iteration ends."""
        finish_reason: str | None = None
        usage: UsageReport | None = None
        received_any = False
        try:
            async for chunk in sdk_stream:
                received_any = True
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices or ():
                    if choice.index not in (0, None):
                        continue
                    for event in _delta_events(choice.delta):
                        yield event
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        except Exception as exc:
            yield Failed(self._stream_error(exc, received_any))
            return
        finally:
            await sdk_stream.close()
        if usage is not None:
            yield usage
        if finish_reason is None:
            # The body ended cleanly but the reply never said it was done: a proxy or the
            # server dropped the rest.
            yield Failed(errors.interrupted("the server ended the stream before the reply "
                                            "was complete"))
            return
        yield Finished(finish_reason)

    # -- error mapping -------------------------------------------------------------------

    def _is_stream_options_rejection(self, exc: openai.APIStatusError) -> bool:
        if self._include_usage and exc.status_code in (400, 422) and "stream_options" in (
            _error_text(exc)
        ):
            log.info("server rejects stream_options; continuing without usage reports")
            self._include_usage = False
            return True
        return False

    def _status_error(self, exc: openai.APIStatusError, model: str) -> ChatError:
        status = exc.status_code
        detail = _error_text(exc)
        log.warning("HTTP %s from %s: %s", status, self.endpoint.base_url, detail)
        if status in (401, 403):
            if self.endpoint.api_key is None:
                return errors.no_key(self.endpoint.base_url)
            return errors.auth_rejected(detail, status)
        if status == 404:
            if "model" in detail.lower():
                return errors.model_not_found(model, detail)
            return errors.no_chat_endpoint(self.endpoint.base_url, detail)
        if status == 429:
            return errors.rate_limited(detail, _retry_after(exc))
        if status >= 500:
            return errors.server_error(status, detail)
        return errors.bad_request(status, detail)

    def _retry_delay(
        self, exc: openai.APIStatusError, error: ChatError, attempt: int
    ) -> float | None:
        if exc.status_code not in RETRYABLE_STATUS or attempt >= self._retry.attempts:
            return None
        delay = _retry_after(exc)
        if delay is None:
            delay = float(2**attempt)  # 1 s, 2 s, 4 s ...
        return delay if delay <= self._retry.max_wait_s else None

    def _request_error(self, exc: Exception) -> ChatError:
        url = self.endpoint.base_url
        if isinstance(exc, openai.APITimeoutError):
            log.warning("timeout before the first byte from %s", url)
            return errors.no_first_byte(url, self.endpoint.read_timeout_s)
        if isinstance(exc, openai.APIConnectionError):
            cause = _root_cause(exc)
            log.warning("cannot connect to %s: %s", url, cause)
            return errors.connection_failed(url, cause)
        log.error("unexpected error opening a stream to %s", url, exc_info=exc)
        return errors.unexpected(repr(exc))

    def _stream_error(self, exc: Exception, received_any: bool) -> ChatError:
        if isinstance(exc, openai.APITimeoutError):
            if not received_any:
                return errors.no_first_byte(self.endpoint.base_url, self.endpoint.read_timeout_s)
            return errors.interrupted(
                f"the server sent nothing for {self.endpoint.read_timeout_s:g} s"
            )
        if isinstance(exc, openai.APIConnectionError):
            log.warning("stream cut: %s", _root_cause(exc))
            return errors.interrupted("the connection to the server was lost")
        if isinstance(exc, openai.APIStatusError):
            return self._status_error(exc, "")
        if isinstance(exc, openai.APIError):  # an in-stream {"error": ...} event
            log.warning("in-stream error: %s (%r)", exc.message, exc.body)
            return errors.stream_error(exc.message, repr(exc.body))
        if isinstance(exc, json.JSONDecodeError | ValueError | TypeError | AttributeError):
            log.warning("malformed chunk: %r", exc)
            return errors.malformed(repr(exc))
        log.error("unexpected error while streaming", exc_info=exc)
        return errors.unexpected(repr(exc))


def _delta_events(delta: Any) -> list[StreamEvent]:
    if delta is None:
        return []
    events: list[StreamEvent] = []
    extra = delta.model_extra or {}
    reasoning = extra.get("reasoning_content") or extra.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        events.append(ReasoningDelta(reasoning))
    if delta.content is not None:
        events.append(TextDelta(delta.content))
    return events


def _usage(usage: Any) -> UsageReport:
    return UsageReport(
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        total_tokens=getattr(usage, "total_tokens", None),
    )


def _error_text(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
        return json.dumps(body)[:500]
    if isinstance(body, str):
        return body[:500]
    try:
        return exc.response.text[:500]
    except Exception:  # the body may be unreadable; the status is still known
        return ""


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


def _root_cause(exc: BaseException) -> str:
    """The innermost cause, in words: 'Connection refused', 'Name or service not known'."""
    seen: BaseException = exc
    while (inner := seen.__cause__ or seen.__context__) is not None:
        seen = inner
        if isinstance(seen, OSError) and seen.errno and seen.errno > 0:
            return os.strerror(seen.errno)  # "Connection refused"
    text = str(seen).strip() or type(seen).__name__
    if "]" in text and text.startswith("["):  # "[Errno 111] Connection refused"
        text = text.split("]", 1)[1].strip()
    return text
