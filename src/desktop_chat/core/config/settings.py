"""Typed settings with defaults in one place, stored as JSON in the data dir.

API keys are never part of the settings: a profile names its key (`Profile.key_ref`) and
`core/config/secrets.py` finds it. The file is read strictly with pydantic over the same dataclasses
the app uses (at start-up by `strict_json`, which gives the same result without importing
pydantic, and hands anything unusual to pydantic): wrong types mean a damaged file (moved
aside); out-of-range values are replaced by their defaults. Run overrides (command line,
environment) are kept apart from the file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pydantic import TypeAdapter

from desktop_chat.core.config import strict_json
from desktop_chat.core.config.providers import (
    OPENAI,
    PRESETS,
    GenerationParams,
    Profile,
    PromptPreset,
    ReasoningEffort,
    new_profile_id,
    preset,
)

log = logging.getLogger("desktop_chat.settings")

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
SETTINGS_FILE = "settings.json"
RUN_PROFILE_ID = "command-line"  # the profile `--base-url` / OPENAI_BASE_URL make; never saved
THEMES = ("system", "light", "dark")
PROXY_MODES = ("system", "none", "manual")  # none: no proxy at all, not even the system's
MIN_FONT_SIZE, MAX_FONT_SIZE = 6, 72  # pt; 0 means the system's size


@dataclass(frozen=True, slots=True)
class Settings:
    profiles: tuple[Profile, ...] = ()
    active_profile: str = ""  # a profile id; empty or unknown: the first profile
    system_prompt: str = ""
    params: GenerationParams = field(default_factory=GenerationParams)
    prompt_presets: tuple[PromptPreset, ...] = ()
    font_size: int = 0
    theme: str = "system"
    proxy_mode: str = "system"
    proxy_url: str = ""  # used when proxy_mode is "manual"
    plaintext_keys_accepted: bool = False  # the user accepted the warning about plain text
    connect_timeout_s: float = 10.0
    # how long the server may stay silent (before the first byte, or between two chunks)
    read_timeout_s: float = 90.0
    rate_limit_retries: int = 2
    max_retry_wait_s: float = 30.0
    # Documents attached to a conversation may take this share of the model's context window
    # per prompt: sent whole when they fit, else their best passages (core/chat/documents.py).
    document_share: float = 0.5

    def profile(self, profile_id: str) -> Profile | None:
        return next((p for p in self.profiles if p.id == profile_id), None)

    def active(self) -> Profile | None:
        """The profile new conversations use: the chosen one, else the first one."""
        return self.profile(self.active_profile) or next(iter(self.profiles), None)

    def with_profile(self, profile: Profile) -> Settings:
        """Replaces the profile with the same id in place, or adds it at the end."""
        profiles = tuple(profile if p.id == profile.id else p for p in self.profiles)
        missing = self.profile(profile.id) is None
        return dataclasses.replace(self, profiles=(*profiles, profile) if missing else profiles)

    def without_profile(self, profile_id: str) -> Settings:
        profiles = tuple(p for p in self.profiles if p.id != profile_id)
        active = "" if self.active_profile == profile_id else self.active_profile
        return dataclasses.replace(self, profiles=profiles, active_profile=active)

    def proxy(self) -> str | None:
        """As `Endpoint.proxy_url` takes it: the manual URL, "" for none, None for the system's."""
        return {"manual": self.proxy_url or None, "none": ""}.get(self.proxy_mode)

    def validated(self) -> Settings:
        """A copy with out-of-range values replaced by the defaults (and a log line)."""
        fixes = {name: getattr(Settings(), name) for name, ok in _CHECKS.items()
                 if not ok(getattr(self, name))}
        if self.proxy_mode == "manual" and not is_http_url(self.proxy_url):
            fixes["proxy_mode"] = "system"
        fixed = list(fixes)
        nested = {
            "params": _valid_params(self.params, "params", fixed),
            "prompt_presets": _valid_presets(self.prompt_presets, fixed),
            "profiles": _valid_profiles(self.profiles, fixed),
        }
        fixes |= {name: value for name, value in nested.items() if value != getattr(self, name)}
        if self.active_profile and self.active_profile not in {p.id for p in nested["profiles"]}:
            fixes["active_profile"] = ""
            fixed.append("active_profile")
        if fixed:
            log.warning("settings: replaced invalid values for %s", sorted(fixed))
        return dataclasses.replace(self, **fixes)


