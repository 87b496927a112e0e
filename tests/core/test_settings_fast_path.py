"""The start-up reader of the settings (core/config/strict_json.py) against pydantic, the
reference: every file it accepts gives exactly pydantic's settings, it accepts the files the
app writes, and everything else goes to pydantic (which reads it or says why not)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from desktop_chat.core.config import strict_json
from desktop_chat.core.config.settings import SETTINGS_FILE, Settings, load, save

from .test_settings import CUSTOM

REFERENCE = TypeAdapter(Settings)
WRITTEN = REFERENCE.dump_python(CUSTOM, mode="json")
ODD_VALUES: list[Any] = ["", "x", "1", 0, 1, -3, 2.5, 1e400, True, False, None, [], ["a"], [1],
                         {}, {"a": "b"}, {"a": 1}, "chat_completions", "responses"]


def pydantic_reads(data: object) -> Settings | None:
    try:
        return REFERENCE.validate_json(json.dumps(data), strict=True)
    except (ValidationError, ValueError):
        return None


def fast_reads(data: object) -> Settings | None:
    try:
        return strict_json.read(Settings, data)
    except strict_json.Declined:
        return None


def variants() -> list[object]:
    """The written file with one value (top level, in a profile, in params, in a preset)
    replaced by values of every JSON type, or left out."""
    out: list[object] = [WRITTEN, {}, {"unknown": 1}]
    places: list[tuple[str, ...]] = [(name,) for name in WRITTEN]
    places += [("profiles", "0", name) for name in WRITTEN["profiles"][0]]
    places += [("params", name) for name in WRITTEN["params"]]
    places += [("prompt_presets", "0", name) for name in WRITTEN["prompt_presets"][0]]
    places += [("profiles", "1", "extra_headers", "X-Title")]
    for place in places:
        for value in [*ODD_VALUES, KeyError]:
            data = json.loads(json.dumps(WRITTEN))
            parent = data
            for step in place[:-1]:
                parent = parent[int(step)] if isinstance(parent, list) else parent[step]
            if value is KeyError:
                parent.pop(place[-1], None)
            else:
                parent[place[-1]] = value
            out.append(data)
    return out


@pytest.mark.parametrize("data", variants())
def test_whatever_the_fast_path_accepts_pydantic_reads_the_same(data: object) -> None:
    fast = fast_reads(data)
    if fast is not None:
        assert fast == pydantic_reads(data)


def test_the_files_the_app_writes_are_read_without_pydantic(tmp_path: Any) -> None:
    assert fast_reads(WRITTEN) == CUSTOM
    save(tmp_path, CUSTOM)
    assert fast_reads(json.loads((tmp_path / SETTINGS_FILE).read_text("utf-8"))) == CUSTOM
    assert fast_reads(REFERENCE.dump_python(Settings(), mode="json")) == Settings()


def test_what_the_fast_path_declines_is_still_read_or_refused_by_pydantic(tmp_path: Any) -> None:
    readable = {**WRITTEN, "font_size": 14.0}  # a whole float for an int: pydantic decides
    assert fast_reads(readable) is None
    (tmp_path / SETTINGS_FILE).write_text(json.dumps(readable), "utf-8")
    expected = pydantic_reads(readable)
    result = load(tmp_path)
    if expected is None:
        assert result.notice is not None and "damaged" in result.notice
    else:
        assert result.settings == expected.validated() and result.notice is None
    damaged = {**WRITTEN, "theme": 3}
    assert fast_reads(damaged) is None and pydantic_reads(damaged) is None
    (tmp_path / SETTINGS_FILE).write_text(json.dumps(damaged), "utf-8")
    assert "damaged" in (load(tmp_path).notice or "")


@pytest.mark.parametrize("data", [WRITTEN, {}, *variants()[3::7]])
def test_what_the_app_writes_is_what_pydantic_writes(data: object) -> None:
    settings = pydantic_reads(data)
    if settings is not None:
        assert strict_json.dump(settings) == REFERENCE.dump_python(settings, mode="json")
