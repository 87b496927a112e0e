"""Tool hosts over the real test MCP server (tests/support/mcp_server.py), for core and UI
tests: a stdio server config, and waiting (inside the running loop) for servers to settle."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from desktop_chat.core.tools.config import ServerConfig
from desktop_chat.core.tools.host import Status, ToolHost
from tests.support import mcp_server


def stdio_config(name: str = "test", *extra: str, **fields: object) -> ServerConfig:
    command = mcp_server.command(*extra)
    return ServerConfig(name, command=command[0], args=tuple(command[1:]),
                        env={"PYTHONPATH": str(mcp_server.ROOT)}, cwd=str(mcp_server.ROOT),
                        **fields)  # type: ignore[arg-type]


def mcp_config_file(path: Path, *extra: str, name: str = "test") -> Path:
    """A Claude-desktop-style `mcpServers` file for the stdio test server."""
    command = mcp_server.command(*extra)
    path.write_text(json.dumps({"mcpServers": {name: {
        "command": command[0], "args": command[1:],
        "env": {"PYTHONPATH": str(mcp_server.ROOT)}, "cwd": str(mcp_server.ROOT)}}}))
    return path


async def settled(host: ToolHost, timeout_s: float = 30.0) -> None:
    """Wait until no server is still starting."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while any(s.status is Status.STARTING for s in host.states()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError([s.summary for s in host.states()])
        await asyncio.sleep(0.02)
