"""Typed settings: defaults, load/validate/save, a damaged file moved aside, the 0.1 file
migrated into a profile, and run overrides that never reach the file."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from desktop_chat.core.config.providers import (
    PRESETS,
    ApiFlavour,
    GenerationParams,
    Profile,
    PromptPreset,
)
from desktop_chat.core.config.settings import (
    OPENAI_BASE_URL,
    RUN_PROFILE_ID,
    SETTINGS_FILE,
    LoadResult,
    Settings,
    SettingsFile,
    load,
    run_overrides,
    save,
)


def with_overrides(settings: Settings, environ: dict[str, str], base_url: str | None,
                   model: str | None) -> Settings:
    """This run's settings: the stored ones with the command line and environment applied."""
    return run_overrides(settings, environ, base_url, model).apply(settings)


LOCAL = dataclasses.replace(
    PRESETS["ollama"].new_profile("ollama"), model="llama3.2", models=("llama3.2", "qwen3"),
    context_window=32_000,
)
REMOTE = dataclasses.replace(
    PRESETS["openrouter"].new_profile("openrouter", "My router"),
    model="openai/gpt-4o", api=ApiFlavour.RESPONSES, input_price=2.5, output_price=10,
)
CUSTOM = Settings(
    profiles=(LOCAL, REMOTE),
    active_profile="openrouter",
    system_prompt="Réponds en français ✓\nsur deux lignes",
    params=GenerationParams(temperature=0.7, max_tokens=512, reasoning_effort="low"),
    prompt_presets=(PromptPreset("Terse", "Be brief.", "qwen3", GenerationParams(top_p=0.5)),),
    font_size=13,
    theme="dark",
    proxy_mode="manual",
    proxy_url="http://proxy.example:3128",
    plaintext_keys_accepted=True,
    connect_timeout_s=5.0,
    read_timeout_s=30.5,
    rate_limit_retries=0,
    max_retry_wait_s=10.0,
)


def write(data_dir: Path, content: str | bytes | dict[str, Any]) -> Path:
    path = data_dir / SETTINGS_FILE
    if isinstance(content, dict):
        content = json.dumps(content)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def stored_json(data_dir: Path) -> dict[str, Any]:
    return json.loads((data_dir / SETTINGS_FILE).read_text("utf-8"))


def backups(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob(f"{SETTINGS_FILE}.corrupt-*"))


def test_defaults() -> None:
    assert Settings() == Settings(
        profiles=(),
        active_profile="",
        system_prompt="",
        params=GenerationParams(),
        prompt_presets=(),
        font_size=0,
        theme="system",
        proxy_mode="system",
        proxy_url="",
        plaintext_keys_accepted=False,
        connect_timeout_s=10.0,
        read_timeout_s=90.0,
        rate_limit_retries=2,
        max_retry_wait_s=30.0,
    )
    assert OPENAI_BASE_URL == "https://api.openai.com/v1"
    assert Settings().validated() == Settings()
    assert Settings().active() is None and Settings().proxy() is None
    assert not {"api_key", "key"} & {f.name for f in dataclasses.fields(Settings)}
    assert not {f.name for f in dataclasses.fields(Profile)} & {"api_key", "key"}


def test_load_missing_file(tmp_path: Path) -> None:
    assert load(tmp_path) == LoadResult(Settings(), None)
    assert load(tmp_path / "does" / "not" / "exist") == LoadResult(Settings(), None)
    assert list(tmp_path.iterdir()) == []  # loading creates nothing


