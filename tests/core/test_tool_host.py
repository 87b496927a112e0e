"""The MCP host over real servers: the test server over stdio, Streamable HTTP and SSE, the
published `mcp-server-time` reference server from PyPI, servers that fail to start, calls with
timeouts and cancellation, no orphan processes; and the `mcpServers` JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import pytest

from desktop_chat.core.tools.config import (
    ConfigError,
    ServerConfig,
    Transport,
    function_name,
    parse_servers,
    servers_json,
)
from desktop_chat.core.tools.consent import ToolSettings, ToolSettingsFile, settings_from_json
from desktop_chat.core.tools.host import Status, ToolError, ToolHost
from tests.support import mcp_server
from tests.support.tools import settled, stdio_config

CLAUDE_CONFIG = """{
  "mcpServers": {
    "filesystem": {"command": "npx",
                   "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/Desktop"]},
    "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
    "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer x"}},
    "legacy": {"type": "sse", "url": "https://example.com/events"},
    "old-style": {"url": "https://example.com/sse", "disabled": true}
  }
}"""


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_claude_desktop_config_round_trips() -> None:
    servers = parse_servers(CLAUDE_CONFIG)
    by_name = {s.name: s for s in servers}
    assert by_name["filesystem"].transport is Transport.STDIO
    assert by_name["filesystem"].args[-1] == "/home/me/Desktop"
    assert by_name["time"].env == {"TZ": "UTC"}
    assert by_name["remote"].transport is Transport.HTTP
    assert by_name["remote"].headers == {"Authorization": "Bearer x"}
    assert by_name["legacy"].transport is Transport.SSE
    assert by_name["old-style"].transport is Transport.SSE and not by_name["old-style"].enabled
    assert parse_servers(servers_json(servers)) == servers


@pytest.mark.parametrize(("text", "says"), [
    ("{", "not valid JSON"),
    ('{"mcpServers": []}', "must be an object"),
    ('{"mcpServers": {"x": {}}}', "neither a 'command'"),
    ('{"mcpServers": {"x": {"command": "a", "args": "b"}}}', "'args' must be a list"),
    ('{"mcpServers": {"x": {"url": "ftp://h"}}}', "http:// or https://"),
    ('{"mcpServers": {"x": {"command": "a", "timeout": -1}}}', "positive number"),
    ("[1]", "Expected"),
])
def test_bad_configs_say_what_to_fix(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_servers(text)


def test_function_names_fit_every_api() -> None:
    assert function_name("my server", "get.time") == "my_server__get_time"
    assert len(function_name("s" * 50, "t" * 50)) == 64


def test_tool_settings_file_keeps_consents_and_survives_damage(tmp_path: Any) -> None:
    file = ToolSettingsFile(tmp_path)
    settings = ToolSettings(servers=(stdio_config(),), step_limit=3).allow_always("test", "add")
    file.save(settings)
    assert file.load() == settings
    assert file.load().revoke("test", "add").always_allowed == frozenset()
    file.path.write_text("{not json")
    assert "not valid JSON" in file.load().problems[0]
    damaged = settings_from_json({"mcpServers": {"ok": {"command": "a"}, "bad": 3},
                                  "stepLimit": 999})
    assert [s.name for s in damaged.servers] == ["ok"] and damaged.step_limit == 8
    assert len(damaged.problems) == 2


def test_stdio_http_and_sse_servers_list_and_call_tools() -> None:
    async def scenario() -> list[str]:
        host = ToolHost()
        with mcp_server.HttpServer() as http, mcp_server.HttpServer("sse") as sse:
            host.start([stdio_config("stdio"), ServerConfig("http", Transport.HTTP, url=http.url),
                        ServerConfig("sse", Transport.SSE, url=sse.url)])
            await settled(host)
            texts = []
            for name in ("stdio", "http", "sse"):
                state = host.state(name)
                assert state is not None and state.status is Status.READY, state
                assert {t.name for t in state.tools} >= {"echo", "add", "sleep", "clock"}
                tool = host.find(f"{name}__echo")
                assert tool is not None
                texts.append((await host.call(tool, {"text": f"via {name}"})).text)
            clock = host.find("stdio__clock")
            assert clock is not None and clock.read_only
            await host.aclose()
            return texts

    assert run(scenario()) == ["via stdio", "via http", "via sse"]


def test_published_reference_server_from_pypi() -> None:
    async def scenario() -> dict[str, Any]:
        host = ToolHost()
        host.start([ServerConfig("time", command=sys.executable,
                                 args=("-m", "mcp_server_time", "--local-timezone", "UTC"))])
        await settled(host)
        state = host.state("time")
        assert state is not None and state.status is Status.READY, state
        tool = host.find("time__get_current_time")
        assert tool is not None and "timezone" in json.dumps(tool.input_schema)
        outcome = await host.call(tool, {"timezone": "Europe/Paris"})
        await host.aclose()
        return json.loads(outcome.text)

    assert run(scenario())["timezone"] == "Europe/Paris"


def test_failures_to_start_are_explained_with_stderr() -> None:
    async def scenario() -> dict[str, str]:
        host = ToolHost()
        host.start([stdio_config("broken", "--fail-start"),
                    ServerConfig("uv", command="uvx-not-installed-here"),
                    ServerConfig("npx", command="npx", args=("-y", "x"),
                                 env={"PATH": "/nonexistent"}),
                    ServerConfig("off", command="anything", enabled=False),
                    ServerConfig("gone", Transport.HTTP,
                                 url=f"http://127.0.0.1:{mcp_server.free_port()}/mcp")])
        await settled(host)
        states = {s.config.name: s for s in host.states()}
        await host.aclose()
        assert states["off"].status is Status.DISABLED
        return {name: s.error for name, s in states.items() if s.status is Status.FAILED}

    errors = run(scenario())
    assert "exited before it was ready" in errors["broken"]
    assert "cannot open the database /nonexistent/db" in errors["broken"]
    assert "'uvx-not-installed-here' was not found" in errors["uv"]
    assert "gone" in errors and "127.0.0.1" in errors["gone"]


def test_launcher_hint_when_npx_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    async def scenario() -> str:
        host = ToolHost()
        host.start([ServerConfig("fs", command="npx", args=("-y", "server-filesystem"))])
        await settled(host)
        error = host.state("fs").error  # type: ignore[union-attr]
        await host.aclose()
        return error

    assert "install Node.js" in run(scenario())


def test_timeout_cancel_and_close_leave_no_orphans() -> None:
    async def scenario() -> int:
        host = ToolHost()
        host.start([stdio_config("t")])
        await settled(host)
        sleep = host.find("t__sleep")
        assert sleep is not None
        with pytest.raises(ToolError, match=r"did not answer within 0\.3 s"):
            await host.call(sleep, {"seconds": 10}, timeout_s=0.3)
        task = asyncio.ensure_future(host.call(sleep, {"seconds": 10}))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        echo = host.find("t__echo")
        assert echo is not None
        assert (await host.call(echo, {"text": "still fine"})).text == "still fine"
        children = _children()
        assert children, "the stdio server runs as a child process"
        await host.aclose()
        return len(children)

    run(scenario())
    deadline = time.monotonic() + 5
    while _children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _children() == []


def _children() -> list[int]:
    """This process's child processes still alive (Linux /proc)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry))
    return found


KILLED_APP = """
import asyncio, sys, time
sys.path[:0] = [{root!r}, {src!r}]
from desktop_chat.core.tools.host import ToolHost, Status
from tests.support.tools import settled, stdio_config

async def main():
    host = ToolHost()
    host.start([stdio_config("t")])
    await settled(host)
    assert host.state("t").status is Status.READY
    print("ready", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_a_killed_app_leaves_no_server_behind(tmp_path: Any) -> None:
    """SIGKILL gives the app no chance to clean up: its stdio servers see their stdin close
    and exit by themselves."""
    import signal
    import subprocess

    script = tmp_path / "app.py"
    script.write_text(KILLED_APP.format(root=str(mcp_server.ROOT),
                                        src=str(mcp_server.ROOT / "src")))
    app = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "ready"
        servers = _children_of(app.pid)
        assert servers, "the stdio server runs as the app's child"
        app.send_signal(signal.SIGKILL)
        app.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in servers)
    finally:
        if app.poll() is None:
            app.kill()


def _children_of(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
