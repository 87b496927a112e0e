"""The tools adapter: MCP servers (core/tools) for the window. It owns the tool settings file
and the host, starts the servers in the background once the window is up (start-up never waits
for them), reports a failing server once, and turns the host's state changes into signals."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from desktop_chat.core.config.secrets import Secrets
from desktop_chat.core.tools.config import ConfigError, ServerConfig, load_servers
from desktop_chat.core.tools.consent import ToolSettings, ToolSettingsFile
from desktop_chat.core.tools.host import ServerState, Status, ToolHost
from desktop_chat.core.tools.secrets import ToolSecrets
from desktop_chat.core.tools.toolbox import ToolBox

log = logging.getLogger("desktop_chat.tools")


class ToolService(QObject):
    state_changed = Signal(object)  # ServerState
    failed = Signal(str)  # a server failed: said once per failure, in words
    settings_changed = Signal()

    def __init__(self, loop: asyncio.AbstractEventLoop, data_dir: Path,
                 run_config: Path | None = None, parent: QObject | None = None,
                 secrets: Secrets | None = None) -> None:
        super().__init__(parent)
        self.file = ToolSettingsFile(data_dir)
        self._secrets = ToolSecrets(secrets) if secrets is not None else None
        self.settings = self.file.load()
        self.problems = list(self.settings.problems)
        self._filled = False  # secrets are looked up when the servers start
        # --mcp-config: servers for this run only, never written to tools.json
        self.run_servers: list[ServerConfig] = []
        if run_config is not None:
            try:
                self.run_servers = load_servers(run_config)
                for config in self.run_servers:
                    if self._secrets is not None:
                        self._secrets.redact(config)
            except ConfigError as exc:
                log.warning("--mcp-config: %s", exc)
                self.problems.append(f"The tool servers in {run_config} were not loaded: {exc}")
        self.host = ToolHost(loop, self._changed)
        self.box = ToolBox(self.host, lambda: self.settings, self.update_settings)
        self._reported: set[tuple[str, str]] = set()
        self._started = False

    @property
    def servers(self) -> list[ServerConfig]:
        saved = {s.name for s in self.settings.servers}
        return list(self.settings.servers) + [s for s in self.run_servers if s.name not in saved]

    def start(self) -> None:
        """Start the enabled servers in the background; returns at once."""
        if not self._started:
            self._started = True
            self._fill_secrets()
            self.host.start(self.servers)

    def _fill_secrets(self) -> None:
        if self._secrets is None or self._filled:
            return
        self._filled = True
        servers = []
        for config in self.settings.servers:
            filled, problems = self._secrets.fill(config)
            self._secrets.redact(filled)
            servers.append(filled)
            for problem in problems:
                self.failed.emit(problem)
        self.settings = dataclasses.replace(self.settings, servers=tuple(servers))

    def update_settings(self, settings: ToolSettings) -> None:
        """Keep changed settings (saved servers, remembered consents); running servers follow
        the new list."""
        self.settings = settings
        self._fill_secrets()  # before anything is written over the stored ones
        try:
            self.file.save(self._for_file(self.settings))
        except OSError as exc:
            log.error("could not save tools.json: %s", exc)
            self.failed.emit(f"The tool settings could not be saved ({exc.strerror or exc}); "
                             "they apply until the app closes.")
        if self._started:
            self.host.set_servers(self.servers)
        self.settings_changed.emit()

    def _for_file(self, settings: ToolSettings) -> ToolSettings:
        """What tools.json keeps: secrets go to the keychain, a mark stays in their place."""
        if self._secrets is None:
            return settings
        servers = []
        for config in settings.servers:
            self._secrets.redact(config)
            stashed, problems = self._secrets.stash(config)
            servers.append(stashed)
            for problem in problems:
                log.warning("%s", problem)
                self.failed.emit(problem)
        return dataclasses.replace(settings, servers=tuple(servers))

    def restart(self, name: str) -> None:
        self._reported = {r for r in self._reported if r[0] != name}
        self.host.restart(name)

    def _changed(self, state: ServerState) -> None:
        self.state_changed.emit(state)
        if state.status is Status.FAILED:
            key = (state.config.name, state.error)
            if key not in self._reported:
                self._reported.add(key)
                self.failed.emit(f"Tool server '{state.config.name}' failed: {state.error}")

    async def aclose(self) -> None:
        self.host.on_change = None
        await self.host.aclose()
