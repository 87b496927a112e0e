"""`ChatClient.stream()` against the real loopback server: events, request body, every error
mapping, retries (with a recording fake sleep, so nothing waits) and closing the response.

No Qt, no mocks of the SDK: every request goes over HTTP to `tests.support.openai_server`.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from desktop_chat.core.llm.client import ChatClient, ChatRequest, Endpoint, RetryPolicy
from desktop_chat.core.llm.errors import ErrorKind
from desktop_chat.core.llm.events import (
    Failed,
    Finished,
    ReasoningDelta,
    Retrying,
    StreamEvent,
    TextDelta,
    ToolCallsRequested,
)
from desktop_chat.core.model.message import Usage
from tests.conftest import TEST_KEY
from tests.support.client_run import failure, free_port, texts
from tests.support.openai_server import LoopbackServer, Scenario
from tests.support.proxy_trap import NO_PROXY_VARIABLES, ProxyTrap

T = TypeVar("T")
REQUEST = ChatRequest(model="test-model", messages=[{"role": "user", "content": "Hi"}])
USAGE = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
RECEIVED = ["Monads are ", "a way to ", "chain steps."]
OPENAI_URL = "https://api.openai.com/v1"


class FakeSleep:
    """Records the delays the client asks for instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


MakeClient = Callable[..., ChatClient]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def make_client(server: LoopbackServer, fake_sleep: FakeSleep) -> MakeClient:
    """A client for the loopback server. Build it inside the coroutine that uses it."""

    def make(
        api_key: str | None = TEST_KEY,
        base_url: str | None = None,
        read_timeout_s: float = 1.0,
        retry: RetryPolicy | None = None,
    ) -> ChatClient:
        endpoint = Endpoint(
            base_url or server.base_url, api_key, connect_timeout_s=2.0,
            read_timeout_s=read_timeout_s,
        )
        return ChatClient(endpoint, retry, sleep=fake_sleep)

    return make


async def collect(client: ChatClient, request: ChatRequest = REQUEST) -> list[StreamEvent]:
    try:
        return [event async for event in client.stream(request)]
    finally:
        await client.aclose()


def stream_events(make_client: MakeClient, **endpoint: Any) -> list[StreamEvent]:
    async def go() -> list[StreamEvent]:
        return await collect(make_client(**endpoint))

    return run(go())


def test_normal_stream_event_sequence(server: LoopbackServer, make_client: MakeClient) -> None:
    server.push(Scenario(reasoning=["Let me", " think"], deltas=["Hello", "", " world"],
                         usage=USAGE))
    events = stream_events(make_client)
    assert events == [
        ReasoningDelta("Let me"),
        ReasoningDelta(" think"),
        TextDelta("Hello"),
        TextDelta(""),
        TextDelta(" world"),
        Usage(prompt_tokens=7, completion_tokens=2, total_tokens=9),
        Finished("stop"),
    ]


def test_reasoning_field_named_reasoning(server: LoopbackServer, make_client: MakeClient) -> None:
    server.push(Scenario(reasoning=["hmm", "…"], reasoning_field="reasoning", deltas=["ok"]))
    events = stream_events(make_client)
    assert events == [ReasoningDelta("hmm"), ReasoningDelta("…"), TextDelta("ok"),
                      Finished("stop")]


def test_no_usage_report_unless_the_server_sends_one(
    server: LoopbackServer, make_client: MakeClient
) -> None:
    server.push(Scenario(deltas=["a", "b"], usage=None))
    events = stream_events(make_client)
    assert events == [TextDelta("a"), TextDelta("b"), Finished("stop")]


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_finish_reason_is_passed_on(
    server: LoopbackServer, make_client: MakeClient, reason: str
) -> None:
    server.push(Scenario(deltas=["cut"], finish_reason=reason))
    assert stream_events(make_client)[-1] == Finished(reason)


