"""Who may run what: the tool settings the user chose, and the consent rule.

A tool runs without asking only when the user said so: its server is marked trusted (only
ever explicitly), the user chose "Always allow this tool" for it (per server and tool; listed
and revocable), or the server flags it read-only and the user opted in to auto-allow those.
Everything else waits for the user's answer in the window.

Kept in `tools.json` in the data folder with the configured servers (as `mcpServers`, so the
file is also what other clients read). Secrets in the servers' env and headers are not written
here: `SECRET_MARK` stands in for them and the values live in the keychain.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from desktop_chat.core.tools.config import (
    DEFAULT_STEP_LIMIT,
    ConfigError,
    ServerConfig,
    server_from_json,
)

log = logging.getLogger("desktop_chat.tools")

FILE_NAME = "tools.json"
MAX_STEP_LIMIT = 50


class Decision(enum.Enum):
    ALLOW_ONCE = "allow_once"
    ALLOW_ALWAYS = "allow_always"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class ToolSettings:
    servers: tuple[ServerConfig, ...] = ()
    always_allowed: frozenset[tuple[str, str]] = frozenset()  # (server, tool)
    auto_allow_read_only: bool = False
    step_limit: int = DEFAULT_STEP_LIMIT  # model requests per turn, tool steps included
    problems: tuple[str, ...] = field(default=(), compare=False)  # what could not be read

    def needs_consent(self, config: ServerConfig | None, tool: str, read_only: bool) -> bool:
        if config is not None and config.trusted:
            return False
        if config is not None and (config.name, tool) in self.always_allowed:
            return False
        return not (read_only and self.auto_allow_read_only)

    def allow_always(self, server: str, tool: str) -> ToolSettings:
        return replace(self, always_allowed=self.always_allowed | {(server, tool)})

    def revoke(self, server: str, tool: str) -> ToolSettings:
        return replace(self, always_allowed=self.always_allowed - {(server, tool)})

    def to_json(self) -> dict[str, Any]:
        allowed: dict[str, list[str]] = {}
        for server, tool in sorted(self.always_allowed):
            allowed.setdefault(server, []).append(tool)
        return {"mcpServers": {s.name: s.to_json() for s in self.servers},
                "alwaysAllow": allowed, "autoAllowReadOnly": self.auto_allow_read_only,
                "stepLimit": self.step_limit}


def settings_from_json(data: object) -> ToolSettings:
    """Lenient: a damaged entry is left out and named in `problems`, the rest is kept."""
    if not isinstance(data, Mapping):
        return ToolSettings(problems=("tools.json is not a JSON object; it was ignored.",))
    problems: list[str] = []
    servers: list[ServerConfig] = []
    raw_servers = data.get("mcpServers", {})
    for name, entry in (raw_servers.items() if isinstance(raw_servers, Mapping) else ()):
        try:
            servers.append(server_from_json(str(name), entry))
        except ConfigError as exc:
            problems.append(str(exc))
    allowed: set[tuple[str, str]] = set()
    raw_allowed = data.get("alwaysAllow", {})
    for server, tools in (raw_allowed.items() if isinstance(raw_allowed, Mapping) else ()):
        if isinstance(tools, list):
            allowed |= {(str(server), str(t)) for t in tools if isinstance(t, str)}
    limit = data.get("stepLimit", DEFAULT_STEP_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_STEP_LIMIT:
        problems.append(f"stepLimit must be 1 to {MAX_STEP_LIMIT}; the default is used.")
        limit = DEFAULT_STEP_LIMIT
    return ToolSettings(tuple(servers), frozenset(allowed),
                        data.get("autoAllowReadOnly") is True, limit, tuple(problems))


class ToolSettingsFile:
    """`tools.json` in the data folder: read once, written whole (atomically) on change."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME

    def load(self) -> ToolSettings:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return ToolSettings()  # a data folder that cannot exist: the app says so itself
        except OSError as exc:
            return ToolSettings(problems=(f"Could not read {self.path}: {exc.strerror}.",))
        try:
            data = json.loads(text)
        except ValueError as exc:
            return ToolSettings(problems=(f"{self.path.name} is not valid JSON ({exc}); the "
                                          "tool settings were not loaded.",))
        settings = settings_from_json(data)
        for problem in settings.problems:
            log.warning("tools.json: %s", problem)
        return settings

    def save(self, settings: ToolSettings) -> None:
        """Raises OSError when the file cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tools-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(settings.to_json(), out, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