def test_save_load_round_trip(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "dir"
    save(data_dir, CUSTOM)
    assert load(data_dir) == LoadResult(CUSTOM, None)
    data = stored_json(data_dir)
    assert [p["id"] for p in data["profiles"]] == ["ollama", "openrouter"]
    assert data["profiles"][1]["api"] == "responses"
    assert data["profiles"][1]["extra_headers"] == dict(REMOTE.extra_headers)
    assert data["params"] == {"temperature": 0.7, "top_p": None, "max_tokens": 512,
                              "reasoning_effort": "low"}
    assert data["prompt_presets"][0]["params"]["top_p"] == 0.5
    assert sorted(p.name for p in data_dir.iterdir()) == [SETTINGS_FILE]  # no temp file left


def test_save_replaces_the_previous_file(tmp_path: Path) -> None:
    save(tmp_path, CUSTOM)
    save(tmp_path, Settings(theme="light"))
    assert load(tmp_path).settings == Settings(theme="light")


@pytest.mark.parametrize(
    "content",
    ["{not json", "", '{"theme": "dark",', "[1, 2, 3]", '"just a string"', "null",
     "[" * 100_000],
    ids=["garbage", "empty", "truncated", "list", "string", "null", "too-deep"],
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


GOOD_PROFILE = {"id": "p", "name": "P", "base_url": "http://127.0.0.1:8080/v1"}


@pytest.mark.parametrize(
    "data",
    [
        {"model": 5},
        {"base_url": {"url": "http://x"}},
        {"read_timeout_s": "fast"},
        {"rate_limit_retries": True},
        {"rate_limit_retries": 2.5},
        {"connect_timeout_s": None},
        {"system_prompt": ["a", "b"]},
        {"font_size": 12.5},
        {"plaintext_keys_accepted": "yes"},
        {"profiles": "openai"},
        {"profiles": [{"id": "p"}]},
        {"profiles": [{**GOOD_PROFILE, "api": "soap"}]},
        {"profiles": [{**GOOD_PROFILE, "extra_headers": {"X-Title": 1}}]},
        {"profiles": [{**GOOD_PROFILE, "context_window": "big"}]},
        {"params": {"temperature": "hot"}},
        {"prompt_presets": [{"system_prompt": "no name"}]},
    ],
    ids=["int-for-str", "object-for-url", "str-for-float", "bool-for-int", "float-for-int",
         "null", "list", "float-for-font", "str-for-bool", "str-for-list", "profile-no-name",
         "unknown-api", "header-not-str", "str-for-int-in-profile", "str-for-param",
         "preset-no-name"],
)
def test_wrong_types_are_treated_as_corrupt(tmp_path: Path, data: dict[str, Any]) -> None:
    raw = json.dumps({"system_prompt": "kept?", **data})
    write(tmp_path, raw)
    result = load(tmp_path)
    assert result.settings == Settings()
    assert result.notice is not None and "damaged" in result.notice
    [backup] = backups(tmp_path)
    assert backup.read_text("utf-8") == raw


def test_file_that_is_not_utf8_is_treated_as_corrupt(tmp_path: Path) -> None:
    """A settings file saved in Latin-1 (or garbled on disk) must not crash the start."""
    raw = '{"system_prompt": "café"}'.encode("latin-1")
    write(tmp_path, raw)
    result = load(tmp_path)
    assert result.settings == Settings()
    assert result.notice is not None and "damaged" in result.notice
    [backup] = backups(tmp_path)
    assert backup.read_bytes() == raw


def test_int_is_accepted_for_float(tmp_path: Path) -> None:
    write(tmp_path, {"read_timeout_s": 30, "max_retry_wait_s": 5, "params": {"temperature": 1},
                     "profiles": [{**GOOD_PROFILE, "input_price": 3}]})
    settings = load(tmp_path).settings
    assert (settings.read_timeout_s, settings.max_retry_wait_s) == (30.0, 5.0)
    assert isinstance(settings.read_timeout_s, float)
    assert settings.params.temperature == 1.0 and settings.profiles[0].input_price == 3.0


def test_invalid_values_are_replaced_by_defaults(tmp_path: Path) -> None:
    data = {
        "system_prompt": "kept",
        "connect_timeout_s": 0,
        "read_timeout_s": -1.0,
        "max_retry_wait_s": 99999.0,
        "rate_limit_retries": 11,
        "font_size": 3,
        "theme": "purple",
        "proxy_mode": "manual",
        "proxy_url": "proxy:3128",
        "params": {"temperature": 2.5, "top_p": 0.9, "max_tokens": 0, "reasoning_effort": "max"},
        "prompt_presets": [{"name": "  "}, {"name": "Keep", "params": {"top_p": -1}}],
        "profiles": [
            {**GOOD_PROFILE, "context_window": -5, "input_price": -1, "preset": "gone"},
            {**GOOD_PROFILE, "name": " ", "base_url": "localhost:1234"},
        ],
        "active_profile": "nobody",
    }
    write(tmp_path, data)
    result = load(tmp_path)
    local = Profile(id="p", name="P", base_url="http://127.0.0.1:8080/v1")
    assert result == LoadResult(
        Settings(
            system_prompt="kept",
            proxy_url="proxy:3128",  # kept for the user to correct; not used
            params=GenerationParams(top_p=0.9),
            prompt_presets=(PromptPreset("Keep"),),
            profiles=(local, Profile(id="custom-openai-compatible",
                                     name="Custom (OpenAI-compatible)")),
        ),
        None,
    )
    assert backups(tmp_path) == []  # valid JSON of the right types: nothing moved aside


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"connect_timeout_s": 3600.0}, {"connect_timeout_s": 3600.0}),
        ({"connect_timeout_s": 3600.5}, {"connect_timeout_s": 10.0}),
        ({"read_timeout_s": float("nan")}, {"read_timeout_s": 90.0}),
        ({"max_retry_wait_s": float("inf")}, {"max_retry_wait_s": 30.0}),
        ({"rate_limit_retries": 0}, {"rate_limit_retries": 0}),
        ({"rate_limit_retries": 10}, {"rate_limit_retries": 10}),
        ({"rate_limit_retries": -1}, {"rate_limit_retries": 2}),
        ({"font_size": 0}, {"font_size": 0}),
        ({"font_size": 72}, {"font_size": 72}),
        ({"font_size": 73}, {"font_size": 0}),
        ({"theme": "light"}, {"theme": "light"}),
        ({"theme": "Dark"}, {"theme": "system"}),
        ({"proxy_mode": "none"}, {"proxy_mode": "none"}),
        ({"proxy_mode": "socks"}, {"proxy_mode": "system"}),
        ({"proxy_url": "ftp://x"}, {"proxy_mode": "system", "proxy_url": "ftp://x"}),
        ({"params": GenerationParams(temperature=2.0, top_p=0.0)},
         {"params": GenerationParams(temperature=2.0, top_p=0.0)}),
        ({"params": GenerationParams(temperature=float("nan"), max_tokens=-1)},
         {"params": GenerationParams()}),
        ({"active_profile": "gone"}, {"active_profile": ""}),
        ({"profiles": (LOCAL, dataclasses.replace(REMOTE, id="ollama"))},
         {"profiles": (LOCAL, dataclasses.replace(REMOTE, id="my-router")),
          "active_profile": ""}),
        ({"profiles": (dataclasses.replace(LOCAL, base_url="ftp://x", output_price=float("nan")),)},
         {"profiles": (dataclasses.replace(LOCAL, base_url="http://127.0.0.1:11434/v1"),),
          "active_profile": ""}),
    ],
)
def test_validated(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    fixed = dataclasses.replace(CUSTOM, **changes).validated()
    assert fixed == dataclasses.replace(CUSTOM, **expected)


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, {"theme": "dark", "api_key": "sk-abc", "colour": 3,
                     "profiles": [{**GOOD_PROFILE, "key": "sk-abc"}]})
    assert load(tmp_path) == LoadResult(
        Settings(theme="dark", profiles=(Profile("p", "P", base_url=GOOD_PROFILE["base_url"]),)),
        None,
    )
    assert backups(tmp_path) == []


