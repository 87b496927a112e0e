"""The MCP servers' lifecycle and calls, on a thread of their own.

`ToolHost` runs an asyncio loop on a background thread: each enabled server is one task there
that connects (starting the stdio program, or opening the HTTP/SSE session), lists the tools,
then holds the session until it is stopped. Nothing the window does waits for a server:
`start` returns at once, states arrive through `on_change` (called on the owner's loop), and
a failing server is reported once, with the tail of what it wrote to stderr. The `mcp` SDK is
imported only there, when the first server starts.

`call` is awaited on the owner's loop; cancelling it cancels the call on the server (the SDK
sends `notifications/cancelled`), and each call has its own timeout. `close` ends every
session: stdio programs get their stdin closed, then terminated, then killed (the SDK starts
them in their own process group); one killed with the app sees its stdin close and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from desktop_chat.core.logs import redact_secrets
from desktop_chat.core.tools.catalog import (
    PromptContent,
    PromptInfo,
    ResourceData,
    ResourceInfo,
    ResourceTemplate,
    prompt_content,
    prompt_info,
    resource_data,
    resource_info,
    template_info,
)
from desktop_chat.core.tools.config import ServerConfig, Transport, function_name

log = logging.getLogger("desktop_chat.tools")

START_TIMEOUT_S = 30.0
STDERR_TAIL_CHARS = 1500
CLOSE_TIMEOUT_S = 5.0
LAUNCHERS = {
    "uvx": "uvx comes with uv: install it from https://docs.astral.sh/uv/ "
           "(e.g. `pipx install uv` or `pip install uv`), then restart the server.",
    "npx": "npx comes with Node.js: install Node.js (https://nodejs.org, or your system's "
           "package manager), then restart the server.",
}


class Status(enum.StrEnum):
    DISABLED = "disabled"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ToolInfo:
    server: str
    name: str  # the tool's name on its server
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    read_only: bool = False  # the server says so (annotations.readOnlyHint)

    @property
    def function(self) -> str:
        """The name the model calls it by."""
        return function_name(self.server, self.name)

    def spec(self) -> dict[str, Any]:
        """The Chat Completions `tools` entry."""
        schema = self.input_schema or {"type": "object", "properties": {}}
        return {"type": "function", "function": {
            "name": self.function, "description": self.description[:1024],
            "parameters": schema}}


@dataclass(frozen=True, slots=True)
class ServerState:
    config: ServerConfig
    status: Status
    tools: tuple[ToolInfo, ...] = ()
    error: str = ""  # why it failed, in words, with the end of its stderr
    prompts: tuple[PromptInfo, ...] = ()
    resources: tuple[ResourceInfo, ...] = ()
    templates: tuple[ResourceTemplate, ...] = ()

    @property
    def summary(self) -> str:
        if self.status is Status.READY:
            return f"ready, {len(self.tools)} tool{'s' * (len(self.tools) != 1)}"
        if self.status is Status.FAILED:
            return f"failed: {self.error}"
        return self.status.value


@dataclass(frozen=True, slots=True)
class CallOutcome:
    text: str
    is_error: bool
    server_s: float  # the round trip to the server, as measured here


class ToolError(Exception):
    """A call that could not be made or did not finish; the text says why, for the user and
    for the model."""


class _Server:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.state = ServerState(config, Status.STARTING if config.enabled else Status.DISABLED)
        self.client: Any = None
        self.errlog: IO[str] | None = None
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class ToolHost:
    """`on_change(state)` is called on `owner_loop` whenever a server's state changes."""

    def __init__(self, owner_loop: asyncio.AbstractEventLoop | None = None,
                 on_change: Callable[[ServerState], None] | None = None) -> None:
        self._owner_loop = owner_loop
        self.on_change = on_change
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: dict[str, _Server] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()  # every session, also those winding down

    # -- what there is --------------------------------------------------------------------

    def states(self) -> list[ServerState]:
        with self._lock:
            return [s.state for s in self._servers.values()]

    def state(self, name: str) -> ServerState | None:
        with self._lock:
            server = self._servers.get(name)
            return server.state if server else None

    def tools(self) -> list[ToolInfo]:
        """Every tool of every ready server."""
        return [t for s in self.states() if s.status is Status.READY for t in s.tools]

    def prompts(self) -> list[PromptInfo]:
        """Every prompt of every ready server (the composer's `/` commands)."""
        return [p for s in self.states() if s.status is Status.READY for p in s.prompts]

    def resources(self) -> list[ResourceInfo]:
        """Every resource of every ready server (what can be attached as context)."""
        return [r for s in self.states() if s.status is Status.READY for r in s.resources]

    def resource_templates(self) -> list[ResourceTemplate]:
        """Every resource template of every ready server."""
        return [t for s in self.states() if s.status is Status.READY for t in s.templates]

    def find(self, function: str) -> ToolInfo | None:
        return next((t for t in self.tools() if t.function == function), None)

    def config(self, server: str) -> ServerConfig | None:
        state = self.state(server)
        return state.config if state else None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, configs: list[ServerConfig]) -> None:
        """Start the enabled servers in the background (returns at once)."""
        for config in configs:
            self._begin(config)

    def set_servers(self, configs: list[ServerConfig]) -> None:
        """Apply an edited list: removed or changed servers stop, new or changed ones start,
        unchanged ones keep running."""
        wanted = {c.name: c for c in configs}
        with self._lock:
            current = {name: s.config for name, s in self._servers.items()}
        for name, config in current.items():
            if wanted.get(name) != config:
                self._end(name)
        for name, config in wanted.items():
            if current.get(name) != config:
                self._begin(config)

    def restart(self, name: str) -> None:
        config = self.config(name)
        if config is not None:
            self._end(name)
            self._begin(config)

    def _begin(self, config: ServerConfig) -> None:
        if self._closed:
            return
        server = _Server(config)
        with self._lock:
            self._servers[config.name] = server
        self._publish(server.state)
        if config.enabled:
            loop = self._background_loop()
            loop.call_soon_threadsafe(self._spawn, server)

    def _spawn(self, server: _Server) -> None:
        server.task = asyncio.ensure_future(self._serve(server))
        self._tasks.add(server.task)
        server.task.add_done_callback(self._tasks.discard)

    def _end(self, name: str) -> None:
        with self._lock:
            server = self._servers.pop(name, None)
        if server is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(server.stop.set)

    async def aclose(self) -> None:
        """Stop every server and the background thread (awaitable on the owner's loop)."""
        await asyncio.to_thread(self.close)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop every server (stdio programs end) and the background thread."""
        self._closed = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop_all(), loop).result(timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        self._loop = self._thread = None

    async def _stop_all(self) -> None:
        """Every session ends (servers removed earlier may still be winding down); one that
        does not end in time is cancelled, so no generator is left running on the loop."""
        with self._lock:
            servers = list(self._servers.values())
        for server in servers:
            server.stop.set()
        if self._tasks:
            _done, late = await asyncio.wait(set(self._tasks), timeout=CLOSE_TIMEOUT_S - 2)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1)

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

            self._thread = threading.Thread(target=run, name="mcp-servers", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    def _set(self, server: _Server, state: ServerState) -> None:
        with self._lock:
            server.state = state
            current = self._servers.get(state.config.name) is server
        if current:
            self._publish(state)

    def _publish(self, state: ServerState) -> None:
        callback = self.on_change
        if callback is None:
            return
        loop = self._owner_loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(callback, state)

    # -- one server (on the background loop) ------------------------------------------------

    async def _serve(self, server: _Server) -> None:
        config = server.config
        errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed in finally
        server.errlog = errlog
        try:
            from mcp import Client  # the SDK loads here, off the window's start-up path

            async with Client(_transport(config, errlog), read_timeout_seconds=START_TIMEOUT_S,
                              mode="legacy") as client:
                tools = await _list_tools(client, config.name)
                prompts, resources, templates = await _list_context(client, config.name)
                server.client = client
                self._set(server, ServerState(config, Status.READY, tuple(tools),
                                              prompts=prompts, resources=resources,
                                              templates=templates))
                log.info("MCP server %s ready with %d tool(s)", config.name, len(tools))
                await server.stop.wait()
                server.client = None
            if server.state.status is Status.READY:
                self._set(server, ServerState(config, Status.STOPPED))
        except asyncio.CancelledError:
            server.client = None
            raise
        except BaseException as exc:
            server.client = None
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            if server.state.status is Status.FAILED:
                return  # already reported (it went away mid-call)
            reason = _start_error(config, exc, _tail(errlog))
            was_ready = server.state.status is Status.READY
            log.warning("MCP server %s %s: %s", config.name,
                        "stopped working" if was_ready else "failed to start", reason)
            self._set(server, ServerState(config, Status.FAILED, (), reason))
        finally:
            errlog.close()

    # -- calls ------------------------------------------------------------------------------

    async def call(self, tool: ToolInfo, arguments: dict[str, Any],
                   timeout_s: float | None = None) -> CallOutcome:
        """Run `tool` on its server (awaited on the owner's loop). Raises ToolError (words)
        when the call cannot be made or does not finish; a tool that reports an error returns
        an outcome with `is_error`."""
        loop = self._loop
        if loop is None:
            raise ToolError(f"The server '{tool.server}' is not running.")
        future = asyncio.run_coroutine_threadsafe(self._call(tool, arguments, timeout_s), loop)
        return await asyncio.wrap_future(future)

    async def _call(self, tool: ToolInfo, arguments: dict[str, Any],
                    timeout_s: float | None) -> CallOutcome:
        with self._lock:
            server = self._servers.get(tool.server)
        client = server.client if server else None
        if server is None or client is None:
            raise ToolError(f"The server '{tool.server}' is not running"
                            + (f" ({server.state.summary})." if server else "."))
        timeout = timeout_s or server.config.timeout_s
        started = time.perf_counter()
        try:
            result = await client.call_tool(tool.name, arguments, read_timeout_seconds=timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = _call_error(tool, exc, timeout)
            if _connection_lost(exc):
                self._lost(server, message)
            raise ToolError(message) from None
        elapsed = time.perf_counter() - started
        return CallOutcome(result_text(result), bool(getattr(result, "is_error", False)),
                           elapsed)


    async def get_prompt(self, prompt: PromptInfo, arguments: dict[str, str]) -> PromptContent:
        """The prompt's messages with these arguments (awaited on the owner's loop). Raises
        ToolError (words)."""
        what = f"The prompt '{prompt.name}' of '{prompt.server}'"

        async def get(client: Any) -> PromptContent:
            return prompt_content(await client.get_prompt(prompt.name, arguments or None))

        return await self._on_server(prompt.server, what, get)

    async def read_resource(self, resource: ResourceInfo) -> list[ResourceData]:
        """What the resource holds now (awaited on the owner's loop). Raises ToolError."""
        what = f"The resource '{resource.name}' of '{resource.server}'"

        async def read(client: Any) -> list[ResourceData]:
            result = await client.read_resource(resource.uri, cache_mode="refresh")
            return [resource_data(resource.name, c) for c in result.contents]

        return await self._on_server(resource.server, what, read)

    async def _on_server(self, name: str, what: str,
                         work: Callable[[Any], Any]) -> Any:
        loop = self._loop
        if loop is None:
            raise ToolError(f"The server '{name}' is not running.")

        async def run() -> Any:
            with self._lock:
                server = self._servers.get(name)
            client = server.client if server else None
            if server is None or client is None:
                raise ToolError(f"The server '{name}' is not running"
                                + (f" ({server.state.summary})." if server else "."))
            try:
                return await asyncio.wait_for(work(client), server.config.timeout_s)
            except (asyncio.CancelledError, ToolError):
                raise
            except TimeoutError:
                raise ToolError(f"{what} did not come within {server.config.timeout_s:g} s."
                                ) from None
            except Exception as exc:
                message = f"{what} could not be fetched: {_describe(exc)}"
                if _connection_lost(exc):
                    self._lost(server, message)
                raise ToolError(message) from None

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        return await asyncio.wrap_future(future)

    def _lost(self, server: _Server, message: str) -> None:
        """The server went away mid-call: say so once (with its stderr) and end the session."""
        tail = _tail(server.errlog) if server.errlog else ""
        reason = message + (f"\nIts last output:\n{tail}" if tail else "")
        log.warning("MCP server %s stopped: %s", server.config.name, reason)
        self._set(server, ServerState(server.config, Status.FAILED, (), reason))
        server.client = None
        server.stop.set()


def _connection_lost(exc: BaseException) -> bool:
    return any(getattr(getattr(e, "error", None), "code", None) == -32000
               or "closed" in str(e).lower() for e in _leaves(exc))


def _transport(config: ServerConfig, errlog: IO[str]) -> Any:
    if config.transport is Transport.STDIO:
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        params = StdioServerParameters(command=config.command, args=list(config.args),
                                       env=dict(config.env) or None, cwd=config.cwd or None)
        return stdio_client(params, errlog=errlog)
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = dict(config.headers) or None
    if config.transport is Transport.SSE:
        from mcp.client.sse import sse_client

        return sse_client(config.url, headers=headers)
    from mcp.client.streamable_http import streamable_http_client

    return _http(config.url, create_mcp_http_client(headers=headers), streamable_http_client)


@contextlib.asynccontextmanager
async def _http(url: str, http_client: Any, connect: Any) -> Any:
    async with http_client, connect(url, http_client=http_client) as streams:
        yield streams


async def _list_tools(client: Any, server: str) -> list[ToolInfo]:
    tools: list[ToolInfo] = []
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            annotations = tool.annotations
            tools.append(ToolInfo(
                server, tool.name, tool.description or "", dict(tool.input_schema or {}),
                bool(annotations is not None and annotations.read_only_hint)))
        cursor = page.next_cursor
        if not cursor:
            return tools


async def _list_context(client: Any, server: str) -> tuple[
        tuple[PromptInfo, ...], tuple[ResourceInfo, ...], tuple[ResourceTemplate, ...]]:
    """The server's prompts, resources and resource templates, when it says it has them.
    A server whose listing fails still serves its tools: the failure is logged, the list left
    empty."""
    capabilities = client.server_capabilities
    prompts: list[PromptInfo] = []
    resources: list[ResourceInfo] = []
    templates: list[ResourceTemplate] = []
    try:
        if capabilities.prompts is not None:
            async for item in _pages(client.list_prompts, "prompts"):
                prompts.append(prompt_info(server, item))
        if capabilities.resources is not None:
            async for item in _pages(client.list_resources, "resources"):
                resources.append(resource_info(server, item))
            async for item in _pages(client.list_resource_templates, "resource_templates"):
                if (template := template_info(server, item)) is not None:
                    templates.append(template)
    except Exception as exc:
        log.warning("MCP server %s: its prompts or resources could not be listed: %s",
                    server, _describe(exc))
    return tuple(prompts), tuple(resources), tuple(templates)


async def _pages(list_page: Callable[..., Any], field_name: str) -> Any:
    cursor = None
    while True:
        page = await list_page(cursor=cursor)
        for item in getattr(page, field_name):
            yield item
        cursor = page.next_cursor
        if not cursor:
            return


def result_text(result: Any) -> str:
    """A tool's result as the text the model gets: text blocks as they are, other content
    named (an image is described, not inlined), structured content as JSON when no text came."""
    pieces: list[str] = []
    for block in result.content or ():
        kind = getattr(block, "type", "")
        if kind == "text":
            pieces.append(block.text)
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            pieces.append(text if isinstance(text, str) else
                          f"[binary resource {resource.uri}, {resource.mime_type or 'data'}]")
        elif kind == "resource_link":
            pieces.append(f"[resource {block.uri}]")
        elif kind in ("image", "audio"):
            pieces.append(f"[{kind} ({block.mime_type}), {len(block.data) * 3 // 4} bytes]")
        else:
            pieces.append(f"[{kind or 'unknown'} content]")
    if not pieces and result.structured_content is not None:
        pieces.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(pieces)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException) -> str:
    leaves = _leaves(exc)
    main = next((e for e in leaves if not isinstance(e, asyncio.CancelledError)), leaves[0])
    if isinstance(main, FileNotFoundError):
        return "the program was not found"
    if isinstance(main, PermissionError):
        return "the program may not be run (permission denied)"
    text = str(main) or type(main).__name__
    return redact_secrets(text)