def test_unicode_deltas_arrive_unchanged(server: LoopbackServer, make_client: MakeClient) -> None:
    deltas = ["Grüße ", "🌍", "\n\n```py\n", "  x = 1\r\n", "```", " — ", "中文"]
    server.push(Scenario(deltas=deltas))
    assert texts(stream_events(make_client)) == deltas


def test_request_body_asks_for_usage(server: LoopbackServer, make_client: MakeClient) -> None:
    request = ChatRequest("other-model", [{"role": "system", "content": "Be brief"},
                                          {"role": "user", "content": "Hi"}])

    async def go() -> list[StreamEvent]:
        return await collect(make_client(), request)

    run(go())
    [sent] = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert sent.body is not None
    assert sent.body["model"] == "other-model"
    assert sent.body["messages"] == request.messages
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}


def test_stream_options_rejection_falls_back_and_is_remembered(
    server: LoopbackServer, make_client: MakeClient
) -> None:
    # Every scenario rejects stream_options: if the client sent it again, the request would fail.
    strict = Scenario(deltas=["ok"], usage=USAGE, reject_stream_options=True)
    server.push(strict, strict, strict)

    async def go() -> tuple[list[StreamEvent], list[StreamEvent]]:
        client = make_client()
        try:
            first = [e async for e in client.stream(REQUEST)]
            second = [e async for e in client.stream(REQUEST)]
        finally:
            await client.aclose()
        return first, second

    first, second = run(go())
    assert first == [TextDelta("ok"), Finished("stop")]  # no usage asked for, none reported
    assert second == first
    bodies = [r.body or {} for r in server.requests]
    assert len(bodies) == 3
    assert "stream_options" in bodies[0]
    assert "stream_options" not in bodies[1]
    assert "stream_options" not in bodies[2]  # remembered for later requests