def test_profile_helpers() -> None:
    assert CUSTOM.active() == REMOTE
    assert dataclasses.replace(CUSTOM, active_profile="").active() == LOCAL  # the first
    renamed = dataclasses.replace(LOCAL, name="Renamed")
    assert CUSTOM.with_profile(renamed).profiles == (renamed, REMOTE)  # replaced in place
    extra = Profile("extra", "Extra")
    assert CUSTOM.with_profile(extra).profiles == (LOCAL, REMOTE, extra)
    assert CUSTOM.without_profile("ollama").profiles == (REMOTE,)
    gone = CUSTOM.without_profile("openrouter")
    assert (gone.active_profile, gone.active()) == ("", LOCAL)
    assert CUSTOM.proxy() == "http://proxy.example:3128"
    assert dataclasses.replace(CUSTOM, proxy_mode="system").proxy() is None
    assert dataclasses.replace(CUSTOM, proxy_mode="none").proxy() == ""  # as Endpoint takes it


# -- the 0.1 file --------------------------------------------------------------------------


OLD_FILE = {"base_url": "https://api.openai.com/v1", "model": "gpt-4o", "system_prompt": "Hi",
            "connect_timeout_s": 5.0, "read_timeout_s": 90.0, "rate_limit_retries": 2,
            "max_retry_wait_s": 30.0}


