"""Base URLs as people type them (issue #14, defect 7) and which models are for chat
(defect 6): a scheme-less local address is http://, a bare host is tried at /v1; the model
list keeps the server's order and leaves out what the server says are embedding models."""

from __future__ import annotations

import asyncio

import pytest

from desktop_chat.core.config import first_run
from desktop_chat.core.config.providers import (
    PRESETS,
    Endpoint,
    api_root_candidates,
    base_url_problem,
    with_scheme,
)
from desktop_chat.core.config.settings import Settings
from desktop_chat.core.llm.client import ChatClient, RetryPolicy
from desktop_chat.core.llm.discovery import chat_models, find_api_root, probe_local
from desktop_chat.core.llm.errors import ChatError
from tests.support.openai_server import LoopbackServer


@pytest.mark.parametrize(("typed", "expected"), [
    ("127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("localhost:1234/v1", "http://localhost:1234/v1"),
    ("192.168.1.20:11434", "http://192.168.1.20:11434"),
    ("gpu-box:8000/v1", "http://gpu-box:8000/v1"),
    ("[::1]:8080", "http://[::1]:8080"),
    ("api.example.com/v1", "https://api.example.com/v1"),
    ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ("  http://127.0.0.1:8080/v1 ", "http://127.0.0.1:8080/v1"),
])
def test_a_missing_scheme_is_assumed(typed: str, expected: str) -> None:
    assert with_scheme(typed) == expected
    assert base_url_problem(typed) is None


@pytest.mark.parametrize(("typed", "candidates"), [
    ("http://127.0.0.1:8080", ["http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"]),
    ("127.0.0.1:8080/", ["http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"]),
    ("http://127.0.0.1:8080/v1", ["http://127.0.0.1:8080/v1"]),
    ("https://openrouter.ai/api/v1", ["https://openrouter.ai/api/v1"]),
])
def test_a_bare_host_is_tried_at_v1_first(typed: str, candidates: list[str]) -> None:
    assert api_root_candidates(typed) == candidates


def list_models_at(url: str) -> list[str]:
    async def run() -> list[str]:
        client = ChatClient(Endpoint(url, None, 3, 3, needs_key=False, proxy_url=""),
                            RetryPolicy(attempts=0))
        try:
            return await client.list_models(3)
        finally:
            await client.aclose()
    return asyncio.run(run())


def test_find_api_root_probes_v1(server: LoopbackServer) -> None:
    server.only_v1 = True
    bare = f"127.0.0.1:{server.port}"

    async def listing(url: str) -> list[str]:
        return await asyncio.to_thread(list_models_at, url)

    url, models = asyncio.run(find_api_root(bare, listing))
    assert url == f"http://127.0.0.1:{server.port}/v1"
    assert models == ["test-model", "other-model"]


def test_find_api_root_says_why_when_nothing_answers(server: LoopbackServer) -> None:
    server.only_v1 = True
    server.models_scenario.status = 404

    async def listing(url: str) -> list[str]:
        return await asyncio.to_thread(list_models_at, url)

    with pytest.raises(ChatError):
        asyncio.run(find_api_root(f"http://127.0.0.1:{server.port}", listing))


def test_the_model_list_keeps_the_servers_order(server: LoopbackServer) -> None:
    server.models = ["zeta", "alpha", "mid", "alpha"]
    assert list_models_at(server.base_url) == ["zeta", "alpha", "mid"]


def test_lm_studio_embedding_models_are_left_out(server: LoopbackServer) -> None:
    models = ["text-embedding-nomic-embed-text-v1.5", "qwen2.5-7b-instruct", "llama-3.2-3b"]
    server.native["GET /api/v0/models"] = {"object": "list", "data": [
        {"id": models[0], "type": "embeddings"}, {"id": models[1], "type": "llm"},
        {"id": models[2], "type": "vlm"}]}
    kept = asyncio.run(chat_models(server.base_url, models))
    assert kept == ["qwen2.5-7b-instruct", "llama-3.2-3b"]


def test_ollama_embedding_models_are_left_out(server: LoopbackServer) -> None:
    models = ["all-minilm:latest", "llama3.2:latest", "nomic-embed-text:latest"]
    capabilities = {"llama3.2:latest": ["completion", "tools"]}
    server.native["POST /api/show"] = lambda body: {
        "capabilities": capabilities.get(body["model"], ["embedding"])}
    assert asyncio.run(chat_models(server.base_url, models)) == ["llama3.2:latest"]


def test_a_server_that_does_not_say_keeps_its_list(server: LoopbackServer) -> None:
    models = ["a-embed", "b"]
    assert asyncio.run(chat_models(server.base_url, models)) == models


def test_probe_and_first_run_pick_the_first_chat_model(server: LoopbackServer) -> None:
    server.models = ["nomic-embed-text", "mistral", "alpha"]
    server.native["GET /api/v0/models"] = {"data": [
        {"id": "nomic-embed-text", "type": "embeddings"}, {"id": "mistral", "type": "llm"},
        {"id": "alpha", "type": "llm"}]}
    lmstudio = PRESETS["lmstudio"]
    found = asyncio.run(probe_local((lmstudio,), timeout_s=2.0,
                                    port_of=lambda _p: server.port))
    assert found[0].models == ["mistral", "alpha"]
    choice = first_run.local_server(Settings(), lmstudio, found[0].base_url, found[0].models)
    assert choice.profile.model == "mistral"  # the server's first, not the alphabet's


def test_an_offline_check_says_the_network_is_unreachable() -> None:  # defect 11
    """A host that cannot be looked up (RFC 6761's .invalid: never resolves) is what an
    offline computer meets for api.openai.com."""
    async def check() -> list[str]:
        client = ChatClient(Endpoint("https://api.example.invalid/v1", "sk-x", 3, 3,
                                     needs_key=True, proxy_url=""), RetryPolicy(attempts=0))
        try:
            return await client.list_models(3)
        finally:
            await client.aclose()

    try:
        asyncio.run(check())
    except ChatError as exc:
        message = exc.message
    else:
        raise AssertionError("the check did not fail")
    assert "network is unreachable" in message
    assert "server is running" not in message
    assert "api.example.invalid" in message
