"""Running a real `ChatClient` from a synchronous test: one event loop per call, client closed."""

from __future__ import annotations

import asyncio
import socket

from desktop_chat.core.config.providers import Endpoint
from desktop_chat.core.llm.client import ChatClient, ChatRequest, RetryPolicy
from desktop_chat.core.llm.errors import ChatError
from desktop_chat.core.llm.events import Failed, Finished, StreamEvent, TextDelta

HI = ChatRequest("test-model", [{"role": "user", "content": "Hi"}])


async def _no_wait(delay: float) -> None:
    await asyncio.sleep(0)


def stream_all(
    endpoint: Endpoint, request: ChatRequest = HI, retry: RetryPolicy | None = None
) -> list[StreamEvent]:
    """Every event of one reply; retries (if any) do not wait."""

    async def go() -> list[StreamEvent]:
        client = ChatClient(endpoint, retry or RetryPolicy(attempts=0), sleep=_no_wait)
        try:
            return [event async for event in client.stream(request)]
        finally:
            await client.aclose()

    return asyncio.run(go())


def list_models(endpoint: Endpoint, timeout_s: float | None = None) -> list[str]:
    async def go() -> list[str]:
        client = ChatClient(endpoint)
        try:
            return await client.list_models(timeout_s)
        finally:
            await client.aclose()

    return asyncio.run(go())


def failure(events: list[StreamEvent]) -> ChatError:
    """The error a stream ended with; it must end in exactly one Failed and never finish."""
    assert events, "the stream yielded nothing"
    last = events[-1]
    assert isinstance(last, Failed), f"expected the stream to end in Failed, got {events}"
    assert not any(isinstance(e, Finished) for e in events)
    assert sum(isinstance(e, Failed) for e in events) == 1
    return last.error


def texts(events: list[StreamEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
