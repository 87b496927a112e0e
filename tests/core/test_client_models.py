"""`ChatClient.list_models()` against the loopback server: the list, and the error text the
"Test connection" button shows when there is none."""

from __future__ import annotations

from typing import Any

import pytest

from desktop_chat.core.config.providers import AZURE_API_VERSION, ApiFlavour, Endpoint
from desktop_chat.core.llm.errors import ChatError, ErrorKind
from tests.conftest import TEST_KEY
from tests.support.client_run import free_port, list_models
from tests.support.openai_server import LoopbackServer, Scenario


def endpoint(base_url: str, key: str | None = TEST_KEY, **changes: Any) -> Endpoint:
    return Endpoint(base_url, key, 2.0, 2.0, **changes)


def models_error(endpoint: Endpoint, timeout_s: float | None = None) -> ChatError:
    with pytest.raises(ChatError) as info:
        list_models(endpoint, timeout_s)
    return info.value


def test_models_are_listed_in_the_servers_order(server: LoopbackServer) -> None:
    server.models = ["gpt-b", "Llama-3", "gpt-a", "claude", "gpt-b"]
    assert list_models(endpoint(server.base_url)) == ["gpt-b", "Llama-3", "gpt-a", "claude"]
    [sent] = server.requests
    assert (sent.method, sent.path) == ("GET", "/v1/models")
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"


def test_an_empty_list(server: LoopbackServer) -> None:
    server.models = []
    assert list_models(endpoint(server.base_url)) == []


def test_extra_headers_go_with_the_listing(server: LoopbackServer) -> None:
    list_models(endpoint(server.base_url, headers={"X-Title": "desktop-chat"}))
    assert server.requests[0].headers["x-title"] == "desktop-chat"


def test_responses_flavour_lists_the_same_way(server: LoopbackServer) -> None:
    assert list_models(endpoint(server.base_url, api=ApiFlavour.RESPONSES)) == [
        "test-model", "other-model"]


def test_azure_listing(server: LoopbackServer) -> None:
    azure = endpoint(f"http://127.0.0.1:{server.port}", azure_api_version=AZURE_API_VERSION)
    assert list_models(azure) == ["test-model", "other-model"]
    [sent] = server.requests
    assert sent.path == "/openai/models"
    assert sent.query == {"api-version": AZURE_API_VERSION}
    assert sent.headers["api-key"] == TEST_KEY


def test_401_is_a_rejected_key(server: LoopbackServer) -> None:
    server.models_scenario = Scenario(status=401)
    error = models_error(endpoint(server.base_url))
    assert error.kind is ErrorKind.AUTH
    assert error.message == "The server rejected the API key. Open Settings to check it."
    assert error.detail == "Incorrect API key provided"


def test_401_without_a_key_says_none_is_set(server: LoopbackServer) -> None:
    server.models_scenario = Scenario(status=401)
    error = models_error(endpoint(server.base_url, key=None))
    assert error.kind is ErrorKind.NO_KEY
    assert error.message.startswith(f"No API key is set for {server.base_url}.")


def test_a_needed_key_that_is_missing_sends_nothing(server: LoopbackServer) -> None:
    error = models_error(endpoint(server.base_url, key=None, needs_key=True))
    assert error.kind is ErrorKind.NO_KEY
    assert server.requests == []


def test_connection_refused_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    error = models_error(endpoint(url))
    assert error.kind is ErrorKind.CONNECTION
    assert error.message == (
        f"Could not connect to {url}: Connection refused. Check that the server is running "
        "and the base URL is right."
    )


def test_no_model_list_at_that_url(server: LoopbackServer) -> None:
    url = f"http://127.0.0.1:{server.port}/api"
    error = models_error(endpoint(url))
    assert error.kind is ErrorKind.NO_MODEL_LIST
    assert error.status == 404
    assert error.message == (
        f"{url} gave no model list (HTTP 404). Type the model name instead, or check the base "
        "URL: OpenAI-compatible servers usually end in /v1."
    )


def test_server_error(server: LoopbackServer) -> None:
    server.models_scenario = Scenario(status=500)
    error = models_error(endpoint(server.base_url))
    assert error.kind is ErrorKind.SERVER
    assert error.message.startswith("The server failed with HTTP 500")


def test_timeout_uses_the_given_limit(server: LoopbackServer) -> None:
    server.models_scenario = Scenario(stall_before_headers=True)
    error = models_error(endpoint(server.base_url), timeout_s=0.3)
    assert error.kind is ErrorKind.TIMEOUT
    assert error.message.startswith(f"{server.base_url} did not answer within 0.3 s.")
