"""Server errors in words: an HTTP status is named in words for both API flavours, an error
page (HTML, or any body that is not a JSON error) is never quoted in the message, and its
text (markup stripped, secrets redacted, capped) is the error's detail for the log and the
window's Details. Errors in the middle of a stream too."""

from __future__ import annotations

import pytest

from desktop_chat.core.config.providers import ApiFlavour, Endpoint
from desktop_chat.core.llm import errors
from desktop_chat.core.llm.errors import DETAILS_LIMIT, ErrorKind
from desktop_chat.core.llm.events import TextDelta
from tests.conftest import TEST_KEY
from tests.support.client_run import failure, stream_all
from tests.support.openai_server import LoopbackServer, Scenario

# A CDN's error page, as proxies in front of providers send them.
PAGE = """<!DOCTYPE html>
<html lang="en"><head><title>503 Service Temporarily Unavailable</title>
<style>body { font-family: sans-serif; }</style><script>var x = "<b>not text</b>";</script>
</head><body>
<h1>Service Temporarily Unavailable</h1>
<p>The server is temporarily unable to service your request due to maintenance downtime
or capacity problems. Please try again later.&nbsp;&mdash; Ray ID: 7d1a2b3c</p>
<hr><center>nginx</center>
</body></html>"""
PAGE_TEXT = ("Service Temporarily Unavailable\nThe server is temporarily unable to service "
             "your request due to maintenance downtime or capacity problems. Please try again "
             "later. — Ray ID: 7d1a2b3c\nnginx")
STATUSES = [400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504,
            520, 521, 522, 523, 524, 525, 526, 529, 530]
FLAVOURS = [ApiFlavour.CHAT, ApiFlavour.RESPONSES]


def endpoint(server: LoopbackServer, api: ApiFlavour) -> Endpoint:
    return Endpoint(server.base_url, TEST_KEY, 2.0, 2.0, api=api)


@pytest.mark.parametrize("api", FLAVOURS, ids=["chat", "responses"])
@pytest.mark.parametrize("status", STATUSES)
def test_an_error_page_is_named_in_words_never_quoted(
        server: LoopbackServer, status: int, api: ApiFlavour) -> None:
    server.push(Scenario(status=status, error_body=PAGE))
    error = failure(stream_all(endpoint(server, api)))
    assert error.status == status
    assert f"(HTTP {status})" in error.message or error.kind in (
        ErrorKind.AUTH, ErrorKind.RATE_LIMITED, ErrorKind.MODEL_NOT_FOUND)
    for raw in ("<", "nginx", "Ray ID", "DOCTYPE", "maintenance"):
        assert raw not in error.message
    assert error.detail == PAGE_TEXT  # no tags, no script or style, entities decoded


@pytest.mark.parametrize(("status", "words"), [
    (400, "The server could not accept the request (HTTP 400)"),
    (408, "The server timed out waiting for the request (HTTP 408)"),
    (409, "The server reported a conflict with another request (HTTP 409)"),
    (413, "The request is too large for the server (HTTP 413)"),
    (422, "The server could not process the request (HTTP 422)"),
    (500, "The server had an internal error (HTTP 500)"),
    (502, "A gateway in front of the server got no valid answer from it (HTTP 502)"),
    (503, "The server is temporarily unavailable (HTTP 503)"),
    (504, "A gateway in front of the server timed out waiting for it (HTTP 504)"),
    (520, "The server returned an unknown error to its gateway (HTTP 520)"),
    (522, "The connection from the gateway to the server timed out (HTTP 522)"),
    (524, "The server took too long to answer its gateway (HTTP 524)"),
    (529, "The server is overloaded (HTTP 529)"),
    (418, "The server refused the request (HTTP 418)"),
    (599, "The server failed (HTTP 599)"),
], ids=str)
def test_statuses_in_words(server: LoopbackServer, status: int, words: str) -> None:
    server.push(Scenario(status=status, error_body="<html><body>oops</body></html>"))
    error = failure(stream_all(endpoint(server, ApiFlavour.CHAT)))
    assert error.message.startswith(words + ". ")  # then what to do
    assert error.detail == "oops"


def test_a_json_error_message_is_quoted_in_the_words(server: LoopbackServer) -> None:
    server.push(Scenario(status=503, error_body={"error": {"message": "Engine overloaded"}}))
    error = failure(stream_all(endpoint(server, ApiFlavour.RESPONSES)))
    assert error.message == ("The server is temporarily unavailable (HTTP 503): Engine "
                             "overloaded. Try again in a moment.")


def test_a_fastapi_style_detail_is_the_servers_words(server: LoopbackServer) -> None:
    server.push(Scenario(status=422, error_body={"detail": "temperature must be <= 2"}))
    error = failure(stream_all(endpoint(server, ApiFlavour.CHAT)))
    assert error.message == ("The server could not process the request (HTTP 422): "
                             "temperature must be <= 2.")


def test_a_short_plain_text_body_is_quoted(server: LoopbackServer) -> None:
    server.push(Scenario(status=502, error_body="upstream connect error"))
    error = failure(stream_all(endpoint(server, ApiFlavour.CHAT)))
    assert error.message == ("A gateway in front of the server got no valid answer from it "
                             "(HTTP 502): upstream connect error. Try again in a moment.")


def test_a_huge_body_is_capped_and_redacted(server: LoopbackServer) -> None:
    body = f"<html><body><p>key {TEST_KEY} was refused</p><pre>{'x ' * 50_000}</pre></body></html>"
    server.push(Scenario(status=500, error_body=body))
    error = failure(stream_all(endpoint(server, ApiFlavour.CHAT)))
    assert len(error.detail) == DETAILS_LIMIT
    assert error.detail.startswith("key [REDACTED] was refused\n")
    assert TEST_KEY not in error.message + error.detail


@pytest.mark.parametrize("api", FLAVOURS, ids=["chat", "responses"])
def test_an_error_page_arriving_mid_stream(server: LoopbackServer, api: ApiFlavour) -> None:
    """An in-stream error event whose message is a page: kept text, words, the page's text
    as detail."""
    scenario = Scenario(deltas=["Part one. ", "Part two."], stream_error_after_events=1,
                        stream_error={"message": PAGE, "type": "server_error"})
    if api is ApiFlavour.RESPONSES:
        scenario = Scenario(deltas=["Part one. ", "Part two."],
                            response_error={"code": "server_error", "message": PAGE})
    server.push(scenario)
    events = stream_all(endpoint(server, api))
    assert any(isinstance(e, TextDelta) for e in events)
    error = failure(events)
    assert error.kind is ErrorKind.STREAM_ERROR
    assert error.message == "The server reported an error while replying (see Details)."
    assert error.detail.startswith(PAGE_TEXT)


def test_words_in_an_in_stream_error_are_quoted() -> None:
    error = errors.stream_error("The model crashed", "code=500")
    assert error.message == "The server reported an error while replying: The model crashed"


def test_page_text_of_broken_markup() -> None:
    assert errors.page_text("<p>one<p>two &amp; <b>three</b>") == "one\ntwo & three"
    assert errors.page_text("<html><head><title>Bad Gateway</title></head></html>") == \
        "Bad Gateway"