def test_old_file_becomes_a_profile(tmp_path: Path) -> None:
    write(tmp_path, OLD_FILE)
    result = load(tmp_path)
    assert result.notice is None and backups(tmp_path) == []
    [profile] = result.settings.profiles
    assert result.settings.active() == profile
    assert (profile.id, profile.preset, profile.base_url, profile.model, profile.needs_key,
            profile.key_env) == ("openai", "openai", OPENAI_BASE_URL, "gpt-4o", True,
                                 "OPENAI_API_KEY")
    assert (result.settings.system_prompt, result.settings.connect_timeout_s) == ("Hi", 5.0)
    save(tmp_path, result.settings)
    assert not {"base_url", "model"} & stored_json(tmp_path).keys()
    assert load(tmp_path).settings == result.settings


@pytest.mark.parametrize(
    ("old", "preset", "name", "url", "model"),
    [
        ({"base_url": "http://127.0.0.1:11434/v1/", "model": "llama3.2"}, "ollama", "Ollama",
         "http://127.0.0.1:11434/v1/", "llama3.2"),
        ({"base_url": "http://gpu-box:9000/v1"}, "custom", "gpu-box:9000",
         "http://gpu-box:9000/v1", "gpt-4o-mini"),
        ({"model": "mine"}, "openai", "OpenAI", OPENAI_BASE_URL, "mine"),
        ({"base_url": "localhost:8080/v1", "model": "   "}, "openai", "OpenAI", OPENAI_BASE_URL,
         "gpt-4o-mini"),
    ],
    ids=["local-preset", "custom", "model-only", "invalid-values"],
)
def test_old_server_is_matched_to_a_preset(
    tmp_path: Path, old: dict[str, str], preset: str, name: str, url: str, model: str
) -> None:
    write(tmp_path, old)
    [profile] = load(tmp_path).settings.profiles
    assert (profile.preset, profile.name, profile.base_url, profile.model) == (
        preset, name, url, model)
    assert profile.key_env == "OPENAI_API_KEY"  # where 0.1 took the key from
    assert profile.needs_key == PRESETS[preset].needs_key


def test_old_keys_next_to_profiles_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, {"base_url": "http://old/v1", "model": "old", "profiles": [GOOD_PROFILE]})
    assert load(tmp_path).settings.profiles == (Profile("p", "P", base_url="http://127.0.0.1:8080/v1"),)


# -- overrides -------------------------------------------------------------------------------

FILE = Settings(profiles=(LOCAL, REMOTE), active_profile="ollama")


@pytest.mark.parametrize(
    ("environ", "cli_url", "cli_model", "url", "model"),
    [
        ({}, None, None, "http://127.0.0.1:11434/v1", "llama3.2"),
        ({}, None, "cli-model", "http://127.0.0.1:11434/v1", "cli-model"),
        ({"OPENAI_BASE_URL": "http://env.example/v1"}, None, None, "http://env.example/v1", ""),
        ({"OPENAI_BASE_URL": "http://env.example/v1"}, "http://cli.example/v1", None,
         "http://cli.example/v1", ""),
        ({}, "http://cli.example/v1", "cli-model", "http://cli.example/v1", "cli-model"),
        ({"OPENAI_BASE_URL": "  http://env.example/v1  "}, None, None,
         "http://env.example/v1", ""),
        ({"OPENAI_BASE_URL": "   "}, None, None, "http://127.0.0.1:11434/v1", "llama3.2"),
        ({"OPENAI_BASE_URL": "http://env.example/v1"}, "", "", "http://env.example/v1", ""),
        ({}, "https://openrouter.ai/api/v1/", None, "https://openrouter.ai/api/v1",
         "openai/gpt-4o"),
        ({}, "https://openrouter.ai/api/v1", "other", "https://openrouter.ai/api/v1", "other"),
    ],
    ids=["file", "cli-model", "env-beats-file", "cli-beats-env", "cli", "env-stripped",
         "env-blank", "empty-cli", "url-of-a-stored-profile", "stored-profile-and-model"],
)
def test_with_overrides_precedence(
    environ: dict[str, str], cli_url: str | None, cli_model: str | None, url: str, model: str
) -> None:
    result = with_overrides(FILE, environ, cli_url, cli_model)
    active = result.active()
    assert active is not None
    assert (active.base_url, active.model) == (url, model)
    assert result.system_prompt == FILE.system_prompt