def _start_error(config: ServerConfig, exc: BaseException, stderr_tail: str) -> str:
    reason = _describe(exc)
    if config.transport is Transport.STDIO:
        command = config.command
        if "/" not in command and shutil.which(command) is None and any(
                isinstance(e, FileNotFoundError) for e in _leaves(exc)):
            hint = LAUNCHERS.get(command.rsplit("/", 1)[-1].removesuffix(".exe"))
            reason = f"'{command}' was not found on this computer" + (
                f". {hint}" if hint else ". Check the command in Settings → Tools.")
        elif "program" in reason:
            reason = f"'{config.where}': {reason}"
        elif "closed" in reason.lower():
            reason = f"'{config.where}' exited before it was ready"
    else:
        reason = f"{config.url}: {reason}"
    if stderr_tail:
        reason += f"\nIts last output:\n{stderr_tail}"
    return reason


def _call_error(tool: ToolInfo, exc: Exception, timeout_s: float) -> str:
    text = _describe(exc)
    code = getattr(getattr(exc, "error", None), "code", None)
    if code == -32001 or "timed out" in text.lower():
        return (f"The tool '{tool.name}' on '{tool.server}' did not answer within "
                f"{timeout_s:g} s and was cancelled.")
    if "closed" in text.lower() or "connection" in text.lower():
        return (f"The server '{tool.server}' stopped while running '{tool.name}' "
                f"({text}).")
    return f"The tool '{tool.name}' on '{tool.server}' could not be run: {text}"


def _tail(errlog: IO[str]) -> str:
    try:
        errlog.flush()
        errlog.seek(0, 2)
        size = errlog.tell()
        errlog.seek(max(0, size - STDERR_TAIL_CHARS * 2))
        text = errlog.read()
    except (OSError, ValueError):
        return ""
    return redact_secrets(text.strip()[-STDERR_TAIL_CHARS:])
