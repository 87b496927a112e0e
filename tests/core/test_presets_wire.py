"""Each preset's request shape on the wire: URL, auth header, extra headers, parameter names.

Hosted presets (OpenAI, Groq) cannot be reached from a test, so their requests go through the
loopback server acting as a manual HTTP proxy: it records the absolute URL the client asked
for, with the preset's host and path (the scheme is http because a plain proxy cannot see
inside TLS). Local presets and Azure talk to the loopback server directly.
"""

from __future__ import annotations

import dataclasses

import pytest

from desktop_chat.core.config.providers import (
    APP_URL,
    AZURE,
    AZURE_API_VERSION,
    LOCAL_PRESETS,
    ApiFlavour,
    Endpoint,
    GenerationParams,
    Preset,
    Profile,
    preset,
)
from desktop_chat.core.llm.client import ChatRequest
from desktop_chat.core.llm.events import Finished, TextDelta
from tests.conftest import TEST_KEY
from tests.support.client_run import HI, stream_all
from tests.support.openai_server import LoopbackServer, RecordedRequest

CHAT_KEYS = {"model", "messages", "stream", "stream_options"}
PARAMS = GenerationParams(temperature=0.3, top_p=0.9, max_tokens=64, reasoning_effort="low")


def profile(key: str, **changes: object) -> Profile:
    return dataclasses.replace(preset(key).new_profile(key), **changes)


def via_proxy(server: LoopbackServer, prof: Profile, key: str | None = TEST_KEY,
              request: ChatRequest = HI) -> RecordedRequest:
    """Send one request for a hosted profile through the loopback server as proxy."""
    http_url = prof.base_url.replace("https://", "http://", 1)
    proxy = f"http://127.0.0.1:{server.port}"
    endpoint = Endpoint.for_profile(dataclasses.replace(prof, base_url=http_url), key,
                                    connect_timeout_s=2, read_timeout_s=5, proxy_url=proxy)
    events = stream_all(endpoint, request)
    assert events[-1] == Finished("stop"), events
    [sent] = server.requests
    return sent


def direct(server: LoopbackServer, prof: Profile, key: str | None = TEST_KEY,
           request: ChatRequest = HI) -> RecordedRequest:
    endpoint = Endpoint.for_profile(prof, key, connect_timeout_s=2, read_timeout_s=5)
    events = stream_all(endpoint, request)
    assert events[-1] == Finished("stop"), events
    [sent] = server.requests
    return sent


# -- hosted presets -----------------------------------------------------------------------------


def test_openai_preset(server: LoopbackServer) -> None:
    request = ChatRequest("gpt-4o-mini", HI.messages, GenerationParams(max_tokens=50))
    sent = via_proxy(server, profile("openai"), request=request)
    assert sent.target == "http://api.openai.com/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert sent.body is not None
    # OpenAI takes max_completion_tokens (reasoning models refuse max_tokens)
    assert sent.body["max_completion_tokens"] == 50
    assert "max_tokens" not in sent.body


def test_groq_preset(server: LoopbackServer) -> None:
    request = ChatRequest("llama-3.1-8b-instant", HI.messages, GenerationParams(max_tokens=50))
    sent = via_proxy(server, profile("groq"), request=request)
    assert sent.target == "http://api.groq.com/openai/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert sent.body is not None
    assert sent.body["max_tokens"] == 50
    assert "max_completion_tokens" not in sent.body


def test_openrouter_preset_sends_its_attribution_headers(server: LoopbackServer) -> None:
    sent = direct(server, profile("openrouter", base_url=server.base_url))
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["http-referer"] == APP_URL
    assert sent.headers["x-title"] == "desktop-chat"
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"


@pytest.mark.parametrize("local", LOCAL_PRESETS, ids=lambda p: p.key)
def test_local_presets_reach_their_base_url_without_a_key(
    server: LoopbackServer, local: Preset
) -> None:
    prof = profile(local.key)
    assert not prof.needs_key
    sent = via_proxy(server, prof, key=None)
    assert sent.target == f"{prof.base_url}/chat/completions"
    assert sent.target.startswith("http://127.0.0.1:")
    assert sent.headers["authorization"] == "Bearer no-key-set"


# -- Azure --------------------------------------------------------------------------------------


def azure(server: LoopbackServer, **changes: object) -> Profile:
    fields: dict[str, object] = {"base_url": f"http://127.0.0.1:{server.port}",
                                 "model": "chat-deploy", **changes}
    return profile(AZURE, **fields)


def test_azure_url_api_key_header_and_api_version(server: LoopbackServer) -> None:
    prof = azure(server)
    request = ChatRequest(prof.model, HI.messages, GenerationParams(max_tokens=40))
    sent = direct(server, prof, request=request)
    assert sent.path == "/openai/deployments/chat-deploy/chat/completions"
    assert sent.query == {"api-version": AZURE_API_VERSION}
    assert sent.headers["api-key"] == TEST_KEY
    assert "authorization" not in sent.headers
    assert sent.body is not None
    assert sent.body["max_completion_tokens"] == 40
    assert "max_tokens" not in sent.body