_CHECKS: dict[str, Callable[[Any], bool]] = {
    **dict.fromkeys(("connect_timeout_s", "read_timeout_s", "max_retry_wait_s"),
                    lambda v: 0 < v <= 3600),
    "rate_limit_retries": lambda v: 0 <= v <= 10,
    "document_share": lambda v: 0.05 <= v <= 0.9,
    "font_size": lambda v: v == 0 or MIN_FONT_SIZE <= v <= MAX_FONT_SIZE,
    "theme": lambda v: v in THEMES,
    "proxy_mode": lambda v: v in PROXY_MODES,
}


def is_http_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def proxy_problem(url: str) -> str | None:
    """None, or what is wrong with a manual proxy URL the user typed."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        port = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port:
        return "The proxy must look like http://host:port (or https://host:port)."
    return None


_PARAM_CHECKS: dict[str, Callable[[Any], bool]] = {
    "temperature": lambda v: 0 <= v <= 2, "top_p": lambda v: 0 <= v <= 1,
    "max_tokens": lambda v: v > 0, "reasoning_effort": lambda v: v in set(ReasoningEffort),
}


def _valid_params(params: GenerationParams, where: str, fixed: list[str]) -> GenerationParams:
    fixes = {name: None for name, ok in _PARAM_CHECKS.items()
             if getattr(params, name) is not None and not ok(getattr(params, name))}
    fixed += [f"{where}.{name}" for name in fixes]
    return dataclasses.replace(params, **fixes) if fixes else params


def _valid_presets(presets: tuple[PromptPreset, ...], fixed: list[str]
                   ) -> tuple[PromptPreset, ...]:
    """Unnamed presets cannot be picked from a list: they are dropped."""
    named = tuple(p for p in presets if p.name.strip())
    fixed += ["prompt_presets (unnamed)"] * (len(named) < len(presets))
    return tuple(dataclasses.replace(p, params=_valid_params(p.params, f"prompt_presets.{p.name}",
                                                             fixed)) for p in named)


def _valid_profiles(profiles: tuple[Profile, ...], fixed: list[str]) -> tuple[Profile, ...]:
    """Each profile with a unique id, a name, a known preset and sane numbers."""
    kept: list[Profile] = []
    for profile in profiles:
        taken = {p.id for p in kept}
        fixes: dict[str, Any] = {}
        if profile.preset not in PRESETS:
            fixes["preset"] = "custom"
        base = preset(fixes.get("preset", profile.preset))
        if not profile.name.strip():
            fixes["name"] = base.label
        if not profile.id.strip() or profile.id in taken:
            fixes["id"] = new_profile_id(fixes.get("name", profile.name), taken)
        if profile.base_url and not is_http_url(profile.base_url):
            fixes["base_url"] = base.base_url
        fixes |= {name: 0.0 for name in ("input_price", "output_price")
                  if not 0 <= getattr(profile, name) < math.inf}  # NaN fails too
        if profile.context_window < 0:
            fixes["context_window"] = 0
        fixed += [f"profiles.{profile.id}.{name}" for name in fixes]
        kept.append(dataclasses.replace(profile, **fixes))
    return tuple(kept)


def profile_for_url(url: str, model: str, profile_id: str, name: str = "") -> Profile:
    """A profile for a bare base URL (a 0.1 settings file, `--base-url`): the preset whose URL
    it is, else "custom". The key comes from OPENAI_API_KEY, as it always did."""
    url = url.strip()
    match = next((p for p in PRESETS.values() if p.base_url and same_url(p.base_url, url)), None)
    base = match or preset("custom")
    profile = base.new_profile(profile_id, name or (match.label if match else
                                                    urlsplit(url).netloc or url))
    return dataclasses.replace(profile, base_url=url, model=model or profile.model,
                               key_env="OPENAI_API_KEY")


def same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


@cache
def _adapter() -> TypeAdapter[Settings]:
    """pydantic's reader and writer of the settings: built on first use, not at start-up
    (importing what it needs and building it costs ~90 ms; `strict_json` reads a usual
    file and writes every file)."""
    from pydantic import TypeAdapter

    return TypeAdapter(Settings)


@dataclass(frozen=True, slots=True)
class LoadResult:
    settings: Settings
    notice: str | None = None  # shown to the user when the file had to be replaced


def load(data_dir: Path) -> LoadResult:
    path = data_dir / SETTINGS_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # none yet (or no folder: said elsewhere)
        return LoadResult(Settings())
    except OSError as exc:
        log.error("settings: cannot read %s: %s", path, exc)
        return LoadResult(Settings(), f"Could not read the settings file ({exc}); using defaults.")
    except UnicodeDecodeError as exc:
        return _set_aside(path, exc)
    try:
        return LoadResult(parse(raw).validated())
    except (ValueError, TypeError, RecursionError) as exc:  # ValidationError is a ValueError
        return _set_aside(path, exc)


def parse(raw: str) -> Settings:
    """The settings a file's text holds, strictly typed (an int is fine for a float; a string
    is not fine for a number). Raises ValueError / TypeError when it holds something else."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise TypeError("settings file does not hold a JSON object")
    data = _migrated(data)
    for name in sorted(data.keys() - {f.name for f in dataclasses.fields(Settings)}):
        log.info("settings: ignoring unknown key %r", name)
    try:
        return strict_json.read(Settings, data)
    except strict_json.Declined as declined:  # pydantic reads it after all, or says why not
        log.debug("settings: read by pydantic (%s)", declined)
    return _adapter().validate_json(json.dumps(data), strict=True)


