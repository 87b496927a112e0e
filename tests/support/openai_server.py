"""Loopback OpenAI Chat Completions server with fault injection (see ``main`` for the CLI).

Events: reasoning deltas, content deltas, finish, usage; then either the stream error (replacing
everything from index ``stream_error_after_events`` on) or [DONE]; then the malformed line is
inserted at ``malformed_after_events``. ``raw_sse`` gets no finish/usage/[DONE] added.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import random
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        if isinstance(data.get("raw_sse"), str):
            data = {**data, "raw_sse": data["raw_sse"].encode()}
        return cls(**data)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


def default_error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    default_message, kind, code = _DEFAULT_ERRORS.get(status, (f"HTTP {status}", kind, None))
    error = {"message": message or default_message, "type": kind, "param": None, "code": code}
    return {"error": error}


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def build_events(sc: Scenario, include_usage: bool) -> list[bytes]:
    """All SSE events (each ending in a blank line) the scenario writes, faults included."""
    if sc.raw_sse is not None:
        parts = sc.raw_sse.split(b"\n\n")
        events = [p + b"\n\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    else:
        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": sc.model}
        deltas = [{sc.reasoning_field: t} for t in sc.reasoning]
        deltas += [{"content": t} for t in sc.deltas]
        if deltas:
            deltas[0] = {"role": "assistant", **deltas[0]}
        choices: list[Any] = [[{"index": 0, "delta": d, "finish_reason": None}] for d in deltas]
        if sc.finish_reason is not None:
            choices.append([{"index": 0, "delta": {}, "finish_reason": sc.finish_reason}])
        events = [_event({**base, "choices": c}) for c in choices]
        if sc.usage is not None and (include_usage or sc.usage_always):
            events.append(_event({**base, "choices": [], "usage": sc.usage}))
    if sc.stream_error_after_events is not None:
        events = [*events[: sc.stream_error_after_events], _event({"error": sc.stream_error})]
    elif sc.send_done and sc.raw_sse is None:
        events.append(b"data: [DONE]\n\n")
    if sc.malformed_after_events is not None:
        events.insert(sc.malformed_after_events, MALFORMED_EVENT)
    return events


def _completion(sc: Scenario) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(sc.deltas)}
    if sc.reasoning:
        message[sc.reasoning_field] = "".join(sc.reasoning)
    usage = sc.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    choice = {"index": 0, "message": message, "finish_reason": sc.finish_reason or "stop"}
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": sc.model, "choices": [choice], "usage": usage}


def _shutdown_socket(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # client resets are routine here
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    owner: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr logging."""

    def setup(self) -> None:
        super().setup()
        self.owner = cast(_HTTPServer, self.server).owner
        self.owner._track(self.connection, True)

    def finish(self) -> None:
        self.owner._track(self.connection, False)
        super().finish()

    def _record(self, raw: bytes) -> dict[str, Any] | None:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.owner._lock:
            self.owner.requests.append(RecordedRequest(self.path, headers, body))
        return body if isinstance(body, dict) else None

    def _route(self) -> str:
        return self.path.split("?")[0].rstrip("/").removeprefix("/v1")

    def do_GET(self) -> None:
        self._record(b"")
        if self._route() == "/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"}
                    for m in self.owner.models]
            self._send_json(200, {"object": "list", "data": data}, {})
        else:
            self._send_json(404, default_error_body(404, f"Unknown path {self.path}"), {})

    def do_POST(self) -> None:
        body = self._record(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if self._route() != "/chat/completions":
            self._send_json(404, default_error_body(404, f"Unknown path {self.path}"), {})
            return
        sc = self.owner._next_scenario()
        if sc.stall_before_headers:
            self._hold()
        elif body is None or (sc.reject_stream_options and "stream_options" in body):
            message = "Unrecognized request argument supplied: stream_options"
            message = "Could not parse the JSON body of your request." if body is None else message
            self._send_json(400, default_error_body(400, message), sc.headers)
        elif sc.status != 200:
            error_body = default_error_body(sc.status) if sc.error_body is None else sc.error_body
            self._send_json(sc.status, error_body, sc.headers)
        elif body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(sc, build_events(sc, include_usage))
        else:
            self._send_json(200, _completion(sc), sc.headers)

    def _send_json(self, status: int, body: dict[str, Any] | str, headers: dict[str, str]) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        ctype = "application/json" if data.lstrip()[:1] in (b"{", b"[") else "text/plain"
        self._start(status, {"Content-Type": ctype, "Content-Length": str(len(data)), **headers})
        self.wfile.write(data)

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _stream(self, sc: Scenario, events: list[bytes]) -> None:
        stop, limit, sent = self.owner._stop_event, sc.disconnect_after_bytes, 0
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        try:
            self._start(200, {**headers, "Transfer-Encoding": "chunked", **sc.headers})
            for index, event in enumerate(events):
                if index == sc.stall_after_events:
                    self._hold()
                    return
                if index and sc.pace > 0 and stop.wait(sc.pace):
                    return  # server stopping; the socket gets shut down
                if limit is not None and sent + len(event) >= limit:
                    if limit > sent:
                        self._write_chunk(event[: limit - sent])
                    self.close_connection = True
                    _shutdown_socket(self.connection)
                    self.connection.close()
                    return
                self._write_chunk(event)
                sent += len(event)
            if sc.stall_after_events is not None and sc.stall_after_events >= len(events):
                self._hold()
                return
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
            if not stop.is_set():
                self.owner._note_disconnect()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))  # one sendall per event
        self.wfile.flush()

    def _hold(self) -> None:
        """Send nothing more; return when the client disconnects or the server stops."""
        self.close_connection = True
        sock, stop = self.connection, self.owner._stop_event
        while not stop.is_set():
            try:
                if not select.select([sock], [], [], 0.05)[0]:
                    continue
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    break
            except (OSError, ValueError):
                break
            time.sleep(0.05)  # the client sent more bytes; keep holding
        if not stop.is_set():
            self.owner._note_disconnect()


