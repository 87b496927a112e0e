"""Fast checks of the loopback OpenAI server, using only the stdlib HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.openai_server import (
    MALFORMED_EVENT,
    LoopbackServer,
    Scenario,
    synthetic_markdown_deltas,
)

Post = Callable[..., http.client.HTTPResponse]
STREAM = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def post(server: LoopbackServer) -> Iterator[Post]:
    conns: list[http.client.HTTPConnection] = []

    def do_post(body: dict[str, Any] = STREAM, timeout: float = 5.0) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
        conns.append(conn)
        headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-test"}
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=headers)
        return conn.getresponse()

    yield do_post
    for conn in conns:
        conn.close()


def split_events(body: bytes) -> list[bytes]:
    assert body.endswith(b"\n\n")
    events = body[:-2].split(b"\n\n")
    assert all(e.startswith(b"data: ") for e in events), events
    return [e.removeprefix(b"data: ") for e in events]


def parse(events: list[bytes]) -> list[Any]:
    return [e.decode() if e == b"[DONE]" else json.loads(e) for e in events]


def test_normal_stream(server: LoopbackServer, post: Post) -> None:
    server.push(Scenario(reasoning=["think"], deltas=["Hello", "", " world"], model="mx"))
    resp = post()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/event-stream"
    assert resp.getheader("Cache-Control") == "no-cache"
    assert resp.getheader("Transfer-Encoding") == "chunked"
    events = parse(split_events(resp.read()))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "mx" for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "reasoning_content": "think"},
        {"content": "Hello"},
        {"content": ""},
        {"content": " world"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 4 + ["stop"]
    # The connection is kept alive: the default scenario is served on the same socket.
    resp2 = post()
    text = "".join(
        c["choices"][0]["delta"].get("content", "") for c in parse(split_events(resp2.read()))[:-1]
    )
    assert text == "Hello world"


def test_usage_only_when_requested(server: LoopbackServer, post: Post) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    server.push(Scenario(deltas=["a"], usage=usage), Scenario(deltas=["a"], usage=usage))
    plain = parse(split_events(post().read()))
    assert not any(isinstance(e, dict) and "usage" in e for e in plain)
    with_usage = parse(split_events(post({**STREAM, "stream_options": {"include_usage": True}})
                                    .read()))
    assert with_usage[-1] == "[DONE]"
    assert with_usage[-3]["choices"][0]["finish_reason"] == "stop"
    assert with_usage[-2]["choices"] == [] and with_usage[-2]["usage"] == usage


def test_rate_limit_status(server: LoopbackServer, post: Post) -> None:
    server.push(Scenario(status=429, headers={"Retry-After": "1"}))
    resp = post()
    assert resp.status == 429
    assert resp.getheader("Retry-After") == "1"
    assert json.loads(resp.read())["error"]["code"] == "rate_limit_exceeded"


def test_disconnect_after_bytes(server: LoopbackServer, post: Post) -> None:
    server.push(Scenario(deltas=["Hello", " world"], disconnect_after_bytes=150))
    resp = post()
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert 0 < len(info.value.partial) <= 150
    assert server.disconnects == 0  # the server closed the socket, not the client


def test_malformed_line(server: LoopbackServer, post: Post) -> None:
    server.push(Scenario(deltas=["a", "b"], malformed_after_events=1))
    raw = post().read()
    assert MALFORMED_EVENT in raw
    events = split_events(raw)
    assert events[1] == MALFORMED_EVENT[len(b"data: ") : -2]
    assert events[-1] == b"[DONE]" and len(events) == 5


def test_stream_error_event(server: LoopbackServer, post: Post) -> None:
    server.push(Scenario(deltas=["a", "b", "c"], stream_error_after_events=2))
    events = parse(split_events(post().read()))
    assert len(events) == 3 and "[DONE]" not in events
    assert events[-1] == {"error": Scenario().stream_error}


def test_recorded_request(server: LoopbackServer, post: Post) -> None:
    post().read()
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.body == STREAM
    assert request.headers["authorization"] == "Bearer sk-test"


def test_reject_stream_options(server: LoopbackServer, post: Post) -> None:
    server.push(Scenario(reject_stream_options=True))
    resp = post({**STREAM, "stream_options": {"include_usage": True}})
    assert resp.status == 400
    assert "stream_options" in json.loads(resp.read())["error"]["message"]


def test_non_streaming_completion(server: LoopbackServer, post: Post) -> None:
    body = json.loads(post({**STREAM, "stream": False}).read())
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Hello world"


def test_raw_sse_replay(server: LoopbackServer, post: Post) -> None:
    raw = b'data: {"choices": []}\n\ndata: [DONE]\n\n'
    server.push(Scenario(raw_sse=raw))
    assert post().read() == raw


def test_stall_before_headers_then_quick_stop(server: LoopbackServer, post: Post) -> None:
    server.push(Scenario(stall_before_headers=True))
    with pytest.raises(TimeoutError):
        post(timeout=0.3)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    server.stop()  # idempotent


def test_client_disconnect_while_stalled(server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["a", "b"], stall_after_events=1))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/v1/chat/completions", body=json.dumps(STREAM))
    assert conn.getresponse().readline().startswith(b"data: {")
    assert server.disconnects == 0
    conn.close()
    assert server.wait_for_disconnect(timeout=2.0)
    assert server.disconnects == 1


def test_models_and_unknown_path(server: LoopbackServer) -> None:
    with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as resp:
        models = json.loads(resp.read())
    assert [m["id"] for m in models["data"]] == ["test-model", "other-model"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/v1/nope")
    resp = conn.getresponse()
    assert resp.status == 404 and "error" in json.loads(resp.read())
    conn.close()


def test_synthetic_deltas_deterministic() -> None:
    deltas = synthetic_markdown_deltas(500)
    assert len(deltas) == 500 and deltas == synthetic_markdown_deltas(500)
    text = "".join(deltas)
    assert "\n- item" in text and text.count("```") % 2 == 0


@pytest.mark.parametrize("tokens", [True, False])
def test_synthetic_reply_has_the_mix_the_benchmark_promises(tokens: bool) -> None:
    deltas = synthetic_markdown_deltas(20_000, tokens=tokens)
    text = "".join(deltas)
    assert len(deltas) == 20_000 and "" not in deltas
    assert text.count("```python\n") == 10 and text.count("```") == 20  # 10 closed fences
    assert text.count("| name | value |") >= 5 and text.count("\n- item") > 300
    per_delta = len(text) / len(deltas)
    # token-sized like a real stream (a GPT tokenizer on English: ~4), or a word per delta
    assert (3.5 < per_delta < 5) if tokens else (7 < per_delta < 8)


def test_command_line_mode() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--synthetic-deltas", "20",
         "--scenario-json", '{"model": "cli"}'],
        cwd=root, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY http://127.0.0.1:")
        base_url = line.split()[1]
        request = urllib.request.Request(f"{base_url}/chat/completions", data=json.dumps(STREAM)
                                         .encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            events = split_events(resp.read())
        assert len(events) == 22 and json.loads(events[0])["model"] == "cli"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()
