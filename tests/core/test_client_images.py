"""A server that refuses image parts, or a parameter the user set, gets one clear message
naming what to change, not its raw 400 text."""

from __future__ import annotations

import pytest

from desktop_chat.core.config.providers import ApiFlavour, Endpoint, GenerationParams
from desktop_chat.core.llm.client import ChatRequest
from desktop_chat.core.llm.errors import ErrorKind
from tests.conftest import TEST_KEY
from tests.support.client_run import failure, stream_all
from tests.support.openai_server import LoopbackServer, Scenario

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
WITH_IMAGE = ChatRequest("text-only", [
    {"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]}])
WITHOUT_IMAGE = ChatRequest("text-only", [{"role": "user", "content": "What is this?"}])
REJECTED = "Model 'text-only' does not accept images. Remove the image or pick a vision model."


def refusal(status: int, message: str) -> Scenario:
    return Scenario(status=status, error_body={"error": {"message": message}})


@pytest.mark.parametrize(
    ("status", "server_says"),
    [
        (400, "Invalid content type. image_url is only supported by certain models."),
        (400, "This model does not support vision input"),
        (422, "Multimodal input is not enabled for this model"),
        (500, "image input is not supported - hint: you may need to provide the mmproj"),
    ],
    ids=["openai", "vision", "multimodal", "llama.cpp"],
)
@pytest.mark.parametrize("api", list(ApiFlavour))
def test_images_rejected(
    server: LoopbackServer, status: int, server_says: str, api: ApiFlavour
) -> None:
    server.push(refusal(status, server_says))
    error = failure(stream_all(Endpoint(server.base_url, TEST_KEY, api=api), WITH_IMAGE))
    assert error.kind is ErrorKind.IMAGES_REJECTED
    assert error.message == REJECTED
    assert error.status == status
    assert error.detail == server_says


def test_the_same_text_without_an_image_is_a_plain_refusal(server: LoopbackServer) -> None:
    server.push(refusal(400, "image_url is only supported by certain models"))
    error = failure(stream_all(Endpoint(server.base_url, TEST_KEY), WITHOUT_IMAGE))
    assert error.kind is ErrorKind.BAD_REQUEST
    assert error.message == (
        "The server could not accept the request (HTTP 400): image_url is only supported by "
        "certain models.")


def test_an_unrelated_refusal_with_an_image_keeps_its_own_text(server: LoopbackServer) -> None:
    server.push(refusal(400, "context_length_exceeded"))
    error = failure(stream_all(Endpoint(server.base_url, TEST_KEY), WITH_IMAGE))
    assert error.kind is ErrorKind.BAD_REQUEST
    assert error.message == ("The server could not accept the request (HTTP 400): "
                             "context_length_exceeded.")


def test_a_rejected_key_stays_a_key_problem(server: LoopbackServer) -> None:
    server.push(refusal(401, "Invalid API key for vision models"))
    error = failure(stream_all(Endpoint(server.base_url, TEST_KEY), WITH_IMAGE))
    assert error.kind is ErrorKind.AUTH


# -- a parameter the model does not take ------------------------------------------------------

@pytest.mark.parametrize(
    ("params", "server_says", "named"),
    [
        (GenerationParams(reasoning_effort="high"),
         "Unrecognized request argument supplied: reasoning_effort", "reasoning effort"),
        (GenerationParams(temperature=0.2),
         "Unsupported value: 'temperature' does not support 0.2 with this model. Only the "
         "default (1) value is supported.", "temperature"),
        (GenerationParams(max_tokens=100),
         "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
         "'max_completion_tokens' instead.", "max tokens"),
    ],
    ids=["reasoning", "temperature", "max-tokens"],
)
def test_a_setting_the_model_refuses_is_named(
    server: LoopbackServer, params: GenerationParams, server_says: str, named: str
) -> None:
    server.push(refusal(400, server_says))
    request = ChatRequest("o-model", [{"role": "user", "content": "Hi"}], params)
    error = failure(stream_all(Endpoint(server.base_url, TEST_KEY), request))
    assert error.kind is ErrorKind.PARAM_REJECTED
    assert error.message == (
        f"Model 'o-model' does not accept the {named} setting. Set it back to \"Server "
        "default\" in Settings (Chat) or in this conversation's settings, then send again.")
    assert error.detail == server_says


def test_a_refusal_naming_a_setting_the_user_left_alone_is_a_plain_refusal(
    server: LoopbackServer,
) -> None:
    server.push(refusal(400, "Unsupported value: 'temperature' does not support 0.7"))
    request = ChatRequest("o-model", [{"role": "user", "content": "Hi"}])  # nothing set
    error = failure(stream_all(Endpoint(server.base_url, TEST_KEY), request))
    assert error.kind is ErrorKind.BAD_REQUEST