class LoopbackServer:
    """OpenAI-compatible server on 127.0.0.1 with a queue of scripted scenarios."""

    def __init__(self, default: Scenario | None = None, *, port: int = 0) -> None:
        self.default = default if default is not None else Scenario(deltas=["Hello", " world"])
        self.models: list[str] = ["test-model", "other-model"]
        self.requests: list[RecordedRequest] = []
        self._requested_port = port
        self._queue: collections.deque[Scenario] = collections.deque()
        self._lock = threading.Lock()
        self._disconnected = threading.Condition(self._lock)
        self._disconnects = 0
        self._stop_event = threading.Event()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LoopbackServer:
        if self._httpd is None:
            self._stop_event.clear()
            self._httpd = _HTTPServer(("127.0.0.1", self._requested_port), _Handler)
            self._httpd.owner = self
            self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                            name="openai-loopback-server", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._httpd = self._thread = None
        self._stop_event.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = dict(self._conns)
        for sock in conns:
            _shutdown_socket(sock)
        thread.join(1.0)
        deadline = time.monotonic() + 0.5
        for handler_thread in conns.values():
            handler_thread.join(max(0.0, deadline - time.monotonic()))

    __enter__ = start

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server is not running"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *scenarios: Scenario) -> None:
        with self._lock:
            self._queue.extend(scenarios)

    @property
    def disconnects(self) -> int:
        with self._lock:
            return self._disconnects

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        with self._disconnected:
            return self._disconnected.wait_for(lambda: self._disconnects > 0, timeout)

    def _next_scenario(self) -> Scenario:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def _note_disconnect(self) -> None:
        with self._disconnected:
            self._disconnects += 1
            self._disconnected.notify_all()

    def _track(self, sock: socket.socket, active: bool) -> None:
        with self._lock:
            self._conns.pop(sock, None)
            if active:
                self._conns[sock] = threading.current_thread()


_WORDS = "the quick streaming token renders **markdown** while users scroll through long text"
_CODE = ("def f(x):\n", "    return x * 2\n", "for i in range(10):\n", "    print(f(i))\n",
         "items = [1, 2, 3]\n", "# a comment\n")


def synthetic_markdown_deltas(n: int, fences: int | None = None) -> list[str]:
    """``n`` deterministic deltas of a realistic reply: paragraphs, lists, a table now and
    then, and ``fences`` code blocks (default: one per 2,000 deltas) spread evenly."""
    rng = random.Random(1234)
    fences = max(1, n // 2000) if fences is None else fences
    fence_at = {n * (k + 1) // (fences + 1) for k in range(fences)}
    out: list[str] = []
    while len(out) < n:
        roll, left = rng.random(), n - len(out)
        if len(out) in fence_at and left > 12:
            out += ["\n\n```python\n", *rng.choices(_CODE, k=8), "```\n\n"]
        elif roll < 0.002 and left > 6:
            out += ["\n\n| name | value |\n", "|---|---:|\n", "| tokens | 42 |\n",
                    "| rate | 1.5 |\n\n"]
        elif roll < 0.05:
            out.append(f"\n- item {len(out)}")
        elif roll < 0.08:
            out.append("\n\n" + rng.choice(_WORDS.split()).capitalize())
        else:
            out.append(" " + rng.choice(_WORDS.split()) + ("." if rng.random() < 0.08 else ""))
    return out[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loopback OpenAI-compatible test server")
    parser.add_argument("--scenario-json", help="JSON object of Scenario fields")
    parser.add_argument("--scenario-file", type=Path, help="file holding such a JSON object")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--synthetic-deltas", type=int, metavar="N", help="N markdown deltas")
    parser.add_argument("--raw-sse-file", type=Path, help="replay this captured SSE body")
    args = parser.parse_args(argv)
    data = json.loads(args.scenario_file.read_text("utf-8")) if args.scenario_file else {}
    data.update(json.loads(args.scenario_json or "{}"))
    scenario = Scenario.from_dict(data) if data else Scenario(deltas=["Hello", " world"])
    if args.synthetic_deltas is not None:
        scenario.deltas = synthetic_markdown_deltas(args.synthetic_deltas)
    if args.raw_sse_file is not None:
        scenario.raw_sse = args.raw_sse_file.read_bytes()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    with LoopbackServer(scenario, port=args.port) as server:
        print(f"READY {server.base_url}", flush=True)
        while not done.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
