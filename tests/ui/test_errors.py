"""Every failure a user can meet ends in a clear message in the window; nothing typed or
received is lost, and the window keeps working."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver

PROMPT = "Explain monads — briefly, please"
FAST_TIMEOUTS = {"read_timeout_s": 1.0, "connect_timeout_s": 2.0}


def banner(chat: ChatDriver) -> str:
    """The error shown: a reply's in its card in the transcript, others in the banner."""
    shown = chat.window.shown_error()
    assert shown, "no error shown"
    return shown


def assert_prompt_handed_back(chat: ChatDriver) -> None:
    """Failed before any text: the prompt is back in the composer, not duplicated."""
    assert chat.window.composer.toPlainText() == PROMPT
    assert PROMPT not in chat.transcript_text()
    assert not chat.window.stopButton.isEnabled()
    assert chat.window.sendButton.isEnabled()


def assert_partial_reply_kept(chat: ChatDriver, received: str) -> None:
    transcript = chat.transcript_text()
    assert PROMPT in transcript
    assert received in transcript
    chat.copy_last_reply()
    assert chat.clipboard() == received
    assert chat.window.stateLabel.text() == "Interrupted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- failures before any text: message + prompt handed back ---------------------------------

@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (Scenario(status=401), "The server rejected the API key. Open Settings to check it."),
        (Scenario(status=404), "Model 'test-model' is not available on this server. "
                               "Pick another model."),
        (Scenario(status=500), "The server failed with HTTP 500"),
        (Scenario(status=502, error_body="<html>Bad Gateway</html>"),
         "The server failed with HTTP 502"),
        (Scenario(status=400, error_body={"error": {"message": "context_length_exceeded"}}),
         "The server refused the request (HTTP 400): context_length_exceeded"),
    ],
    ids=["401", "404-model", "500", "502-html", "400"],
)
def test_http_error_before_text(
    chat: ChatDriver, server: LoopbackServer, scenario: Scenario, expected: str
) -> None:
    server.push(scenario)
    chat.send(PROMPT)
    chat.wait_for_reply()
    assert expected in banner(chat)
    assert_prompt_handed_back(chat)


def test_no_key_for_openai(make_window: Callable[..., ChatDriver]) -> None:
    chat = make_window(key=None, base_url="https://api.openai.com/v1")
    assert "No API key is set" in banner(chat)  # said at start, before any send
    chat.send(PROMPT)
    chat.wait_for_reply()
    assert "No API key is set for https://api.openai.com/v1" in banner(chat)
    assert "OPENAI_API_KEY" in banner(chat)
    assert_prompt_handed_back(chat)