def test_fallback_does_not_count_as_a_retry(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    server.push(Scenario(reject_stream_options=True), Scenario(deltas=["ok"]))
    events = stream_events(make_client)
    assert events == [TextDelta("ok"), Finished("stop")]
    assert fake_sleep.delays == []


# -- errors before any text --------------------------------------------------------------------


def test_401_with_a_key_is_rejected_key(server: LoopbackServer, make_client: MakeClient) -> None:
    server.push(Scenario(status=401))
    error = failure(stream_events(make_client))
    assert error.kind is ErrorKind.AUTH
    assert error.status == 401
    assert error.message == "The server rejected the API key. Open Settings to check it."
    assert error.detail == "Incorrect API key provided"
    assert len(server.requests) == 1


def test_401_without_a_key_says_none_is_set(
    server: LoopbackServer, make_client: MakeClient
) -> None:
    server.push(Scenario(status=401))
    error = failure(stream_events(make_client, api_key=None))
    assert error.kind is ErrorKind.NO_KEY
    assert error.message == (
        f"No API key is set for {server.base_url}. Open Settings (Ctrl+,) to enter one, or set "
        "its environment variable, such as OPENAI_API_KEY, and restart."
    )
    # a local server that needs no key still gets a syntactically valid one
    assert server.requests[0].headers["authorization"] == "Bearer no-key-set"


def test_403_is_rejected_key(server: LoopbackServer, make_client: MakeClient) -> None:
    server.push(Scenario(status=403, error_body={"error": {"message": "Project not allowed"}}))
    error = failure(stream_events(make_client))
    assert error.kind is ErrorKind.AUTH
    assert error.status == 403
    assert error.message == "The server rejected the API key. Open Settings to check it."
    assert error.detail == "Project not allowed"


def test_404_model(server: LoopbackServer, make_client: MakeClient) -> None:
    server.push(Scenario(status=404))
    error = failure(stream_events(make_client))
    assert error.kind is ErrorKind.MODEL_NOT_FOUND
    assert error.status == 404
    assert error.message == (
        "Model 'test-model' is not available on this server. Pick another model."
    )


def test_404_wrong_path(server: LoopbackServer, make_client: MakeClient) -> None:
    url = server.base_url.removesuffix("/v1") + "/api"
    error = failure(stream_events(make_client, base_url=url))
    assert error.kind is ErrorKind.BAD_REQUEST
    assert error.status == 404
    assert error.message == (
        f"{url} has no chat endpoint (HTTP 404). Check the base URL: OpenAI-compatible "
        "servers usually end in /v1."
    )
    assert server.requests[0].path == "/api/chat/completions"


def test_400_names_the_servers_reason(server: LoopbackServer, make_client: MakeClient) -> None:
    server.push(Scenario(status=400, error_body={"error": {"message": "context_length_exceeded"}}))
    error = failure(stream_events(make_client))
    assert error.kind is ErrorKind.BAD_REQUEST
    assert error.status == 400
    assert error.message == ("The server could not accept the request (HTTP 400): "
                             "context_length_exceeded.")
    assert len(server.requests) == 1


def test_500_is_not_retried(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    server.push(Scenario(status=500), Scenario(deltas=["never"]))
    error = failure(stream_events(make_client))
    assert error.kind is ErrorKind.SERVER
    assert error.status == 500
    assert error.message == (
        "The server had an internal error (HTTP 500): The server had an error while processing "
        "your request. Try again in a moment."
    )
    assert len(server.requests) == 1
    assert fake_sleep.delays == []


def test_502_with_an_html_body(server: LoopbackServer, make_client: MakeClient) -> None:
    """An error page is never quoted: the status in words; the page's text is the detail."""
    server.push(Scenario(status=502, error_body="<html>\n  Bad   Gateway\n</html>"))
    error = failure(stream_events(make_client))
    assert error.kind is ErrorKind.SERVER
    assert error.message == ("A gateway in front of the server got no valid answer from it "
                             "(HTTP 502). Try again in a moment.")
    assert error.detail == "Bad Gateway"


# -- retries -----------------------------------------------------------------------------------


def test_503_is_retried_then_succeeds(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    server.push(Scenario(status=503), Scenario(deltas=["ok"]))
    events = stream_events(make_client)
    assert events == [Retrying(1.0, 1, "The server is temporarily unavailable (HTTP 503)"),
                      TextDelta("ok"), Finished("stop")]
    assert fake_sleep.delays == [1.0]
    assert len(server.requests) == 2


def test_503_gives_up_after_the_retries(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    busy = Scenario(status=503, error_body={"error": {"message": "Overloaded"}})
    server.push(busy, busy, busy, Scenario(deltas=["never"]))
    events = stream_events(make_client)
    assert [type(e) for e in events] == [Retrying, Retrying, Failed]
    assert fake_sleep.delays == [1.0, 2.0]  # exponential backoff without Retry-After
    error = failure(events)
    assert error.kind is ErrorKind.SERVER
    assert error.message == ("The server is temporarily unavailable (HTTP 503): Overloaded. "
                             "Try again in a moment.")


def test_a_server_sentence_ending_in_a_period_is_not_doubled(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    busy = Scenario(status=503, error_body={"error": {"message": "Upgrade your plan."}})
    server.push(busy, busy, busy)
    error = failure(stream_events(make_client))
    assert error.message == ("The server is temporarily unavailable (HTTP 503): Upgrade your "
                             "plan. Try again in a moment.")
    assert len(server.requests) == 3


def test_429_retry_after_seconds(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    server.push(Scenario(status=429, headers={"Retry-After": "3"}), Scenario(deltas=["ok"]))
    events = stream_events(make_client)
    assert events == [Retrying(3.0, 1, "Rate limited by the server"), TextDelta("ok"),
                      Finished("stop")]
    assert fake_sleep.delays == [3.0]


def test_429_retry_after_http_date(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=20)
    date = email.utils.format_datetime(when, usegmt=True)
    server.push(Scenario(status=429, headers={"Retry-After": date}), Scenario(deltas=["ok"]))
    events = stream_events(make_client)
    assert isinstance(events[0], Retrying)
    assert 15.0 <= events[0].delay_s <= 20.0  # HTTP dates have whole-second resolution
    assert fake_sleep.delays == [events[0].delay_s]
    assert events[1:] == [TextDelta("ok"), Finished("stop")]


def test_429_retry_after_date_in_the_past_retries_at_once(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    date = email.utils.format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    server.push(Scenario(status=429, headers={"Retry-After": date}), Scenario(deltas=["ok"]))
    events = stream_events(make_client)
    assert events[0] == Retrying(0.0, 1, "Rate limited by the server")
    assert fake_sleep.delays == [0.0]


def test_429_retry_after_ms_wins(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    headers = {"retry-after-ms": "1500", "Retry-After": "9"}
    server.push(Scenario(status=429, headers=headers), Scenario(deltas=["ok"]))
    events = stream_events(make_client)
    assert events[0] == Retrying(1.5, 1, "Rate limited by the server")
    assert fake_sleep.delays == [1.5]


def test_429_too_long_to_wait_is_reported_not_waited(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    server.push(Scenario(status=429, headers={"Retry-After": "600"}), Scenario(deltas=["never"]))
    events = stream_events(make_client)
    assert len(events) == 1
    error = failure(events)
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.status == 429
    assert error.retry_after_s == 600.0
    assert error.message == (
        "Rate limited by the server (it asked to wait 600 s). Wait a moment, then send again."
    )
    assert fake_sleep.delays == []
    assert len(server.requests) == 1


def test_429_gives_up_after_the_retries(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    limited = Scenario(status=429, headers={"Retry-After": "0"})
    server.push(limited, limited, limited, Scenario(deltas=["never"]))
    events = stream_events(make_client)
    assert events[:2] == [Retrying(0.0, 1, "Rate limited by the server"),
                          Retrying(0.0, 2, "Rate limited by the server")]
    error = failure(events)
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.message == "Rate limited by the server. Wait a moment, then send again."
    assert len(server.requests) == 3  # the first try and two retries
    assert fake_sleep.delays == [0.0, 0.0]


def test_retry_policy_attempts_zero_means_no_retry(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    server.push(Scenario(status=429, headers={"Retry-After": "5"}))
    events = stream_events(make_client, retry=RetryPolicy(attempts=0))
    assert failure(events).kind is ErrorKind.RATE_LIMITED
    assert fake_sleep.delays == []
    assert len(server.requests) == 1


def test_retry_policy_max_wait_is_honoured(
    server: LoopbackServer, make_client: MakeClient, fake_sleep: FakeSleep
) -> None:
    server.push(Scenario(status=429, headers={"Retry-After": "5"}))
    events = stream_events(make_client, retry=RetryPolicy(max_wait_s=4.0))
    error = failure(events)
    assert error.retry_after_s == 5.0
    assert error.message == (
        "Rate limited by the server (it asked to wait 5 s). Wait a moment, then send again."
    )
    assert fake_sleep.delays == []
    assert len(server.requests) == 1


# -- transport failures ------------------------------------------------------------------------


def test_connection_refused(make_client: MakeClient) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    error = failure(stream_events(make_client, base_url=url))
    assert error.kind is ErrorKind.CONNECTION
    assert error.message == (
        f"Could not connect to {url}: Connection refused. Check that the server is running "
        "and the base URL is right."
    )


# A DNS failure ("Name or service not known") needs a resolver and is not testable offline.


def test_timeout_before_the_first_byte(server: LoopbackServer, make_client: MakeClient) -> None:
    server.push(Scenario(stall_before_headers=True))
    error = failure(stream_events(make_client))
    assert error.kind is ErrorKind.TIMEOUT
    assert error.message == (
        f"{server.base_url} did not answer within 1 s. The server may be overloaded or still "
        "loading the model; try again."
    )


def test_headers_then_silence_is_a_timeout_before_the_first_byte(
    server: LoopbackServer, make_client: MakeClient
) -> None:
    server.push(Scenario(deltas=["never"], stall_after_events=0))
    events = stream_events(make_client, read_timeout_s=0.5)
    assert texts(events) == []
    assert failure(events).kind is ErrorKind.TIMEOUT


# -- failures after some text: the events so far, then Failed ----------------------------------


@pytest.mark.parametrize(
    ("scenario", "kind", "message"),
    [
        (Scenario(deltas=[*RECEIVED, "never"], stall_after_events=3), ErrorKind.INTERRUPTED,
         "The reply was interrupted: the server sent nothing for 1 s. "
         "The text received so far is kept."),
        (Scenario(deltas=[*RECEIVED, "x" * 400], disconnect_after_bytes=700),
         ErrorKind.INTERRUPTED,
         "The reply was interrupted: the connection to the server was lost. "
         "The text received so far is kept."),
        (Scenario(deltas=[*RECEIVED, "never"], malformed_after_events=3), ErrorKind.MALFORMED,
         "The server sent a malformed response, so the reply stopped. "
         "The text received so far is kept."),
        (Scenario(deltas=[*RECEIVED, "never"], stream_error_after_events=3),
         ErrorKind.STREAM_ERROR, "The server reported an error while replying: The model crashed"),
        (Scenario(deltas=RECEIVED, finish_reason=None, send_done=False), ErrorKind.INTERRUPTED,
         "The reply was interrupted: the server ended the stream before the reply was "
         "complete. The text received so far is kept."),
        (Scenario(deltas=RECEIVED, finish_reason=None), ErrorKind.INTERRUPTED,
         "The reply was interrupted: the server ended the stream before the reply was "
         "complete. The text received so far is kept."),
    ],
    ids=["stall", "disconnect", "malformed", "in-stream-error", "no-finish", "done-no-finish"],
)
def test_failure_mid_stream(
    server: LoopbackServer, make_client: MakeClient, scenario: Scenario, kind: ErrorKind,
    message: str,
) -> None:
    server.push(scenario)
    events = stream_events(make_client)
    assert texts(events) == RECEIVED
    error = failure(events)
    assert error.kind is kind
    assert error.message == message


# -- no key for OpenAI: fail without a request -------------------------------------------------


@pytest.fixture
def proxy_trap(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """A fake proxy for every scheme: counts the connections a request would make."""
    trap = ProxyTrap()
    for name, value in trap.environment().items():
        monkeypatch.setenv(name, value)
    for name in NO_PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield trap.accepted
    trap.close()


def test_no_key_for_openai_fails_without_a_request(
    proxy_trap: list[int], fake_sleep: FakeSleep
) -> None:
    async def go(key: str | None) -> list[StreamEvent]:
        client = ChatClient(Endpoint(OPENAI_URL, key, 1.0, 1.0), sleep=fake_sleep)
        return await collect(client)

    events = run(go(None))
    assert len(events) == 1
    error = failure(events)
    assert error.kind is ErrorKind.NO_KEY
    assert error.message == (
        f"No API key is set for {OPENAI_URL}. Open Settings (Ctrl+,) to enter one, or set "
        "its environment variable, such as OPENAI_API_KEY, and restart."
    )
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline and not proxy_trap:
        time.sleep(0.02)
    assert proxy_trap == []

    # control: the same client with a key does go out (through the trap), so the trap works
    run(go(TEST_KEY))
    assert proxy_trap, "the proxy trap saw no connection: it proves nothing"


# -- stopping early closes the HTTP response ---------------------------------------------------


SLOW = Scenario(deltas=[f"tok{i} " for i in range(200)], pace=0.05)


def test_cancelling_the_consumer_closes_the_response(
    server: LoopbackServer, make_client: MakeClient
) -> None:
    server.push(SLOW)

    async def go() -> tuple[list[StreamEvent], bool]:
        client = make_client(read_timeout_s=5.0)
        received: list[StreamEvent] = []
        first = asyncio.Event()

        async def consume() -> None:
            async for event in client.stream(REQUEST):
                received.append(event)
                first.set()

        task = asyncio.create_task(consume())
        try:
            await asyncio.wait_for(first.wait(), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # checked before client.aclose(), which would close every connection anyway
            closed = await asyncio.to_thread(server.wait_for_disconnect, 5.0)
        finally:
            await client.aclose()
        return received, closed

    received, closed = run(go())
    assert closed, "the HTTP response stayed open after the consumer was cancelled"
    assert 1 <= len(received) < 100
    assert not any(isinstance(e, Failed | Finished) for e in received)


async def _first_then_aclose(client: ChatClient) -> AsyncIterator[StreamEvent]:
    events = client.stream(REQUEST)
    first = await anext(events)
    await events.aclose()
    yield first


def test_aclose_closes_the_response(server: LoopbackServer, make_client: MakeClient) -> None:
    server.push(SLOW)

    async def go() -> tuple[list[StreamEvent], bool]:
        client = make_client(read_timeout_s=5.0)
        try:
            received = [e async for e in _first_then_aclose(client)]
            closed = await asyncio.to_thread(server.wait_for_disconnect, 5.0)
        finally:
            await client.aclose()
        return received, closed

    received, closed = run(go())
    assert received == [TextDelta("tok0 ")]
    assert closed, "the HTTP response stayed open after aclose()"


def test_aclose_closes_the_response_before_returning(
    server: LoopbackServer, make_client: MakeClient
) -> None:
    """`aclose()` must close the response itself, not leave it to the loop's async-generator
    finalizer: the session relies on it to stop a reply "now" (see session._consume)."""
    server.push(SLOW)

    async def go() -> bool:
        client = make_client(read_timeout_s=5.0)
        try:
            events = client.stream(REQUEST)
            await anext(events)
            await events.aclose()
            # Block the loop on purpose: only a close done inside aclose() can be seen now.
            return server.wait_for_disconnect(1.0)
        finally:
            await client.aclose()

    assert run(go()), "the HTTP response was still open when aclose() returned"


def test_odd_chunk_shapes_are_skipped_and_the_rest_kept(
        server: LoopbackServer, make_client: MakeClient) -> None:
    """Chunks are read as the JSON the server sent: whatever shape a field has, the good
    parts of the stream come through and nothing raises."""
    import json

    def event(payload: object) -> bytes:
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    def choice(delta: object, **more: object) -> dict[str, object]:
        return {"choices": [{"index": 0, "delta": delta, **more}]}

    raw = b"".join([
        event(choice({"role": "assistant", "content": "Kept"})),
        event([1, 2, 3]),                       # not an object
        event("text"),
        event({"choices": None}),
        event({"choices": "none"}),
        event({"choices": [None, 7, "x"]}),
        event(choice("not an object")),
        event(choice({"content": 5})),          # not text
        event(choice({"content": None, "reasoning_content": ["x"]})),
        event(choice({"content": " and"}, finish_reason=None)),
        event({"choices": [{"index": 1, "delta": {"content": "other choice"}}]}),
        event(choice({"tool_calls": "x"})),
        event(choice({"tool_calls": [None, {"index": "a", "function": "f"}]})),
        event(choice({"content": " kept."})),
        event({"choices": [], "usage": {"prompt_tokens": "7", "completion_tokens": 2,
                                        "total_tokens": True}}),
        event(choice({}, finish_reason="stop")),
        b"data: [DONE]\n\n",
    ])
    server.push(Scenario(raw_sse=raw))
    events = stream_events(make_client)
    assert texts(events) == ["Kept", " and", " kept."]
    assert Usage(prompt_tokens=None, completion_tokens=2, total_tokens=None) in events
    assert events[-1] == Finished("stop")
    assert not any(isinstance(e, ToolCallsRequested) for e in events)