def test_base_url_makes_a_run_only_profile() -> None:
    result = with_overrides(FILE, {}, "http://127.0.0.1:1234/v1", "qwen3")
    assert result.profiles[:2] == FILE.profiles
    run = result.active()
    assert run is not None and run == result.profiles[2]
    assert (run.id, run.name, run.preset, run.key_env, run.needs_key) == (
        RUN_PROFILE_ID, "Command line", "lmstudio", "OPENAI_API_KEY", False)
    openai = with_overrides(Settings(), {}, "https://api.openai.com/v1", None).active()
    assert openai is not None
    assert (openai.preset, openai.needs_key, openai.model) == ("openai", True, "gpt-4o-mini")


@pytest.mark.parametrize(
    ("stored", "environ", "cli_model", "expected"),
    [
        (Settings(), {"OPENAI_API_KEY": "sk-x"}, None, ("openai", "gpt-4o-mini")),
        (Settings(), {"OPENAI_API_KEY": "sk-x"}, "gpt-4o", ("openai", "gpt-4o")),
        (Settings(), {"OPENAI_API_KEY": "  "}, None, None),
        (Settings(), {}, None, None),
        (FILE, {"OPENAI_API_KEY": "sk-x"}, None, ("ollama", "llama3.2")),
    ],
    ids=["first-run", "first-run-model", "blank-key", "no-key", "has-profiles"],
)
def test_first_run_with_an_openai_key(
    stored: Settings, environ: dict[str, str], cli_model: str | None,
    expected: tuple[str, str] | None,
) -> None:
    active = with_overrides(stored, environ, None, cli_model).active()
    assert (None if active is None else (active.id, active.model)) == expected
    if expected and expected[0] == "openai":
        assert active is not None and (active.key_env, active.needs_key) == (
            "OPENAI_API_KEY", True)


def test_with_overrides_validates() -> None:
    assert with_overrides(FILE, {}, "not a url", "   ") == FILE  # ignored, never used as given
    assert with_overrides(FILE, {"OPENAI_BASE_URL": "ftp://x"}, None, None) == FILE


def test_with_overrides_does_not_touch_the_file(tmp_path: Path) -> None:
    save(tmp_path, FILE)
    with_overrides(load(tmp_path).settings, {"OPENAI_BASE_URL": "http://env.example/v1"},
                   "http://cli.example/v1", "cli-model")
    assert load(tmp_path).settings == FILE


# -- SettingsFile ----------------------------------------------------------------------------


def test_settings_file_update_saves(tmp_path: Path) -> None:
    stored = SettingsFile(tmp_path)
    assert (stored.settings, stored.notice) == (Settings(), None)
    stored.update(theme="dark", system_prompt="Be brief.")
    expected = Settings(theme="dark", system_prompt="Be brief.")
    assert stored.settings == stored.stored == expected
    assert load(tmp_path) == LoadResult(expected, None)
    assert SettingsFile(tmp_path).settings == expected


def test_settings_file_update_profile_remembers_per_profile(tmp_path: Path) -> None:
    save(tmp_path, FILE)
    stored = SettingsFile(tmp_path)
    stored.update_profile("openrouter", model="picked", models=("a", "picked"))
    stored.update_profile("nobody", model="x")  # logged, nothing else
    again = SettingsFile(tmp_path).settings
    assert again.profile("openrouter") == dataclasses.replace(REMOTE, model="picked",
                                                              models=("a", "picked"))
    assert again.profile("ollama") == LOCAL and again.active_profile == "ollama"


def test_run_only_profile_is_never_written(tmp_path: Path) -> None:
    save(tmp_path, FILE)
    stored = SettingsFile(tmp_path, {}, "http://cli.example/v1", "cli-model")
    stored.update(theme="dark")
    stored.update_profile(RUN_PROFILE_ID, model="picked-in-the-window")
    run = stored.settings.active()
    assert run is not None and (run.id, run.model) == (RUN_PROFILE_ID, "picked-in-the-window")
    data = stored_json(tmp_path)
    assert [p["id"] for p in data["profiles"]] == ["ollama", "openrouter"]
    assert (data["active_profile"], data["theme"]) == ("ollama", "dark")
    assert "cli" not in json.dumps(data)
    save(tmp_path, stored.settings)  # even handed the run's settings, save leaves it out
    assert RUN_PROFILE_ID not in json.dumps(stored_json(tmp_path))
    assert load(tmp_path).settings.active() == LOCAL


