"""Typed settings with defaults in one place, stored as JSON in the data dir.

The API key is never part of the settings: it comes from the environment (and, later,
the OS keychain).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("desktop_chat.settings")

OPENAI_BASE_URL = "https://api.openai.com/v1"
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True, slots=True)
class Settings:
    base_url: str = OPENAI_BASE_URL
    model: str = "gpt-4o-mini"
    system_prompt: str = ""
    connect_timeout_s: float = 10.0
    # how long the server may stay silent (before the first byte, or between two chunks)
    read_timeout_s: float = 90.0
    rate_limit_retries: int = 2
    max_retry_wait_s: float = 30.0

    def validated(self) -> Settings:
        """A copy with out-of-range values replaced by the defaults."""
        default = Settings()
        fixes: dict[str, Any] = {}
        if not self.base_url.startswith(("http://", "https://")):
            fixes["base_url"] = default.base_url
        if not self.model.strip():
            fixes["model"] = default.model
        for name in ("connect_timeout_s", "read_timeout_s", "max_retry_wait_s"):
            if not 0 < getattr(self, name) <= 3600:
                fixes[name] = getattr(default, name)
        if not 0 <= self.rate_limit_retries <= 10:
            fixes["rate_limit_retries"] = default.rate_limit_retries
        if fixes:
            log.warning("settings: replaced invalid values for %s", sorted(fixes))
        return dataclasses.replace(self, **fixes)


@dataclass(frozen=True, slots=True)
class LoadResult:
    settings: Settings
    notice: str | None = None  # shown to the user when the file had to be replaced


def load(data_dir: Path) -> LoadResult:
    path = data_dir / SETTINGS_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LoadResult(Settings())
    except OSError as exc:
        log.error("settings: cannot read %s: %s", path, exc)
        return LoadResult(Settings(), f"Could not read the settings file ({exc}); using defaults.")
    except UnicodeDecodeError as exc:
        return _set_aside(path, exc)
    try:
        return LoadResult(_from_dict(json.loads(raw)).validated())
    except (ValueError, TypeError) as exc:
        return _set_aside(path, exc)


def _set_aside(path: Path, exc: Exception) -> LoadResult:
    """Keep a damaged file for the user (and us) to look at; start from defaults."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{SETTINGS_FILE}.corrupt-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{SETTINGS_FILE}.corrupt-{stamp}-{n}")
    os.replace(path, backup)
    log.error("settings: %s is corrupt (%s); moved to %s", path, exc, backup.name)
    return LoadResult(
        Settings(),
        f"The settings file was damaged and has been reset. The old file was kept as "
        f"{backup.name}.",
    )


def save(data_dir: Path, settings: Settings) -> None:
    """Write atomically, so a crash never leaves half a file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SETTINGS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(settings), indent=2), encoding="utf-8")
    os.replace(tmp, path)


def with_overrides(
    settings: Settings, environ: dict[str, str], base_url: str | None, model: str | None
) -> Settings:
    """Settings for this run: command line beats environment beats the file."""
    fixes: dict[str, Any] = {}
    if env_url := environ.get("OPENAI_BASE_URL", "").strip():
        fixes["base_url"] = env_url
    if base_url:
        fixes["base_url"] = base_url
    if model:
        fixes["model"] = model
    return dataclasses.replace(settings, **fixes).validated()


def _from_dict(data: object) -> Settings:
    if not isinstance(data, dict):
        raise TypeError("settings file does not hold a JSON object")
    known = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    for name, value in data.items():
        field = known.get(name)
        if field is None:
            log.info("settings: ignoring unknown key %r", name)
            continue
        expected = type(getattr(Settings(), name))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            raise TypeError(f"{name} should be {expected.__name__}, not {type(value).__name__}")
        values[name] = value
    return Settings(**values)


class SettingsFile:
    """The stored settings of one data dir; `update` saves at once."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        result = load(data_dir)
        self.settings = result.settings
        self.notice = result.notice

    def update(self, **changes: Any) -> None:
        self.settings = dataclasses.replace(self.settings, **changes)
        try:
            save(self.data_dir, self.settings)
        except OSError as exc:  # a full disk must not break the chat
            log.error("settings: cannot save: %s", exc)
