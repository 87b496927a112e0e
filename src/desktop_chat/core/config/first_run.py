"""The ways to connect offered on first run, each turned into a new profile.

Pure functions over the settings: they pick a unique id, the models and the model to use;
storing the key and switching to the profile is the caller's job (`ui/connections.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from desktop_chat.core.config.providers import (
    OFFLINE,
    OPENAI,
    Preset,
    Profile,
    new_profile_id,
    preset,
)
from desktop_chat.core.config.settings import Settings, profile_for_url

NO_MODEL_LIST = "This server lists no models: type the model name in the Model box above."


@dataclass(frozen=True, slots=True)
class Choice:
    """A new profile to add and switch to; `key` goes to the keychain (None: no key), and
    `notice` is for the user once the profile is in use."""

    profile: Profile
    key: str | None = None
    notice: str | None = None


def openai_key(settings: Settings, key: str, models: Sequence[str]) -> Choice:
    """A checked OpenAI key and the models it lists."""
    return Choice(_from_preset(settings, preset(OPENAI), "OpenAI", models), key)


def local_server(settings: Settings, server: Preset, base_url: str,
                 models: Sequence[str]) -> Choice:
    """A server found on this computer: `server` is the preset it answered as."""
    profile = _from_preset(settings, server, server.label, models)
    return Choice(dataclasses.replace(profile, base_url=base_url))


def custom_server(settings: Settings, base_url: str, key: str | None,
                  models: Sequence[str]) -> Choice:
    """Any OpenAI-compatible server; one that lists no models takes a typed model name."""
    profile = profile_for_url(base_url, models[0] if models else "",
                              new_profile_id("server", taken_ids(settings)))
    profile = dataclasses.replace(profile, models=tuple(models), needs_key=bool(key), key_env="")
    return Choice(profile, key or None, None if models else NO_MODEL_LIST)


def offline(settings: Settings) -> Choice:
    """The built-in engine (with the demo model until a model file is picked)."""
    return Choice(_from_preset(settings, preset(OFFLINE), "Offline", []))


def with_active(settings: Settings, profile: Profile) -> Settings:
    """`settings` with `profile` added (or replaced) and chosen."""
    return dataclasses.replace(settings.with_profile(profile), active_profile=profile.id)


def taken_ids(settings: Settings) -> set[str]:
    return {p.id for p in settings.profiles}


def _from_preset(settings: Settings, source: Preset, name: str,
                 models: Sequence[str]) -> Profile:
    """A new profile from `source` with a unique id from `name`; it keeps the preset's model
    if the server lists it (or lists nothing), else takes the first listed."""
    profile = source.new_profile(new_profile_id(name, taken_ids(settings)))
    model = profile.model if profile.model in models or not models else models[0]
    return dataclasses.replace(profile, models=tuple(models), model=model)
