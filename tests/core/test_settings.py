"""Typed settings: defaults, load/validate/save, a damaged file moved aside, overrides."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from desktop_chat.core import settings as settings_mod
from desktop_chat.core.settings import (
    OPENAI_BASE_URL,
    SETTINGS_FILE,
    LoadResult,
    Settings,
    SettingsFile,
    load,
    save,
    with_overrides,
)

CUSTOM = Settings(
    base_url="http://127.0.0.1:11434/v1",
    model="llama3.2",
    system_prompt="Réponds en français ✓\nsur deux lignes",
    connect_timeout_s=5.0,
    read_timeout_s=30.5,
    rate_limit_retries=0,
    max_retry_wait_s=10.0,
)


def write(data_dir: Path, content: str | bytes) -> Path:
    path = data_dir / SETTINGS_FILE
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def backups(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob(f"{SETTINGS_FILE}.corrupt-*"))


def test_defaults() -> None:
    assert Settings() == Settings(
        base_url=OPENAI_BASE_URL,
        model="gpt-4o-mini",
        system_prompt="",
        connect_timeout_s=10.0,
        read_timeout_s=90.0,
        rate_limit_retries=2,
        max_retry_wait_s=30.0,
    )
    assert OPENAI_BASE_URL == "https://api.openai.com/v1"
    assert Settings().validated() == Settings()
    assert "api_key" not in {f.name for f in dataclasses.fields(Settings)}


def test_load_missing_file(tmp_path: Path) -> None:
    assert load(tmp_path) == LoadResult(Settings(), None)
    assert load(tmp_path / "does" / "not" / "exist") == LoadResult(Settings(), None)
    assert list(tmp_path.iterdir()) == []  # loading creates nothing


def test_save_load_round_trip(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "dir"
    save(data_dir, CUSTOM)
    assert load(data_dir) == LoadResult(CUSTOM, None)
    assert json.loads((data_dir / SETTINGS_FILE).read_text("utf-8")) == dataclasses.asdict(CUSTOM)
    assert sorted(p.name for p in data_dir.iterdir()) == [SETTINGS_FILE]  # no temp file left


def test_save_replaces_the_previous_file(tmp_path: Path) -> None:
    save(tmp_path, CUSTOM)
    save(tmp_path, Settings(model="other"))
    assert load(tmp_path).settings == Settings(model="other")


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        '{"model": "a",',
        "[1, 2, 3]",
        '"just a string"',
        "null",
    ],
    ids=["garbage", "empty", "truncated", "list", "string", "null"],
)
def test_corrupt_file_is_moved_aside(tmp_path: Path, content: str) -> None:
    path = write(tmp_path, content)
    result = load(tmp_path)
    assert result.settings == Settings()
    [backup] = backups(tmp_path)
    assert re.fullmatch(rf"{re.escape(SETTINGS_FILE)}\.corrupt-\d{{8}}-\d{{6}}", backup.name)
    assert backup.read_text("utf-8") == content  # the old file is kept as it was
    assert not path.exists()
    assert result.notice == (
        "The settings file was damaged and has been reset. The old file was kept as "
        f"{backup.name}."
    )
    assert load(tmp_path) == LoadResult(Settings(), None)  # and the next start is quiet


@pytest.mark.parametrize(
    "data",
    [
        {"model": 5},
        {"read_timeout_s": "fast"},
        {"rate_limit_retries": True},
        {"rate_limit_retries": 2.5},
        {"connect_timeout_s": None},
        {"system_prompt": ["a", "b"]},
        {"base_url": {"url": "http://x"}},
    ],
    ids=["int-for-str", "str-for-float", "bool-for-int", "float-for-int", "null", "list",
         "object"],
)
def test_wrong_types_are_treated_as_corrupt(tmp_path: Path, data: dict[str, Any]) -> None:
    raw = json.dumps({"model": "kept?", **data})
    write(tmp_path, raw)
    result = load(tmp_path)
    assert result.settings == Settings()
    assert result.notice is not None and "damaged" in result.notice
    [backup] = backups(tmp_path)
    assert backup.read_text("utf-8") == raw


def test_file_that_is_not_utf8_is_treated_as_corrupt(tmp_path: Path) -> None:
    """A settings file saved in Latin-1 (or garbled on disk) must not crash the start."""
    raw = '{"model": "llama", "system_prompt": "café"}'.encode("latin-1")
    write(tmp_path, raw)
    result = load(tmp_path)  # raises UnicodeDecodeError today: not caught by load()
    assert result.settings == Settings()
    assert result.notice is not None and "damaged" in result.notice
    [backup] = backups(tmp_path)
    assert backup.read_bytes() == raw


def test_int_is_accepted_for_float(tmp_path: Path) -> None:
    write(tmp_path, json.dumps({"read_timeout_s": 30, "max_retry_wait_s": 5}))
    result = load(tmp_path)
    assert result == LoadResult(Settings(read_timeout_s=30.0, max_retry_wait_s=5.0), None)
    assert isinstance(result.settings.read_timeout_s, float)


def test_invalid_values_are_replaced_by_defaults(tmp_path: Path) -> None:
    data = {
        "base_url": "localhost:8080/v1",
        "model": "   ",
        "system_prompt": "kept",
        "connect_timeout_s": 0,
        "read_timeout_s": -1.0,
        "max_retry_wait_s": 99999.0,
        "rate_limit_retries": 11,
    }
    write(tmp_path, json.dumps(data))
    result = load(tmp_path)
    assert result == LoadResult(Settings(system_prompt="kept"), None)
    assert backups(tmp_path) == []  # valid JSON of the right types: nothing moved aside


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"base_url": "ftp://example.com"}, {"base_url": OPENAI_BASE_URL}),
        ({"base_url": "http://localhost:1234/v1"}, {"base_url": "http://localhost:1234/v1"}),
        ({"model": ""}, {"model": "gpt-4o-mini"}),
        ({"connect_timeout_s": 3600.0}, {"connect_timeout_s": 3600.0}),
        ({"connect_timeout_s": 3600.5}, {"connect_timeout_s": 10.0}),
        ({"read_timeout_s": float("nan")}, {"read_timeout_s": 90.0}),
        ({"max_retry_wait_s": float("inf")}, {"max_retry_wait_s": 30.0}),
        ({"rate_limit_retries": 0}, {"rate_limit_retries": 0}),
        ({"rate_limit_retries": 10}, {"rate_limit_retries": 10}),
        ({"rate_limit_retries": -1}, {"rate_limit_retries": 2}),
    ],
)
def test_validated(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    fixed = dataclasses.replace(CUSTOM, **changes).validated()
    assert fixed == dataclasses.replace(CUSTOM, **expected)


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, json.dumps({"model": "mine", "theme": "dark", "api_key": "sk-abc"}))
    assert load(tmp_path) == LoadResult(Settings(model="mine"), None)
    assert backups(tmp_path) == []


# -- overrides -------------------------------------------------------------------------------

FILE = Settings(base_url="http://file.example/v1", model="file-model")


@pytest.mark.parametrize(
    ("environ", "cli_url", "cli_model", "url", "model"),
    [
        ({}, None, None, "http://file.example/v1", "file-model"),
        ({"OPENAI_BASE_URL": "http://env.example/v1"}, None, None,
         "http://env.example/v1", "file-model"),
        ({"OPENAI_BASE_URL": "http://env.example/v1"}, "http://cli.example/v1", None,
         "http://cli.example/v1", "file-model"),
        ({}, "http://cli.example/v1", "cli-model", "http://cli.example/v1", "cli-model"),
        ({"OPENAI_BASE_URL": "  http://env.example/v1  "}, None, None,
         "http://env.example/v1", "file-model"),
        ({"OPENAI_BASE_URL": "   "}, None, None, "http://file.example/v1", "file-model"),
        ({"OPENAI_BASE_URL": "http://env.example/v1"}, "", "", "http://env.example/v1",
         "file-model"),
    ],
    ids=["file", "env-beats-file", "cli-beats-env", "cli", "env-stripped", "env-blank",
         "empty-cli"],
)
def test_with_overrides_precedence(
    environ: dict[str, str], cli_url: str | None, cli_model: str | None, url: str, model: str
) -> None:
    result = with_overrides(FILE, environ, cli_url, cli_model)
    assert (result.base_url, result.model) == (url, model)
    assert result.system_prompt == FILE.system_prompt


def test_with_overrides_validates(tmp_path: Path) -> None:
    result = with_overrides(FILE, {}, "not a url", "   ")
    assert result == Settings()  # both replaced by the defaults, never used as given


def test_with_overrides_does_not_touch_the_file(tmp_path: Path) -> None:
    save(tmp_path, FILE)
    with_overrides(load(tmp_path).settings, {"OPENAI_BASE_URL": "http://env.example/v1"},
                   "http://cli.example/v1", "cli-model")
    assert load(tmp_path).settings == FILE


# -- SettingsFile ----------------------------------------------------------------------------


def test_settings_file_update_saves(tmp_path: Path) -> None:
    stored = SettingsFile(tmp_path)
    assert (stored.settings, stored.notice) == (Settings(), None)
    stored.update(model="picked-model", system_prompt="Be brief.")
    expected = Settings(model="picked-model", system_prompt="Be brief.")
    assert stored.settings == expected
    assert load(tmp_path) == LoadResult(expected, None)
    assert SettingsFile(tmp_path).settings == expected


def test_settings_file_reports_a_damaged_file(tmp_path: Path) -> None:
    write(tmp_path, "{oops")
    stored = SettingsFile(tmp_path)
    assert stored.settings == Settings()
    assert stored.notice is not None and "damaged" in stored.notice
    stored.update(model="fresh")
    assert load(tmp_path) == LoadResult(Settings(model="fresh"), None)


def test_settings_file_update_survives_a_failed_save(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    stored = SettingsFile(not_a_dir)
    assert stored.settings == Settings()
    assert stored.notice is not None and stored.notice.startswith("Could not read")
    stored.update(model="still-works")  # a save error is logged, not raised
    assert stored.settings.model == "still-works"


def test_module_reads_no_environment_itself(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.example/v1")
    assert load(tmp_path).settings.base_url == OPENAI_BASE_URL  # only with_overrides applies it
    assert settings_mod.with_overrides(Settings(), {}, None, None).base_url == OPENAI_BASE_URL


def test_second_corrupt_file_in_the_same_second_keeps_both(tmp_path: Path) -> None:
    write(tmp_path, "{first")
    load(tmp_path)
    write(tmp_path, "{second")
    load(tmp_path)
    assert sorted(b.read_text("utf-8") for b in backups(tmp_path)) == ["{first", "{second"]
