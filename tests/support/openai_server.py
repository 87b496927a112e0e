"""Loopback OpenAI-compatible server with fault injection (see ``main`` for the CLI).

Serves Chat Completions (tests/support/chat_wire.py), the Responses API
(tests/support/responses_wire.py) and GET /models, under /v1 and under Azure's paths, and
records every request (method, path, query, headers, JSON body). It also answers requests sent
to it as an HTTP proxy (absolute-form targets), so tests can check that a proxy is used.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import random
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from tests.support.chat_wire import (
    MALFORMED_EVENT,
    RecordedRequest,
    Scenario,
    build_events,
    completion,
    default_error_body,
)
from tests.support.responses_wire import build_response_events, response_object

__all__ = ["MALFORMED_EVENT", "LoopbackServer", "RecordedRequest", "Scenario",
           "default_error_body", "synthetic_markdown_deltas"]

# Azure: {resource}/openai/deployments/{name}/chat/completions?api-version=..., and
# {resource}/openai/{models,responses}?api-version=...; its v1 API needs no api-version.
_AZURE_DEPLOYMENT = re.compile(r"/openai/deployments/[^/]+(/chat/completions|/responses)")
_AZURE_NO_VERSION = {"error": {"code": "404", "message": "Resource not found"}}


# Local servers' own APIs the app asks which models are for chat (LM Studio, Ollama).
NATIVE_PATHS = frozenset({"/api/v0/models", "/api/show", "/api/tags"})


def route(path: str, query: dict[str, str]) -> str | None:
    """The API a request path names ("/chat/completions", "/responses", "/models"), or None.
    An Azure path without an api-version query is unknown, as it is to Azure."""
    path = path.rstrip("/")
    if (match := _AZURE_DEPLOYMENT.fullmatch(path)) is not None:
        return match[1] if "api-version" in query else None
    if path.startswith("/openai/v1/"):
        return path.removeprefix("/openai/v1")
    if path.startswith("/openai/"):
        return path.removeprefix("/openai") if "api-version" in query else None
    return path.removeprefix("/v1")


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
    _query: dict[str, str]
    _api: str | None  # what route() made of the path

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
        target = urlsplit(self.path)
        self._query = dict(parse_qsl(target.query))
        self._api = route(target.path, self._query)
        recorded = RecordedRequest(target.path, headers, body, self._query, self.command,
                                   self.path)
        if target.path in NATIVE_PATHS and (
                f"{self.command} {target.path}" not in self.owner.native):
            # A local server's own API, asked on every local server (which models are for
            # chat?) and not served here unless a test says what to answer: not counted.
            return body if isinstance(body, dict) else None
        with self.owner._lock:
            self.owner.requests.append(recorded)
        return body if isinstance(body, dict) else None

    def _not_found(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/openai/") and "api-version" not in self._query:
            self._send_json(404, _AZURE_NO_VERSION, {})
        else:
            self._send_json(404, default_error_body(404, f"Unknown path {self.path}"), {})

    def _native(self, body: dict[str, Any] | None) -> bool:
        """A local server's own API (LM Studio's /api/v0/models, Ollama's /api/show):
        answered from `owner.native` when the test put an answer there."""
        answer = self.owner.native.get(f"{self.command} {urlsplit(self.path).path}")
        if answer is None:
            return False
        self._send_json(200, answer(body) if callable(answer) else answer, {})
        return True

    def do_GET(self) -> None:
        self._record(b"")
        if self._native(None):
            return
        if self.owner.only_v1 and not urlsplit(self.path).path.startswith("/v1/"):
            self._not_found()
            return
        if self._api != "/models":
            self._not_found()
            return
        sc = self.owner.models_scenario
        if sc.stall_before_headers:
            self._hold()
        elif sc.status != 200:
            error_body = default_error_body(sc.status) if sc.error_body is None else sc.error_body
            self._send_json(sc.status, error_body, sc.headers)
        else:
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"}
                    for m in self.owner.models]
            self._send_json(200, {"object": "list", "data": data}, sc.headers)

    def do_POST(self) -> None:
        body = self._record(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if self._native(body):
            return
        if self._api == "/embeddings":
            self._embeddings(body)
            return
        if self._api not in ("/chat/completions", "/responses"):
            self._not_found()
            return
        sc = self.owner._next_scenario()
        responses = self._api == "/responses"
        if sc.stall_before_headers:
            self._hold()
        elif body is None or (sc.reject_stream_options and "stream_options" in body):
            message = "Unrecognized request argument supplied: stream_options"
            message = "Could not parse the JSON body of your request." if body is None else message
            self._send_json(400, default_error_body(400, message), sc.headers)
        elif sc.status != 200:
            error_body = default_error_body(sc.status) if sc.error_body is None else sc.error_body
            self._send_json(sc.status, error_body, sc.headers)
        elif body.get("stream") and responses:
            self._stream(sc, build_response_events(sc))
        elif body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(sc, build_events(sc, include_usage))
        else:
            reply = response_object(sc, "completed") if responses else completion(sc)
            self._send_json(200, reply, sc.headers)

    def _embeddings(self, body: dict[str, Any] | None) -> None:
        """POST /embeddings: `embed_text` vectors of the inputs; `owner.embeddings_scenario`'s
        status and error body fail it; a model not in `owner.embedding_models` is a 404."""
        sc, model = self.owner.embeddings_scenario, (body or {}).get("model")
        texts = (body or {}).get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if sc.status != 200:
            self._send_json(sc.status, default_error_body(sc.status) if sc.error_body is None
                            else sc.error_body, sc.headers)
        elif model not in self.owner.embedding_models:
            self._send_json(404, default_error_body(
                404, f"The model `{model}` does not exist or you do not have access to it."), {})
        elif not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._send_json(400, default_error_body(400, "'input' must be text"), {})
        else:
            data = [{"object": "embedding", "index": i, "embedding": embed_text(t)}
                    for i, t in enumerate(texts)]
            self._send_json(200, {"object": "list", "data": data, "model": model, "usage": {
                "prompt_tokens": 0, "total_tokens": 0}}, {})

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
            self.owner.stream_ends.append(time.perf_counter())
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
        # GET /models answers with this scenario's status / error_body / headers / stall
        self.models_scenario = Scenario()
        # "GET /api/v0/models" -> a JSON body (or a function of the request's JSON body)
        self.native: dict[str, Any] = {}
        self.only_v1 = False  # answer /models only under /v1 (as Ollama and LM Studio do)
        # POST /embeddings: the models it knows; this scenario's status/error_body fail it
        self.embedding_models = {"test-embedding"}
        self.embeddings_scenario = Scenario()
        self.requests: list[RecordedRequest] = []
        self.stream_ends: list[float] = []  # perf_counter when each stream was fully written
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

    @property
    def replies_asked(self) -> list[RecordedRequest]:
        """The requests for a reply (POSTs), leaving out model listings and embeddings."""
        return [r for r in list(self.requests)
                if r.method == "POST" and route(r.path, r.query) != "/embeddings"]

    @property
    def embeddings_asked(self) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if route(r.path, r.query) == "/embeddings"]

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


# Embeddings: a hashed bag of words (each distinct word, stop words left out, adds ±1 to one
# of EMBEDDING_DIMS coordinates), so texts sharing words are close; a small thesaurus maps some
# synonyms onto one word first, so that meaning, not only spelling, brings texts together.
EMBEDDING_DIMS = 1024
THESAURUS = {"feline": "cat", "kitty": "cat", "moggy": "cat", "beacon": "lighthouse",
             "custodian": "keeper", "warden": "keeper", "caretaker": "keeper",
             "heavy": "weighs", "weight": "weighs", "called": "named", "title": "named"}
_STOP = frozenset(re.findall(
    r"\w+", "a an and are as at be by do does for how in is it its of on or our s so that the "
    "this to was what which who with"))


def embed_text(text: str) -> list[float]:
    import hashlib

    vector = [0.0] * EMBEDDING_DIMS
    words = {THESAURUS.get(w, w) for w in re.findall(r"[a-z0-9]+", text.lower())} - _STOP
    for word in words:
        digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        vector[digest % EMBEDDING_DIMS] += 1.0 if digest >> 63 else -1.0
    return vector


_WORDS = "the quick streaming token renders **markdown** while users scroll through long text"
_CODE = ("def f(x):\n", "    return x * 2\n", "for i in range(10):\n", "    print(f(i))\n",
         "items = [1, 2, 3]\n", "# a comment\n")


# A rough stand-in for a BPE tokenizer: a word with its space is one token up to 7 letters,
# longer words come in pieces; markdown marks, up to 3 digits, line breaks and indentation
# are tokens of their own. On this text it averages about 4 characters a delta, as GPT
# tokenizers do on English (the llama.cpp capture in tests/data averages 3.3).
_TOKEN = re.compile(r" ?[A-Za-z]{1,7}(?![A-Za-z])| ?[A-Za-z]{4}|[A-Za-z]+|\d{1,3}"
                    r"| ?[^\w\s]{1,2}|\n+| +|.", re.DOTALL)


def synthetic_markdown_deltas(n: int, fences: int | None = None, *,
                              tokens: bool = True) -> list[str]:
    """``n`` deterministic deltas of a realistic reply: paragraphs, lists, a table now and
    then, and ``fences`` code blocks (default: one per 2,000 deltas) spread evenly.
    ``tokens``: token-sized deltas, as servers send them; False: a word or a whole code line
    per delta (about twice the text per delta: a heavier load for the view)."""
    rng = random.Random(1234)
    fences = max(1, n // 2000) if fences is None else fences
    fence_at = sorted({n * (k + 1) // (fences + 1) for k in range(fences)})
    out: list[str] = []
    while len(out) < n:
        roll, left = rng.random(), n - len(out)
        pieces: list[str]
        if fence_at and len(out) >= fence_at[0] and left > (60 if tokens else 12):
            fence_at.pop(0)
            pieces = ["\n\n```python\n", *rng.choices(_CODE, k=8), "```\n\n"]
        elif roll < 0.002 and left > 6:
            pieces = ["\n\n| name | value |\n", "|---|---:|\n", "| tokens | 42 |\n",
                      "| rate | 1.5 |\n\n"]
        elif roll < 0.05:
            pieces = [f"\n- item {len(out)}"]
        elif roll < 0.08:
            pieces = ["\n\n" + rng.choice(_WORDS.split()).capitalize()]
        else:
            pieces = [" " + rng.choice(_WORDS.split()) + ("." if rng.random() < 0.08 else "")]
        out += [t for piece in pieces for t in _TOKEN.findall(piece)] if tokens else pieces
    return out[:n]


def spawn(*args: str) -> tuple[subprocess.Popen[str], str]:
    """This server in a process of its own (benchmarks keep it off the measured process's
    CPU and GIL), started with `args` (see `main`); returns the process and its base URL."""
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "tests.support.openai_server", *args]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"loopback server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loopback OpenAI-compatible test server")
    parser.add_argument("--scenario-json", help="JSON object of Scenario fields")
    parser.add_argument("--scenario-file", type=Path, help="file holding such a JSON object")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--synthetic-deltas", type=int, metavar="N", help="N markdown deltas")
    parser.add_argument("--word-deltas", action="store_true",
                        help="synthetic deltas of a word or a code line, not token-sized")
    parser.add_argument("--raw-sse-file", type=Path, help="replay this captured SSE body")
    args = parser.parse_args(argv)
    data = json.loads(args.scenario_file.read_text("utf-8")) if args.scenario_file else {}
    data.update(json.loads(args.scenario_json or "{}"))
    scenario = Scenario.from_dict(data) if data else Scenario(deltas=["Hello", " world"])
    if args.synthetic_deltas is not None:
        scenario.deltas = synthetic_markdown_deltas(args.synthetic_deltas,
                                                    tokens=not args.word_deltas)
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
