"""MCP server configuration: the typed record, and the de-facto standard `{"mcpServers": {...}}`
JSON (Claude desktop, Cursor, ...) read and written.

An entry with `command` is a stdio server (`args`, `env`, `cwd`); one with `url` is remote:
Streamable HTTP unless its `type`/`transport` says "sse" (the older transport) or its URL ends
in `/sse`. Our own additions (`disabled`, `trusted`, `timeout`) ride along as extra keys, which
other clients ignore.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CALL_TIMEOUT_S = 60.0
DEFAULT_STEP_LIMIT = 8
_NAME = re.compile(r"[^A-Za-z0-9_-]+")


class Transport(enum.StrEnum):
    STDIO = "stdio"
    HTTP = "http"  # Streamable HTTP
    SSE = "sse"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    name: str
    transport: Transport = Transport.STDIO
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = ""
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    trusted: bool = False  # every tool runs without asking: only ever set by the user
    timeout_s: float = DEFAULT_CALL_TIMEOUT_S

    @property
    def where(self) -> str:
        """What the server is, in a few words (a command line or a URL)."""
        if self.transport is Transport.STDIO:
            return " ".join([self.command, *self.args])
        return self.url

    def to_json(self) -> dict[str, Any]:
        """The entry as `mcpServers` writes it."""
        out: dict[str, Any]
        if self.transport is Transport.STDIO:
            out = {"command": self.command, "args": list(self.args)}
            if self.env:
                out["env"] = dict(self.env)
            if self.cwd:
                out["cwd"] = self.cwd
        else:
            out = {"type": "sse" if self.transport is Transport.SSE else "http", "url": self.url}
            if self.headers:
                out["headers"] = dict(self.headers)
        if not self.enabled:
            out["disabled"] = True
        if self.trusted:
            out["trusted"] = True
        if self.timeout_s != DEFAULT_CALL_TIMEOUT_S:
            out["timeout"] = self.timeout_s
        return out


def server_from_json(name: str, entry: object) -> ServerConfig:
    """One `mcpServers` entry; raises ConfigError naming the server and the field at fault."""
    if not isinstance(entry, Mapping):
        raise ConfigError(f"Server '{name}': its entry must be an object with a 'command' "
                          "or a 'url'.")
    kind = str(entry.get("type") or entry.get("transport") or "").lower().replace("_", "-")
    url, command = entry.get("url") or entry.get("serverUrl"), entry.get("command")
    common = {"name": name, "enabled": not bool(entry.get("disabled", False)),
              "trusted": entry.get("trusted") is True,
              "timeout_s": _timeout(name, entry.get("timeout", DEFAULT_CALL_TIMEOUT_S))}
    if isinstance(command, str) and command.strip():
        return ServerConfig(transport=Transport.STDIO, command=command.strip(),
                            args=tuple(_strings(name, "args", entry.get("args", []))),
                            env=_mapping(name, "env", entry.get("env", {})),
                            cwd=str(entry.get("cwd") or ""), **common)
    if isinstance(url, str) and url.strip():
        url = url.strip()
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"Server '{name}': url must start with http:// or https://.")
        sse = kind == "sse" or (not kind and url.rstrip("/").endswith("/sse"))
        return ServerConfig(transport=Transport.SSE if sse else Transport.HTTP, url=url,
                            headers=_mapping(name, "headers", entry.get("headers", {})),
                            **common)
    raise ConfigError(f"Server '{name}' has neither a 'command' (a program to start) nor a "
                      "'url' (a remote server).")


def parse_servers(text: str) -> list[ServerConfig]:
    """The servers of a pasted or loaded `{"mcpServers": {...}}` JSON (a bare object of
    servers is accepted too); raises ConfigError with what to fix."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"This is not valid JSON: {exc}.") from None
    if isinstance(data, Mapping) and isinstance(data.get("mcpServers"), Mapping):
        data = data["mcpServers"]
    elif isinstance(data, Mapping) and "mcpServers" in data:
        raise ConfigError("'mcpServers' must be an object of servers by name.")
    if not isinstance(data, Mapping):
        raise ConfigError('Expected {"mcpServers": {"name": {...}, ...}}.')
    return [server_from_json(str(name), entry) for name, entry in data.items()]


def load_servers(path: Path) -> list[ServerConfig]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Could not read {path}: {exc.strerror or exc}.") from None
    try:
        return parse_servers(text)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None


def servers_json(servers: list[ServerConfig]) -> str:
    """The `{"mcpServers": {...}}` JSON other clients read."""
    return json.dumps({"mcpServers": {s.name: s.to_json() for s in servers}}, indent=2)


def function_name(server: str, tool: str) -> str:
    """The name a model calls a server's tool by: unique across servers, within what every API
    accepts (`^[a-zA-Z0-9_-]{1,64}$`)."""
    name = f"{_NAME.sub('_', server)}__{_NAME.sub('_', tool)}"
    return name[:64]


def _timeout(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"Server '{name}': timeout must be a positive number of seconds.")
    return float(value)


def _strings(name: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ConfigError(f"Server '{name}': '{key}' must be a list of strings.")
    return [str(v) for v in value]


def _mapping(name: str, key: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"Server '{name}': '{key}' must be an object of names and values.")
    return {str(k): str(v) for k, v in value.items()}