def _migrated(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0.1 kept one server (`base_url`, `model`) at the top level: it becomes the
    first profile, so an upgrade keeps talking to the same server."""
    legacy = {name: data.pop(name) for name in ("base_url", "model") if name in data}
    if not legacy or "profiles" in data:
        if legacy:
            log.info("settings: ignoring old keys %s next to profiles", sorted(legacy))
        return data
    if not all(isinstance(value, str) for value in legacy.values()):
        raise TypeError(f"the old settings {sorted(legacy)} should be strings")
    url = legacy.get("base_url", OPENAI_BASE_URL).strip()
    if not is_http_url(url):
        log.warning("settings: replaced invalid old base_url %r by %s", url, OPENAI_BASE_URL)
        url = OPENAI_BASE_URL
    model = legacy.get("model", "").strip() or DEFAULT_MODEL
    profile = profile_for_url(url, model, "")
    profile = dataclasses.replace(profile, id=new_profile_id(profile.name, set()))
    log.info("settings: moved the old server %s into profile %r", url, profile.id)
    as_json = _adapter().dump_python(Settings(profiles=(profile,)), mode="json")
    return {**data, "profiles": as_json["profiles"], "active_profile": profile.id}


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
    """Atomically, so a crash never leaves half a file; never with the run-only profile."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SETTINGS_FILE
    tmp = path.with_suffix(".tmp")
    data = strict_json.dump(settings.without_profile(RUN_PROFILE_ID))
    with tmp.open("w", encoding="utf-8") as file:
        file.write(json.dumps(data, indent=2))
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class RunOverrides:
    """What this run uses without storing it: the command line and the environment."""

    profile: Profile | None = None  # used this run, never written (RUN_PROFILE_ID)
    suggested: Profile | None = None  # first run with OPENAI_API_KEY; written once changed
    active: str | None = None  # the profile selected for this run
    model: str | None = None  # `--model`: the active profile's model, for this run

    def apply(self, stored: Settings) -> Settings:
        settings = stored
        for extra in (self.profile, self.suggested):
            if extra is not None and settings.profile(extra.id) is None:
                settings = settings.with_profile(extra)
        if self.active and settings.profile(self.active):
            settings = dataclasses.replace(settings, active_profile=self.active)
        if self.model and (active := settings.active()) is not None:
            settings = settings.with_profile(dataclasses.replace(active, model=self.model))
        return settings


def run_overrides(
    stored: Settings, environ: Mapping[str, str], base_url: str | None, model: str | None
) -> RunOverrides:
    """Command line beats environment beats the file. A base URL selects the stored profile
    with that URL, else a run-only one; with no profile at all, OPENAI_API_KEY alone makes an
    OpenAI profile so that the first run just works."""
    url = (base_url or "").strip() or environ.get("OPENAI_BASE_URL", "").strip()
    model = (model or "").strip() or None
    if url and not is_http_url(url):
        log.warning("settings: ignoring base URL %r: it is not an http(s) URL", url)
    elif url:
        same = next((p for p in stored.profiles if same_url(p.base_url, url)), None)
        if same is not None:
            return RunOverrides(active=same.id, model=model)
        run = profile_for_url(url, model or "", RUN_PROFILE_ID, name="Command line")
        return RunOverrides(profile=run, active=run.id)
    if not stored.profiles and environ.get("OPENAI_API_KEY", "").strip():
        first = PRESETS[OPENAI].new_profile(OPENAI)
        return RunOverrides(suggested=first, active=first.id, model=model)
    return RunOverrides(model=model)


class SettingsFile:
    """The stored settings of one data dir plus this run's overrides, kept apart: `settings`
    is what the app uses; every change saves at once, and only what the user changed."""

    def __init__(self, data_dir: Path, environ: Mapping[str, str] | None = None,
                 base_url: str | None = None, model: str | None = None) -> None:
        self.data_dir = data_dir
        result = load(data_dir)
        self.stored = result.settings
        self.notice = result.notice
        self.overrides = run_overrides(self.stored, environ or {}, base_url, model)

    @property
    def settings(self) -> Settings:
        return self.overrides.apply(self.stored)

    def use_run_profile(self, profile: Profile) -> None:
        """Use `profile` for this run only (e.g. `--gguf`), without writing it."""
        run = dataclasses.replace(profile, id=RUN_PROFILE_ID)
        self.overrides = RunOverrides(profile=run, active=run.id)

    def update(self, **changes: Any) -> None:
        self.replace(dataclasses.replace(self.settings, **changes))

    def update_profile(self, profile_id: str, **changes: Any) -> None:
        """E.g. remember the model picked, or the model list, for one profile."""
        profile = self.settings.profile(profile_id)
        if profile is None:
            log.warning("settings: no profile %r to update", profile_id)
            return
        self.replace(self.settings.with_profile(dataclasses.replace(profile, **changes)))

    def replace(self, settings: Settings) -> None:
        """Take `settings` (this run's settings, edited) and store what was changed; what the
        run overrides and the user left alone stays as stored."""
        self.stored, self.overrides = _split(settings.validated(), self.settings, self.stored,
                                             self.overrides)
        try:
            save(self.data_dir, self.stored)
        except OSError as exc:  # a full disk must not break the chat
            log.error("settings: cannot save: %s", exc)


def _split(
    new: Settings, shown: Settings, stored: Settings, run: RunOverrides
) -> tuple[Settings, RunOverrides]:
    """`new` = `shown` (stored + run) with the user's changes: the new stored settings and
    the run overrides still in force."""
    overridden = shown.active_profile if run.model else None
    keep: list[Profile] = []
    for profile in new.profiles:
        before = shown.profile(profile.id)
        if run.profile is not None and profile.id == run.profile.id:
            run = dataclasses.replace(run, profile=profile)
            continue
        if profile == before:  # untouched: as stored (an untouched suggestion is not written)
            if (kept := stored.profile(profile.id)) is not None:
                keep.append(kept)
            continue
        if profile.id == overridden and (kept := stored.profile(profile.id)) is not None:
            if profile.model == run.model:
                profile = dataclasses.replace(profile, model=kept.model)
            else:
                run = dataclasses.replace(run, model=None)
        if run.suggested is not None and profile.id == run.suggested.id:
            run = dataclasses.replace(run, suggested=None)
        keep.append(profile)
    ids = {p.id for p in new.profiles}  # what the user removed is gone for this run too
    run = dataclasses.replace(
        run, profile=run.profile if run.profile and run.profile.id in ids else None,
        suggested=run.suggested if run.suggested and run.suggested.id in ids else None)
    active = stored.active_profile
    if new.active_profile != shown.active_profile:  # the user chose: that beats the run's pick
        chose_run = run.profile is not None and new.active_profile == run.profile.id
        run = dataclasses.replace(run, active=new.active_profile if chose_run else None, model=None)
        active = active if chose_run else new.active_profile
    if run.active is not None and run.active not in ids:
        run = dataclasses.replace(run, active=None, model=None)
    result = dataclasses.replace(new, profiles=tuple(keep), active_profile=active)
    return result.validated(), run
