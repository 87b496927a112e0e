"""A round trip through the `mcp` SDK without any outside server, for `--self-test`: a tiny
server built with the SDK's `MCPServer`, connected in-process, its tools listed and one called.
Proves a build carries the SDK whole (client, server, types, validation)."""

from __future__ import annotations

import asyncio
import importlib
import logging

from desktop_chat.core.tools.host import result_text

# What the host loads by name when servers start (a frozen build must carry them all).
TRANSPORTS = ("mcp.client.stdio", "mcp.client.streamable_http", "mcp.client.sse")


async def _round_trip() -> tuple[list[str], str]:
    from mcp import Client
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("self-test")

    @server.tool(description="Answer pong with the text given.")
    def ping(text: str) -> str:
        return f"pong {text}"

    async with Client(server) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        answer = result_text(await client.call_tool("ping", {"text": "ok"}))
    return tools, answer


def self_test() -> str:
    """Raises when the SDK does not work; else a line for the report."""
    for name in TRANSPORTS:
        importlib.import_module(name)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        tools, answer = asyncio.run(_round_trip())
    finally:  # MCPServer installs its own (rich) logging on the root logger: ours stays
        root.handlers[:] = handlers
        root.setLevel(level)
    if tools != ["ping"] or answer != "pong ok":
        raise RuntimeError(f"unexpected MCP round trip: {tools} {answer!r}")
    version = importlib.import_module("importlib.metadata").version("mcp")
    return f"mcp {version}: in-process server listed and called; stdio/HTTP/SSE transports load"
