"""Secrets in MCP server settings — tokens in env vars, Authorization headers — go to the OS
keychain like API keys (core/config/secrets.py), never into tools.json: the file keeps
`MARK` in their place. Without a keychain a secret is kept for this session only, and the
user is told. Every such value is also handed to log redaction."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping

from desktop_chat.core.config.secrets import KeySource, Secrets, SecretsError
from desktop_chat.core.tools.config import ServerConfig

log = logging.getLogger("desktop_chat.tools")

MARK = "<in keychain>"
SECRET_NAME = re.compile(r"key|token|secret|passw|auth|bearer|cookie|credential|session",
                         re.IGNORECASE)


def is_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def ref(server: str, kind: str, name: str) -> str:
    return f"mcp:{server}:{kind}:{name}"


class ToolSecrets:
    def __init__(self, secrets: Secrets) -> None:
        self._secrets = secrets
        self._kept: dict[str, str] = {}  # ref -> value already stored (not stored again)

    def stash(self, config: ServerConfig) -> tuple[ServerConfig, list[str]]:
        """The config as tools.json keeps it (secrets replaced by MARK, the values kept in
        the keychain), and what could not go there, in words."""
        problems: list[str] = []
        env = self._stash(config.name, "env", config.env, problems)
        headers = self._stash(config.name, "header", config.headers, problems)
        return dataclasses.replace(config, env=env, headers=headers), problems

    def fill(self, config: ServerConfig) -> tuple[ServerConfig, list[str]]:
        """The config with its secrets looked up; what is missing, in words."""
        problems: list[str] = []
        env = self._fill(config.name, "env", config.env, problems)
        headers = self._fill(config.name, "header", config.headers, problems)
        return dataclasses.replace(config, env=env, headers=headers), problems

    def redact(self, config: ServerConfig) -> None:
        """Values that look secret never reach the log, wherever they came from."""
        for values in (config.env, config.headers):
            for name, value in values.items():
                if is_secret(name) and value and value != MARK:
                    self._secrets.redact(value)
                    self._secrets.redact(value.removeprefix("Bearer ").strip())

    def _stash(self, server: str, kind: str, values: Mapping[str, str],
               problems: list[str]) -> dict[str, str]:
        out = dict(values)
        for name, value in values.items():
            if not is_secret(name) or not value or value == MARK:
                continue
            key = ref(server, kind, name)
            out[name] = MARK
            if self._kept.get(key) == value:
                continue
            self._kept[key] = value
            try:
                self._secrets.store(key, value, KeySource.KEYCHAIN)
            except SecretsError as exc:
                self._secrets.store(key, value, KeySource.SESSION)
                problems.append(f"{name} of '{server}' is kept for this session only: "
                                f"{exc.message}")
        return out

    def _fill(self, server: str, kind: str, values: Mapping[str, str],
              problems: list[str]) -> dict[str, str]:
        out = dict(values)
        for name, value in values.items():
            if value != MARK:
                continue
            found = self._secrets.get_ref(ref(server, kind, name))
            if found is None:
                problems.append(f"The {name} of tool server '{server}' is not in the keychain "
                                "any more: enter it again in Settings → Tools.")
                out[name] = ""
            else:
                out[name] = self._kept[ref(server, kind, name)] = found
        return out