def test_azure_named_deployment_and_pasted_openai_suffix(server: LoopbackServer) -> None:
    prof = azure(server, azure_deployment="prod-gpt4o",
                 base_url=f"http://127.0.0.1:{server.port}/openai/")
    sent = direct(server, prof)
    assert sent.path == "/openai/deployments/prod-gpt4o/chat/completions"
    assert sent.query == {"api-version": AZURE_API_VERSION}


@pytest.mark.parametrize(("deployment", "model"), [("", "test-model"), ("prod", "prod")])
def test_azure_responses_api(server: LoopbackServer, deployment: str, model: str) -> None:
    sent = direct(server, azure(server, api=ApiFlavour.RESPONSES, azure_deployment=deployment))
    assert sent.path == "/openai/responses"
    assert sent.query == {"api-version": AZURE_API_VERSION}
    assert sent.headers["api-key"] == TEST_KEY
    assert sent.body is not None
    assert sent.body["model"] == model  # the deployment, when one is named


def test_azure_without_a_key_fails_before_any_request(server: LoopbackServer) -> None:
    endpoint = Endpoint.for_profile(azure(server), None)
    events = stream_all(endpoint)
    assert len(events) == 1
    assert server.requests == []


# -- headers and parameters ---------------------------------------------------------------------


def test_extra_headers_are_sent(server: LoopbackServer) -> None:
    prof = profile("custom", base_url=server.base_url,
                   extra_headers={"X-Team": "blue", "X-Trace": "on"})
    sent = direct(server, prof)
    assert sent.headers["x-team"] == "blue"
    assert sent.headers["x-trace"] == "on"


def test_unset_params_are_not_sent(server: LoopbackServer) -> None:
    sent = direct(server, profile("custom", base_url=server.base_url))
    assert sent.body is not None
    assert set(sent.body) == CHAT_KEYS


def test_set_params_are_sent(server: LoopbackServer) -> None:
    request = ChatRequest("test-model", HI.messages, PARAMS)
    sent = direct(server, profile("custom", base_url=server.base_url), request=request)
    assert sent.body is not None
    assert {k: v for k, v in sent.body.items() if k not in CHAT_KEYS} == {
        "temperature": 0.3, "top_p": 0.9, "max_tokens": 64, "reasoning_effort": "low",
    }


def test_partly_set_params(server: LoopbackServer) -> None:
    request = ChatRequest("test-model", HI.messages, GenerationParams(temperature=0.0))
    sent = direct(server, profile("custom", base_url=server.base_url), request=request)
    assert sent.body is not None
    assert {k: v for k, v in sent.body.items() if k not in CHAT_KEYS} == {"temperature": 0.0}


def test_image_parts_pass_through_unchanged(server: LoopbackServer) -> None:
    parts = [{"type": "text", "text": "What is this?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    messages = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": parts}]
    request = ChatRequest("vision-model", messages)
    sent = direct(server, profile("custom", base_url=server.base_url), request=request)
    assert sent.body is not None
    assert sent.body["messages"] == messages


# -- Endpoint.for_profile -----------------------------------------------------------------------


def test_for_profile_copies_what_the_client_needs() -> None:
    prof = profile(AZURE, base_url="https://res.openai.azure.com", azure_deployment="d1",
                   api=ApiFlavour.RESPONSES, extra_headers={"X-A": "1"})
    endpoint = Endpoint.for_profile(prof, "k", connect_timeout_s=3, read_timeout_s=4,
                                    proxy_url="http://proxy:3128")
    assert endpoint == Endpoint(
        "https://res.openai.azure.com", "k", 3, 4, headers={"X-A": "1"},
        api=ApiFlavour.RESPONSES, azure_api_version=AZURE_API_VERSION, azure_deployment="d1",
        needs_key=True, proxy_url="http://proxy:3128",
    )
    assert endpoint.is_azure


@pytest.mark.parametrize(
    ("endpoint", "needs_key", "max_field"),
    [
        (Endpoint("https://api.openai.com/v1", None), True, "max_completion_tokens"),
        (Endpoint("https://x.openai.azure.com", None, azure_api_version="v"), True,
         "max_completion_tokens"),
        (Endpoint("http://127.0.0.1:11434/v1", None), False, "max_tokens"),
        (Endpoint("https://api.openai.com/v1", None, needs_key=False), False,
         "max_completion_tokens"),
        (Endpoint("http://[broken", None), False, "max_tokens"),
    ],
    ids=["openai", "azure", "local", "overridden", "malformed-url"],
)
def test_endpoint_defaults(endpoint: Endpoint, needs_key: bool, max_field: str) -> None:
    assert endpoint.needs_key is needs_key
    assert endpoint.max_tokens_field == max_field


def test_the_reply_arrives_through_every_shape(server: LoopbackServer) -> None:
    """Control for the shape tests above: the loopback reply is parsed as usual."""
    endpoint = Endpoint.for_profile(azure(server), TEST_KEY)
    assert stream_all(endpoint)[:2] == [TextDelta("Hello"), TextDelta(" world")]