def test_local_server_without_key_works(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    chat = make_window(key=None)
    chat.send(PROMPT)
    chat.wait_for_reply()
    assert "Hello world" in chat.transcript_text()
    assert not chat.window.errorBanner.isVisible()


def test_local_server_demanding_a_key_says_none_is_set(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    chat = make_window(key=None)
    server.push(Scenario(status=401))
    chat.send(PROMPT)
    chat.wait_for_reply()
    assert "No API key is set" in banner(chat)
    assert_prompt_handed_back(chat)


def test_connection_refused_names_url_and_cause(make_window: Callable[..., ChatDriver]) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    chat = make_window(base_url=url, settings=FAST_TIMEOUTS)
    chat.send(PROMPT)
    chat.wait_for_reply()
    assert f"Could not connect to {url}: Connection refused" in banner(chat)
    assert_prompt_handed_back(chat)


def test_wrong_base_url_path(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    chat = make_window(base_url=server.base_url.removesuffix("/v1") + "/api")
    chat.send(PROMPT)
    chat.wait_for_reply()
    assert "has no chat endpoint (HTTP 404). Check the base URL" in banner(chat)
    assert_prompt_handed_back(chat)


def test_timeout_before_first_byte(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    chat = make_window(settings=FAST_TIMEOUTS)
    server.push(Scenario(stall_before_headers=True))
    chat.send(PROMPT)
    chat.wait_for_reply()
    assert "did not answer within 1 s" in banner(chat)
    assert_prompt_handed_back(chat)


def test_rate_limit_retries_visibly_then_succeeds(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    chat = make_window()
    server.push(Scenario(status=429, headers={"Retry-After": "1"}), Scenario(deltas=["ok"]))
    chat.send(PROMPT)
    seen: list[str] = []
    chat.when(lambda: "retrying" in chat.window.stateLabel.text(),
              lambda: seen.append(chat.window.stateLabel.text()))
    assert seen == ["Rate limited by the server — retrying in 1 s…"]
    assert "ok" in chat.transcript_text()
    assert len(server.requests) == 2


def test_rate_limit_gives_up_with_clear_stop(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    chat = make_window()
    limited = Scenario(status=429, headers={"Retry-After": "0"})
    server.push(limited, limited, limited)
    chat.send(PROMPT)
    chat.wait_for_reply()
    assert "Rate limited by the server" in banner(chat)
    assert len(server.requests) == 3  # the first try and two retries
    assert_prompt_handed_back(chat)


def test_long_retry_after_is_reported_not_waited(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    chat = make_window()
    server.push(Scenario(status=429, headers={"Retry-After": "600"}))
    chat.send(PROMPT)
    chat.wait_for_reply(timeout=5)
    assert "it asked to wait 600 s" in banner(chat)
    assert len(server.requests) == 1


# -- failures after some text: text kept, marked interrupted --------------------------------

RECEIVED = ["Monads are ", "a way to ", "chain steps."]


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (Scenario(deltas=[*RECEIVED, "x" * 400], disconnect_after_bytes=700),
         "The reply was interrupted: the connection to the server was lost."),
        (Scenario(deltas=[*RECEIVED, "never"], malformed_after_events=3),
         "The server sent a malformed response"),
        (Scenario(deltas=[*RECEIVED, "never"], stream_error_after_events=3),
         "The server reported an error while replying: The model crashed"),
        (Scenario(deltas=[*RECEIVED, "never"], stall_after_events=3),
         "The reply was interrupted: the server sent nothing for 1 s."),
        (Scenario(deltas=RECEIVED, finish_reason=None, send_done=False),
         "the server ended the stream before the reply was complete"),
    ],
    ids=["cut", "malformed", "in-stream-error", "stall", "no-finish"],
)
def test_failure_mid_reply_keeps_text(
    make_window: Callable[..., ChatDriver], server: LoopbackServer, scenario: Scenario,
    expected: str,
) -> None:
    chat = make_window(settings=FAST_TIMEOUTS)
    server.push(scenario)
    chat.send(PROMPT)
    chat.type("next question, typed while waiting")
    chat.wait_for_reply()
    assert expected in banner(chat)
    assert expected in chat.transcript_text()  # the reply itself is marked
    assert_partial_reply_kept(chat, "".join(RECEIVED))
    assert chat.window.composer.toPlainText() == "next question, typed while waiting"


def test_prompt_handed_back_keeps_text_typed_meanwhile(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    chat = make_window(settings=FAST_TIMEOUTS)
    server.push(Scenario(stall_before_headers=True))
    chat.send(PROMPT)
    chat.type("typed while waiting")
    chat.wait_for_reply()
    assert chat.window.composer.toPlainText() == f"{PROMPT}\n\ntyped while waiting"


def test_window_keeps_working_after_errors(chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(status=500), Scenario(deltas=["fine ", "now"]))
    chat.send(PROMPT)
    chat.wait_for_reply()
    chat.press_enter()  # resend the handed-back prompt
    chat.wait_for_reply()
    assert not chat.window.errorBanner.isVisible()
    chat.copy_last_reply()
    assert chat.clipboard() == "fine now"
    messages = server.requests[-1].body["messages"]
    assert [m["content"] for m in messages] == [PROMPT]  # the failed try left no trace
