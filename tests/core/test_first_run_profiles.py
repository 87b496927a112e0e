"""The first-run choices as profiles (no Qt): unique ids, the model picked from what the
server lists, the key and notice that go with a choice."""

from __future__ import annotations

from desktop_chat.core.config import first_run
from desktop_chat.core.config.providers import PRESETS
from desktop_chat.core.config.settings import Settings

EMPTY = Settings()


def test_openai_key_keeps_the_preset_model_when_listed_and_takes_the_key() -> None:
    choice = first_run.openai_key(EMPTY, "sk-abc", ["gpt-4o", "gpt-4o-mini"])
    p = choice.profile
    assert (p.id, p.preset, p.name, p.model) == ("openai", "openai", "OpenAI", "gpt-4o-mini")
    assert p.models == ("gpt-4o", "gpt-4o-mini") and p.needs_key
    assert choice.key == "sk-abc" and choice.notice is None


def test_a_model_the_server_does_not_list_gives_way_to_the_first_listed() -> None:
    assert first_run.openai_key(EMPTY, "k", ["o3", "gpt-5"]).profile.model == "o3"
    assert first_run.openai_key(EMPTY, "k", []).profile.model == "gpt-4o-mini"  # nothing listed


def test_ids_are_unique_among_the_profiles_there_are() -> None:
    first = first_run.openai_key(EMPTY, "k", []).profile
    settings = first_run.with_active(EMPTY, first)
    second = first_run.openai_key(settings, "k2", []).profile
    assert (first.id, second.id) == ("openai", "openai-2")
    both = first_run.with_active(settings, second)
    assert [p.id for p in both.profiles] == ["openai", "openai-2"]
    assert both.active_profile == "openai-2"


def test_a_local_server_is_its_preset_at_the_address_it_answered() -> None:
    ollama = PRESETS["ollama"]
    choice = first_run.local_server(EMPTY, ollama, "http://127.0.0.1:11500/v1", ["llama3"])
    p = choice.profile
    assert (p.id, p.preset, p.name) == ("ollama", "ollama", "Ollama")
    assert p.base_url == "http://127.0.0.1:11500/v1"
    assert p.model == "llama3" and p.models == ("llama3",) and not p.needs_key
    assert choice.key is None and choice.notice is None


def test_a_custom_server_needs_a_key_only_if_one_was_given() -> None:
    keyed = first_run.custom_server(EMPTY, "https://llm.example/v1", "k", ["big", "small"])
    p = keyed.profile
    assert (p.id, p.preset, p.base_url, p.model) == ("server", "custom", "https://llm.example/v1",
                                                    "big")
    assert p.models == ("big", "small") and p.needs_key and p.key_env == ""
    assert keyed.key == "k" and keyed.notice is None
    keyless = first_run.custom_server(EMPTY, "https://llm.example/v1", "", ["big"])
    assert not keyless.profile.needs_key and keyless.key is None


def test_a_server_that_lists_no_models_says_where_to_type_one() -> None:
    choice = first_run.custom_server(EMPTY, "http://10.0.0.5:8000/v1", None, [])
    assert choice.profile.model == "" and choice.profile.models == ()
    assert choice.notice == first_run.NO_MODEL_LIST
    assert "type the model name" in choice.notice


def test_offline_is_the_offline_preset_with_no_model_file_yet() -> None:
    p = first_run.offline(EMPTY).profile
    assert (p.id, p.preset, p.gguf_path) == ("offline", "offline", "") and p.is_offline
