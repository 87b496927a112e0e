"""The Responses API flavour against the loopback server: the request it sends, its events
mapped onto ours, and the `error` / `response.failed` / `response.incomplete` endings the SDK
does not raise. Text deltas start at event index 4 (see tests/support/responses_wire.py)."""

from __future__ import annotations

import asyncio

import pytest

from desktop_chat.core.config.providers import ApiFlavour, Endpoint, GenerationParams
from desktop_chat.core.llm.client import ChatClient, ChatRequest, RetryPolicy
from desktop_chat.core.llm.errors import ErrorKind
from desktop_chat.core.llm.events import (
    Finished,
    ReasoningDelta,
    Retrying,
    StreamEvent,
    TextDelta,
)
from desktop_chat.core.model.message import Usage
from tests.conftest import TEST_KEY
from tests.support.client_run import HI, failure, stream_all, texts
from tests.support.openai_server import LoopbackServer, Scenario

USAGE = {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}
FIRST_TEXT = 4
PNG = "data:image/png;base64,iVBORw0KGgo="


def endpoint(server: LoopbackServer, read_timeout_s: float = 2.0) -> Endpoint:
    return Endpoint(server.base_url, TEST_KEY, 2.0, read_timeout_s, api=ApiFlavour.RESPONSES)


def events_for(server: LoopbackServer, scenario: Scenario,
               request: ChatRequest = HI) -> list[StreamEvent]:
    server.push(scenario)
    return stream_all(endpoint(server), request)


# -- a normal reply -----------------------------------------------------------------------------


def test_text_reasoning_and_usage(server: LoopbackServer) -> None:
    events = events_for(server, Scenario(reasoning=["Weigh", "ing"], deltas=["Hel", "lo", "!"],
                                         usage=USAGE))
    assert events == [
        ReasoningDelta("Weigh"), ReasoningDelta("ing"),
        TextDelta("Hel"), TextDelta("lo"), TextDelta("!"),
        Usage(prompt_tokens=11, completion_tokens=4, total_tokens=15),
        Finished("stop"),
    ]


def test_completed_without_usage(server: LoopbackServer) -> None:
    assert events_for(server, Scenario(deltas=["ok"])) == [TextDelta("ok"), Finished("stop")]


def test_the_request(server: LoopbackServer) -> None:
    events_for(server, Scenario(deltas=["ok"]))
    [sent] = server.requests
    assert sent.path == "/v1/responses"
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert sent.body == {"model": "test-model", "stream": True,
                         "input": [{"role": "user", "content": "Hi"}]}


def test_system_prompt_history_and_images_are_converted(server: LoopbackServer) -> None:
    messages = [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": PNG}},
        ]},
    ]
    events_for(server, Scenario(deltas=["A cat"]), ChatRequest("vision", messages))
    body = server.requests[0].body
    assert body is not None
    assert body["instructions"] == "Be brief"
    assert body["input"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": PNG, "detail": "auto"},
        ]},
    ]


def test_params_use_the_responses_names(server: LoopbackServer) -> None:
    params = GenerationParams(temperature=0.5, top_p=0.8, max_tokens=100, reasoning_effort="high")
    events_for(server, Scenario(deltas=["ok"]), ChatRequest("o4-mini", HI.messages, params))
    body = server.requests[0].body
    assert body is not None
    assert body["temperature"] == 0.5
    assert body["top_p"] == 0.8
    assert body["max_output_tokens"] == 100
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert "max_tokens" not in body and "max_completion_tokens" not in body


# -- endings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("reason", "finished"),
                         [("length", "length"), ("content_filter", "content_filter")])
def test_incomplete_response(server: LoopbackServer, reason: str, finished: str) -> None:
    events = events_for(server, Scenario(deltas=["cut"], finish_reason=reason, usage=USAGE))
    assert events == [TextDelta("cut"), Usage(11, 4, 15), Finished(finished)]


def test_in_stream_error_event(server: LoopbackServer) -> None:
    scenario = Scenario(deltas=["a", "b", "never"], stream_error_after_events=FIRST_TEXT + 2)
    events = events_for(server, scenario)
    assert texts(events) == ["a", "b"]
    error = failure(events)
    assert error.kind is ErrorKind.STREAM_ERROR
    assert error.message == "The server reported an error while replying: The model crashed"


