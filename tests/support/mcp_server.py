"""A real MCP server written with the `mcp` SDK, for tests and benchmarks.

    python -m tests.support.mcp_server                      # stdio
    python -m tests.support.mcp_server --http PORT          # Streamable HTTP on 127.0.0.1
    python -m tests.support.mcp_server --sse PORT           # the older SSE transport
    python -m tests.support.mcp_server --fail-start         # writes to stderr and exits 1

Tools: echo, add, sleep (seconds), fail (reports an error), huge (N bytes of text), crash (the
process exits mid-call), clock (read-only), malformed (returns a result the client must
refuse: a declared output schema it does not match).
Prompts: review (arguments code, language), brief (none), with-notes (embeds the notes).
Resources: memo://notes (Markdown), memo://pixel (a PNG), memo://archive (other binary);
template memo://topics/{topic} (a line about the topic).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_server():
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("test-tools")

    @server.tool(description="Return the text it is given.")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> str:
        return str(a + b)

    @server.tool(description="Wait for the given number of seconds, then say so.")
    async def sleep(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return f"slept {seconds:g} s"

    @server.tool(description="Always fails.")
    def fail(reason: str = "it was told to") -> str:
        raise ValueError(f"failed because {reason}")

    @server.tool(description="Return `size` bytes of text.")
    def huge(size: int) -> str:
        line = "0123456789abcdef" * 4 + "\n"
        return (line * (size // len(line) + 1))[:size]

    @server.tool(description="The server process exits in the middle of the call.")
    def crash() -> str:
        sys.stderr.write("test-tools: crashing on purpose\n")
        sys.stderr.flush()
        os._exit(3)

    @server.tool(description="The time on the server.",
                 annotations=ToolAnnotations(read_only_hint=True))
    def clock() -> str:
        return time.strftime("%H:%M:%S")

    add_context(server)
    return server


NOTES = "# Release notes\n\nThe launch code word is HELIOTROPE. Ship on Thursday.\n"
# a 1x1 PNG
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                      "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5279ac4"
                      "0000000049454e44ae426082")


def add_context(server) -> None:
    """Prompts and resources: the composer's `/` commands and attachable context."""

    @server.prompt(description="Ask for a careful code review.")
    def review(code: str, language: str = "Python") -> str:
        return f"Please review this {language} code for bugs:\n\n{code}"

    @server.prompt(description="A short answer, please.")
    def brief() -> list[dict]:
        return [{"role": "user", "content": "Answer in one sentence."}]

    @server.prompt(name="with-notes", description="Discuss the release notes.")
    def with_notes() -> list[dict]:
        return [{"role": "user", "content": "What do the notes say about the launch?"},
                {"role": "user", "content": {"type": "resource", "resource": {
                    "uri": "memo://notes", "mimeType": "text/markdown", "text": NOTES}}}]

    @server.resource("memo://notes", name="notes", description="The release notes.",
                     mime_type="text/markdown")
    def notes() -> str:
        return NOTES

    @server.resource("memo://pixel", name="pixel.png", description="A tiny image.",
                     mime_type="image/png")
    def pixel() -> bytes:
        return PIXEL

    @server.resource("memo://topics/{topic}", name="topic", description="Notes on a topic.",
                     mime_type="text/plain")
    def topic(topic: str) -> str:
        return f"Notes on {topic}: nothing yet."

    @server.resource("memo://archive", name="archive.bin", description="Opaque bytes.",
                     mime_type="application/octet-stream")
    def archive() -> bytes:
        return b"\x00\x01\x02binary\xff" * 8


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "tests.support.mcp_server", *extra]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


class HttpServer:
    """The server over Streamable HTTP (or SSE) in a child process on a free loopback port."""

    def __init__(self, transport: str = "http") -> None:
        self.port = free_port()
        self.transport = transport
        self.process = subprocess.Popen(
            command(f"--{transport}", str(self.port)), env=environment(), cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_listening()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{'sse' if self.transport == 'sse' else 'mcp'}"

    def _wait_listening(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the MCP test server exited")
            with closing(socket.socket()) as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("the MCP test server did not start listening")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int)
    parser.add_argument("--sse", type=int)
    parser.add_argument("--fail-start", action="store_true")
    args = parser.parse_args(argv)
    if args.fail_start:
        sys.stderr.write("test-tools: cannot open the database /nonexistent/db\n")
        return 1
    server = build_server()
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    elif args.sse:
        server.run("sse", host="127.0.0.1", port=args.sse)
    else:
        server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
