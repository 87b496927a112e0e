"""Helpers for the engine tests: GGUF bytes, stand-in engine processes, process liveness."""

from __future__ import annotations

import asyncio
import os
import struct
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from desktop_chat.core.engine.offline import Launch

# Stand-in for engine_host: reports progress like it, then serves GET /v1/models on its port.
FAKE_HOST = textwrap.dedent("""
    import http.server, json, sys
    port = int(sys.argv[1])
    def status(**data):
        print("engine-host: " + json.dumps(data), flush=True)
    status(event="loading", model="tiny.gguf", n_ctx=2048, chat_format="gemma")
    status(event="progress", model="tiny.gguf", percent=50)
    status(event="loaded", model="tiny.gguf")
    class Models(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"object": "list", "data": [{"id": "tiny"}]}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("127.0.0.1", port), Models).serve_forever()
""")


def gguf_bytes(
    metadata: Sequence[tuple[str, int, object]] = (), *, version: int = 3, tensors: int = 1,
    magic: bytes = b"GGUF",
) -> bytes:
    """A GGUF header and metadata. Values: (key, type, value); type 8 = string,
    4 = uint32, 9 = array given as (item type, [items])."""

    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    def value(kind: int, item: object) -> bytes:
        if kind == 8:
            return string(str(item))
        if kind == 4:
            return struct.pack("<I", item)
        if kind == 6:
            return struct.pack("<f", item)
        assert kind == 9 and isinstance(item, tuple)
        item_kind, items = item
        return struct.pack("<IQ", item_kind, len(items)) + b"".join(
            value(item_kind, one) for one in items)

    body = b"".join(string(key) + struct.pack("<I", kind) + value(kind, item)
                    for key, kind, item in metadata)
    return magic + struct.pack("<IQQ", version, tensors, len(metadata)) + body


def write(tmp_path: Path, data: bytes, name: str = "model.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def python(code: str, *args: str) -> Callable[[Launch], list[str]]:
    return lambda launch: [sys.executable, "-c", code, *args]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():  # a zombie nobody has reaped yet is gone for our purposes
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    return True


async def wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    for _ in range(int(timeout_s / 0.05)):
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return not alive(pid)