def test_model_override_is_not_written_unless_the_user_picks(tmp_path: Path) -> None:
    save(tmp_path, FILE)
    stored = SettingsFile(tmp_path, {}, None, "cli-model")
    assert stored.settings.active() == dataclasses.replace(LOCAL, model="cli-model")
    stored.update_profile("ollama", models=("a", "b"))  # a change, but not of the model
    assert load(tmp_path).settings.active() == dataclasses.replace(LOCAL, models=("a", "b"))
    assert stored.settings.active() == dataclasses.replace(LOCAL, model="cli-model",
                                                           models=("a", "b"))
    stored.update_profile("ollama", model="picked")
    assert load(tmp_path).settings.profile("ollama").model == "picked"  # type: ignore[union-attr]
    assert stored.settings.profile("ollama").model == "picked"  # type: ignore[union-attr]


def test_choosing_another_profile_beats_the_command_line(tmp_path: Path) -> None:
    save(tmp_path, FILE)
    stored = SettingsFile(tmp_path, {"OPENAI_BASE_URL": "http://env.example/v1"})
    assert stored.settings.active_profile == RUN_PROFILE_ID
    stored.update(active_profile="openrouter")
    assert stored.settings.active() == REMOTE
    assert stored.settings.profile(RUN_PROFILE_ID) is not None  # still offered this run
    assert load(tmp_path).settings.active_profile == "openrouter"
    stored.update(active_profile=RUN_PROFILE_ID)  # and back: this run only
    assert stored.settings.active_profile == RUN_PROFILE_ID
    assert load(tmp_path).settings.active_profile == "openrouter"


def test_replace_from_the_dialog(tmp_path: Path) -> None:
    """The dialog edits this run's settings and hands them all back."""
    save(tmp_path, FILE)
    stored = SettingsFile(tmp_path, {}, "http://cli.example/v1", None)
    edited = stored.settings.without_profile("ollama").with_profile(Profile("new", "New"))
    stored.replace(dataclasses.replace(edited, font_size=15, active_profile="new"))
    # the run-only profile is listed last
    assert [p.id for p in stored.settings.profiles] == ["openrouter", "new", RUN_PROFILE_ID]
    assert stored.settings.active_profile == "new"
    again = SettingsFile(tmp_path)
    assert [p.id for p in again.settings.profiles] == ["openrouter", "new"]
    assert (again.settings.active_profile, again.settings.font_size) == ("new", 15)
    stored.replace(stored.settings.without_profile(RUN_PROFILE_ID))
    assert stored.settings.profile(RUN_PROFILE_ID) is None


def test_first_run_profile_is_written_once_changed(tmp_path: Path) -> None:
    stored = SettingsFile(tmp_path, {"OPENAI_API_KEY": "sk-x"})
    assert stored.settings.active() == PRESETS["openai"].new_profile("openai")
    stored.update(theme="light")
    assert stored_json(tmp_path)["profiles"] == []  # only offered so far
    stored.update_profile("openai", model="gpt-4.1")
    again = SettingsFile(tmp_path)  # even without the key now
    active = again.settings.active()
    assert active is not None and (active.id, active.model) == ("openai", "gpt-4.1")


def test_settings_file_reports_a_damaged_file(tmp_path: Path) -> None:
    write(tmp_path, "{oops")
    stored = SettingsFile(tmp_path)
    assert stored.settings == Settings()
    assert stored.notice is not None and "damaged" in stored.notice
    stored.update(theme="dark")
    assert load(tmp_path) == LoadResult(Settings(theme="dark"), None)


def test_settings_file_validates_changes(tmp_path: Path) -> None:
    stored = SettingsFile(tmp_path)
    stored.update(font_size=500, theme="neon", params=GenerationParams(temperature=9))
    assert stored.settings == Settings()
    assert load(tmp_path).settings == Settings()


def test_settings_file_update_survives_a_failed_save(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    stored = SettingsFile(not_a_dir)
    assert stored.settings == Settings()
    # No folder, so no settings yet: the window says the folder cannot be written instead.
    assert stored.notice is None
    stored.update(theme="dark")  # a save error is logged, not raised
    assert stored.settings.theme == "dark"


def test_module_reads_no_environment_itself(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.example/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    assert load(tmp_path).settings == Settings()  # only the overrides apply it
    assert SettingsFile(tmp_path).settings == Settings()
    assert with_overrides(Settings(), {}, None, None) == Settings()


def test_second_corrupt_file_in_the_same_second_keeps_both(tmp_path: Path) -> None:
    write(tmp_path, "{first")
    load(tmp_path)
    write(tmp_path, "{second")
    load(tmp_path)
    assert sorted(b.read_text("utf-8") for b in backups(tmp_path)) == ["{first", "{second"]
