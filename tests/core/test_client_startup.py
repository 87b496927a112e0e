"""What lets the window appear before the SDK and the key (issue #18): a `ChatClient` costs
nothing to build, a key handed over as `key_lookup` is looked up once, in a worker thread,
before the first request, and every request waits for that and for the SDK."""

from __future__ import annotations

import asyncio
import threading

from desktop_chat.core.config.providers import Endpoint
from desktop_chat.core.llm import sdk
from desktop_chat.core.llm.client import ChatClient, ChatRequest, RetryPolicy
from desktop_chat.core.llm.errors import ErrorKind
from desktop_chat.core.llm.events import Failed, TextDelta
from tests.conftest import TEST_KEY
from tests.support.openai_server import LoopbackServer, Scenario

HI = ChatRequest("test-model", [{"role": "user", "content": "Hi"}])


def test_a_pending_key_is_looked_up_once_off_the_loop_thread_and_sent(
        server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["One"]), Scenario(deltas=["Two"]))
    looked_up_on: list[threading.Thread] = []

    def lookup() -> str:
        looked_up_on.append(threading.current_thread())
        return TEST_KEY

    async def go() -> tuple[list[str], list[str], str | None]:
        client = ChatClient(Endpoint(server.base_url, None, 2.0, 2.0),
                            RetryPolicy(attempts=0), key_lookup=lookup)
        assert client.key_pending
        try:
            first, second = await asyncio.gather(  # both wait for the one lookup
                _texts(client), _texts(client))
            return first, second, client.endpoint.api_key
        finally:
            await client.aclose()

    first, second, key = asyncio.run(go())
    assert sorted(["".join(first), "".join(second)]) == ["One", "Two"]
    assert key == TEST_KEY
    assert len(looked_up_on) == 1 and looked_up_on[0] is not threading.main_thread()
    assert [r.headers.get("authorization") for r in server.replies_asked] == [
        f"Bearer {TEST_KEY}"] * 2


def test_a_pending_key_that_is_missing_is_said_as_for_any_missing_key(
        server: LoopbackServer) -> None:
    async def go() -> list[object]:
        endpoint = Endpoint("https://api.openai.com/v1", None, 2.0, 2.0)
        client = ChatClient(endpoint, key_lookup=lambda: None)
        try:
            return [event async for event in client.stream(HI)]
        finally:
            await client.aclose()

    events = asyncio.run(go())
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert events[0].error.kind is ErrorKind.NO_KEY
    assert not server.requests


def test_the_sdk_loads_once_and_is_then_ready_without_waiting() -> None:
    first = sdk.preload()
    assert sdk.preload() is first
    module = asyncio.run(sdk.load())
    assert module.__name__ == "openai" and sdk.loaded()


async def _texts(client: ChatClient) -> list[str]:
    return [e.text async for e in client.stream(HI) if isinstance(e, TextDelta)]