def test_response_failed_event(server: LoopbackServer) -> None:
    scenario = Scenario(deltas=["partial"],
                        response_error={"code": "server_error", "message": "Overloaded, sorry"})
    events = events_for(server, scenario)
    assert texts(events) == ["partial"]
    error = failure(events)
    assert error.kind is ErrorKind.STREAM_ERROR
    assert error.message == "The server reported an error while replying: Overloaded, sorry"
    assert "server_error" in error.detail


def test_stream_ending_without_a_final_event_is_interrupted(server: LoopbackServer) -> None:
    events = events_for(server, Scenario(deltas=["a", "b"], finish_reason=None))
    assert texts(events) == ["a", "b"]
    error = failure(events)
    assert error.kind is ErrorKind.INTERRUPTED
    assert error.message == ("The reply was interrupted: the server ended the stream before the "
                             "reply was complete. The text received so far is kept.")


def test_malformed_event(server: LoopbackServer) -> None:
    events = events_for(server, Scenario(deltas=["a", "b"], malformed_after_events=FIRST_TEXT + 1))
    assert texts(events) == ["a"]
    assert failure(events).kind is ErrorKind.MALFORMED


def test_unknown_events_are_skipped_and_refusals_and_summary_parts_shown(
    server: LoopbackServer,
) -> None:
    raw = b"".join(
        f"event: {kind}\ndata: {data}\n\n".encode() for kind, data in [
            ("response.created", '{"type": "response.created", "response": {"id": "r"}}'),
            ("response.reasoning_summary_part.added",
             '{"type": "response.reasoning_summary_part.added", "summary_index": 0}'),
            ("response.reasoning_summary_text.delta",
             '{"type": "response.reasoning_summary_text.delta", "delta": "First."}'),
            ("response.reasoning_summary_part.added",
             '{"type": "response.reasoning_summary_part.added", "summary_index": 1}'),
            ("response.reasoning_text.delta",
             '{"type": "response.reasoning_text.delta", "delta": "Second."}'),
            ("response.future_thing", '{"type": "response.future_thing", "x": 1}'),
            ("response.refusal.delta", '{"type": "response.refusal.delta", "delta": "No."}'),
            ("response.completed",
             '{"type": "response.completed", "response": {"id": "r", "usage": null}}'),
        ]
    )
    events = events_for(server, Scenario(raw_sse=raw))
    assert events == [ReasoningDelta("First."), ReasoningDelta("\n\n"), ReasoningDelta("Second."),
                      TextDelta("No."), Finished("stop")]


# -- HTTP errors are mapped and retried as for chat ---------------------------------------------


def test_rate_limit_is_retried(server: LoopbackServer) -> None:
    server.push(Scenario(status=429, headers={"Retry-After": "0"}), Scenario(deltas=["ok"]))
    events = stream_all(endpoint(server), HI, RetryPolicy(attempts=1))
    assert events == [Retrying(0.0, 1, "Rate limited by the server"), TextDelta("ok"),
                      Finished("stop")]
    assert [r.path for r in server.requests] == ["/v1/responses", "/v1/responses"]


def test_401_is_a_rejected_key(server: LoopbackServer) -> None:
    error = failure(events_for(server, Scenario(status=401)))
    assert error.kind is ErrorKind.AUTH
    assert error.message == "The server rejected the API key. Open Settings to check it."


def test_a_server_without_the_responses_api(server: LoopbackServer) -> None:
    url = f"http://127.0.0.1:{server.port}/api"
    error = failure(stream_all(Endpoint(url, TEST_KEY, 2, 2, api=ApiFlavour.RESPONSES)))
    assert error.kind is ErrorKind.BAD_REQUEST
    assert error.status == 404
    assert error.message == (
        f"{url} has no Responses API (HTTP 404). Set the profile's API to Chat Completions in "
        "Settings, or check the base URL.")
    assert server.requests[0].path == "/api/responses"


def test_stopping_early_closes_the_response(server: LoopbackServer) -> None:
    server.push(Scenario(deltas=[f"t{i} " for i in range(200)], pace=0.05))

    async def go() -> tuple[StreamEvent, bool]:
        client = ChatClient(endpoint(server, read_timeout_s=5.0))
        try:
            events = client.stream(HI)
            first = await anext(events)
            await events.aclose()
            return first, server.wait_for_disconnect(1.0)  # blocks the loop on purpose
        finally:
            await client.aclose()

    first, closed = asyncio.run(go())
    assert first == TextDelta("t0 ")
    assert closed, "the HTTP response was still open when aclose() returned"
