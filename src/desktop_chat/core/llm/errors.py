"""Errors a user can meet, each with the text the window shows.

The message says what happened and what to do; `detail` is the technical cause, for the log
and the window's "Details". An HTTP error names its status in words ("The server is
temporarily unavailable (HTTP 503)"); the server's own words join the message only when they
came as a JSON error message. Any other body (an HTML error page from a proxy or a CDN,
plain text) is never shown raw: its text, with the markup stripped, secrets redacted and
capped at `DETAILS_LIMIT` characters, is the error's `detail`.
"""

from __future__ import annotations

import enum
import html
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from desktop_chat.core.config.providers import is_local_host
from desktop_chat.core.logs import redact_secrets

DETAILS_LIMIT = 2_000  # characters of a server's error body kept for the log and Details
_SAID_LIMIT = 200  # characters of a server's own message put into ours
# (what happened, what to do) for each status; other statuses by their class
_STATUS_WORDS: dict[int, tuple[str, str]] = {
    400: ("The server could not accept the request",
          "Check this conversation's settings, or shorten it, then try again."),
    401: ("The server rejected the API key", "Open Settings to check it."),
    403: ("The server refused access", "Open Settings to check the API key and its "
          "permissions."),
    404: ("The server has no such endpoint or model", "Check the base URL and the model."),
    405: ("The server does not allow this request", "Check the base URL."),
    408: ("The server timed out waiting for the request", "Try again."),
    409: ("The server reported a conflict with another request", "Try again in a moment."),
    413: ("The request is too large for the server",
          "Remove an attachment or start a new conversation, then try again."),
    422: ("The server could not process the request",
          "Check this conversation's settings and the model, then try again."),
    429: ("The server is rate limiting requests", "Wait a moment, then send again."),
    500: ("The server had an internal error", "Try again in a moment."),
    501: ("The server does not support this request", "Check the base URL and the API type "
          "in Settings."),
    502: ("A gateway in front of the server got no valid answer from it",
          "Try again in a moment."),
    503: ("The server is temporarily unavailable", "Try again in a moment."),
    504: ("A gateway in front of the server timed out waiting for it",
          "Try again in a moment."),
    # Cloudflare's own statuses, between the visitor and the provider's server
    520: ("The server returned an unknown error to its gateway", "Try again in a moment."),
    521: ("The server is down (its gateway could not reach it)", "Try again later."),
    522: ("The connection from the gateway to the server timed out", "Try again in a moment."),
    523: ("The server is unreachable from its gateway", "Try again later."),
    524: ("The server took too long to answer its gateway", "Try again in a moment."),
    525: ("The gateway could not make a secure connection to the server", "Try again later."),
    526: ("The server's certificate is not valid for its gateway", "Try again later."),
    529: ("The server is overloaded", "Try again in a moment."),
    530: ("The gateway could not find the server", "Try again later."),
}


class ErrorKind(enum.Enum):
    NO_KEY = "no_key"
    AUTH = "auth"
    MODEL_NOT_FOUND = "model_not_found"
    RATE_LIMITED = "rate_limited"
    BAD_REQUEST = "bad_request"
    SERVER = "server"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    MALFORMED = "malformed"
    STREAM_ERROR = "stream_error"
    IMAGES_REJECTED = "images_rejected"
    TOOLS_REJECTED = "tools_rejected"
    PARAM_REJECTED = "param_rejected"
    NO_MODEL_LIST = "no_model_list"
    BAD_PROXY = "bad_proxy"
    BAD_URL = "bad_url"
    UNEXPECTED = "unexpected"


class ChatError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        detail: str = "",
        retry_after_s: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.status = status

    def __repr__(self) -> str:
        return f"ChatError({self.kind.value}, {self.message!r}, detail={self.detail!r})"


def no_key(base_url: str) -> ChatError:
    return ChatError(
        ErrorKind.NO_KEY,
        f"No API key is set for {base_url}. Open Settings (Ctrl+,) to enter one, or set its "
        "environment variable, such as OPENAI_API_KEY, and restart.",
    )


def auth_rejected(detail: str, status: int) -> ChatError:
    return ChatError(
        ErrorKind.AUTH,
        "The server rejected the API key. Open Settings to check it.",
        detail=detail,
        status=status,
    )


def model_not_found(model: str, detail: str) -> ChatError:
    return ChatError(
        ErrorKind.MODEL_NOT_FOUND,
        f"Model '{model}' is not available on this server. Pick another model.",
        detail=detail,
        status=404,
    )


def no_chat_endpoint(base_url: str, detail: str) -> ChatError:
    return ChatError(
        ErrorKind.BAD_REQUEST,
        f"{base_url} has no chat endpoint (HTTP 404). Check the base URL: OpenAI-compatible "
        "servers usually end in /v1.",
        detail=detail,
        status=404,
    )


def no_responses_endpoint(base_url: str, detail: str) -> ChatError:
    return ChatError(
        ErrorKind.BAD_REQUEST,
        f"{base_url} has no Responses API (HTTP 404). Set the profile's API to Chat "
        "Completions in Settings, or check the base URL.",
        detail=detail,
        status=404,
    )


def rate_limited(detail: str, retry_after_s: float | None) -> ChatError:
    wait = f" (it asked to wait {retry_after_s:.0f} s)" if retry_after_s else ""
    return ChatError(
        ErrorKind.RATE_LIMITED,
        f"Rate limited by the server{wait}. Wait a moment, then send again.",
        detail=detail,
        retry_after_s=retry_after_s,
        status=429,
    )


def status_words(status: int) -> tuple[str, str]:
    """(what happened, what to do) for an HTTP status, in words."""
    if status in _STATUS_WORDS:
        return _STATUS_WORDS[status]
    if status >= 500:
        return "The server failed", "Try again in a moment."
    return "The server refused the request", "Check the settings, then try again."


def server_error(status: int, said: str, details: str = "") -> ChatError:
    """An HTTP status >= 500 (or another the client cannot map): `said` is the server's own
    short message (a JSON error), `details` the body as text."""
    words, advice = status_words(status)
    return ChatError(
        ErrorKind.SERVER,
        f"{words} (HTTP {status}){_said(said)}. {advice}",
        detail=details or said,
        status=status,
    )


def bad_request(status: int, said: str, details: str = "") -> ChatError:
    """A status < 500 the client has no better words for (400, 408, 409, 413, 422 ...)."""
    words, advice = status_words(status)
    message = f"{words} (HTTP {status}){_said(said)}."
    return ChatError(
        ErrorKind.BAD_REQUEST,
        message if said else f"{message} {advice}",
        detail=details or said,
        status=status,
    )


# What the system says when this computer has no usable network (no route, no DNS answer).
_OFFLINE_CAUSES = ("name or service not known", "temporary failure in name resolution",
                   "nodename nor servname", "getaddrinfo failed", "no address associated",
                   "network is unreachable", "no route to host", "network is down")


def connection_failed(base_url: str, cause: str) -> ChatError:
    """A local server that does not answer is probably not running; a remote one that
    cannot even be looked up or routed to means the network is unreachable."""
    host = (urlsplit(base_url).hostname or "") if "://" in base_url else ""
    if host and not is_local_host(host) and any(
            known in cause.lower() for known in _OFFLINE_CAUSES):
        return ChatError(
            ErrorKind.CONNECTION,
            f"Could not reach {host}: the network is unreachable ({cause}). Check that this "
            "computer is online (and the proxy settings, if you use one), then try again.",
            detail=cause,
        )
    return ChatError(
        ErrorKind.CONNECTION,
        f"Could not connect to {base_url}: {cause}. Check that the server is running "
        "and the base URL is right.",
        detail=cause,
    )


def no_first_byte(base_url: str, timeout_s: float) -> ChatError:
    return ChatError(
        ErrorKind.TIMEOUT,
        f"{base_url} did not answer within {timeout_s:g} s. The server may be overloaded "
        "or still loading the model; try again.",
    )


def interrupted(cause: str) -> ChatError:
    return ChatError(
        ErrorKind.INTERRUPTED,
        f"The reply was interrupted: {cause}. The text received so far is kept.",
        detail=cause,
    )


def malformed(detail: str) -> ChatError:
    return ChatError(
        ErrorKind.MALFORMED,
        "The server sent a malformed response, so the reply stopped. "
        "The text received so far is kept.",
        detail=detail,
    )


def stream_error(message: str, detail: str) -> ChatError:
    """An error event in the stream: its message is shown when it is words, not a page."""
    words = server_text(message)
    if words.said:
        return ChatError(ErrorKind.STREAM_ERROR,
                         f"The server reported an error while replying: {words.said}",
                         detail=detail)
    return ChatError(ErrorKind.STREAM_ERROR,
                     "The server reported an error while replying (see Details).",
                     detail=f"{words.details}\n{detail}".strip())


def images_rejected(model: str, status: int, detail: str) -> ChatError:
    return ChatError(
        ErrorKind.IMAGES_REJECTED,
        f"Model '{model}' does not accept images. Remove the image or pick a vision model.",
        detail=detail,
        status=status,
    )


def no_embeddings(model: str, status: int, detail: str) -> ChatError:
    """The server has no /embeddings endpoint, or not this embeddings model."""
    return ChatError(
        ErrorKind.MODEL_NOT_FOUND if status == 404 else ErrorKind.BAD_REQUEST,
        f"The server gave no embeddings for model '{model}' (HTTP {status}"
        f"{': ' + detail if detail else ''}).",
        detail=detail,
        status=status,
    )


def tools_rejected(model: str, status: int, detail: str) -> ChatError:
    """A model or server that does not do tool calling refused the request's `tools`."""
    return ChatError(
        ErrorKind.TOOLS_REJECTED,
        f"Model '{model}' does not accept tools ({detail or f'HTTP {status}'}). Turn tools off "
        "for this conversation (Tools → Use tools in this conversation) or pick a model that "
        "supports tool calling, then send again.",
        detail=detail,
        status=status,
    )


def param_rejected(model: str, settings: list[str], status: int, detail: str) -> ChatError:
    """A model that does not take a parameter the user set (o-series and temperature,
    reasoning effort on a model that does not reason ...)."""
    named = " and ".join(settings)
    return ChatError(
        ErrorKind.PARAM_REJECTED,
        f"Model '{model}' does not accept the {named} setting. Set it back to "
        "\"Server default\" in Settings (Chat) or in this conversation's settings, then send "
        "again.",
        detail=detail,
        status=status,
    )


def no_model_list(base_url: str, status: int, detail: str) -> ChatError:
    return ChatError(
        ErrorKind.NO_MODEL_LIST,
        f"{base_url} gave no model list (HTTP {status}). Type the model name instead, or check "
        "the base URL: OpenAI-compatible servers usually end in /v1.",
        detail=detail,
        status=status,
    )


def bad_proxy(proxy_url: str, cause: str) -> ChatError:
    return ChatError(
        ErrorKind.BAD_PROXY,
        f"The proxy address '{_hide_credentials(proxy_url)}' is not valid: {cause}. Fix it in "
        "Settings, or set the proxy back to the system setting.",
        detail=cause,
    )


def bad_base_url(base_url: str, cause: str) -> ChatError:
    shown = f"The base URL '{base_url}'" if base_url else "The base URL"
    return ChatError(
        ErrorKind.BAD_URL,
        f"{shown} is not valid: {cause}. Fix it in Settings; it looks like "
        "http://127.0.0.1:11434/v1 or https://api.openai.com/v1.",
        detail=cause,
    )


def unexpected(detail: str) -> ChatError:
    return ChatError(
        ErrorKind.UNEXPECTED,
        "Something went wrong while talking to the server. Details are in the log file.",
        detail=detail,
    )


def _hide_credentials(url: str) -> str:
    """'http://user:secret@proxy:3128' -> 'http://…@proxy:3128': a proxy password is a key too."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme = head.split("://", 1)[0] + "://" if "://" in head else ""
    return f"{scheme}…@{tail}"


def _said(detail: str) -> str:
    """': <what the server said>' for the middle of a sentence (the caller adds the period)."""
    detail = " ".join(detail.split())
    if len(detail) > _SAID_LIMIT:
        detail = detail[:_SAID_LIMIT - 1].rstrip() + "…"
    detail = detail.rstrip(" .")
    if not detail:
        return ""
    return f": {detail}"


# -- reading what the server said (duck-typed on the SDK's exceptions) -----------------------


@dataclass(frozen=True, slots=True)
class ServerWords:
    """What an error body says: `said`, the server's own short message, fit to quote in ours
    ("" when the body is a page or not words); `details`, the body as plain text (markup
    stripped, whitespace collapsed, secrets redacted, capped) for the log and Details."""

    said: str
    details: str

    @property
    def text(self) -> str:
        """Either, for matching ("model", "stream_options", a parameter's name)."""
        return self.said or self.details


_MARKUP = re.compile(r"<\s*(?:!doctype|html|head|body|title|h[1-6]|p|div|center|hr|br|pre|"
                     r"span|a|b|script|style|table)\b", re.IGNORECASE)


def server_text(text: str) -> ServerWords:
    """A body or message that is not JSON: words when it reads as a short message, else
    only details (an HTML page, a wall of text)."""
    if _MARKUP.search(text):
        return ServerWords("", _capped(page_text(text)))
    flat = " ".join(text.split())
    said = flat if 0 < len(flat) <= _SAID_LIMIT else ""
    return ServerWords(redact_secrets(said), _capped(flat))


def status_words_of(exc: Any) -> ServerWords:
    """What the body of an HTTP error says: a JSON `error.message` (or `message`,
    `detail`) is the server's own words; any other body is only details."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        for message in (inner.get("message"), inner.get("detail")) if isinstance(
                inner, dict) else (inner,):
            if isinstance(message, str) and message.strip():
                words = server_text(message)
                return ServerWords(words.said, words.details)
        return ServerWords("", _capped(json.dumps(body)))
    if not isinstance(body, str):
        try:
            body = str(exc.response.text)
        except Exception:  # the body may be unreadable; the status is still known
            body = ""
    return server_text(body) if body.strip() else ServerWords("", "")


def status_detail(exc: Any) -> str:
    """The server's words from an HTTP error, for matching and the log."""
    return status_words_of(exc).text


class _PageText(HTMLParser):
    """The visible text of an HTML page: no tags, scripts or styles; entities decoded."""

    _HIDDEN = frozenset({"script", "style", "head", "title", "noscript", "template"})
    _BREAKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                         "hr", "pre", "table", "section", "header", "footer"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
            self._in_title = tag == "title"
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
            self._in_title = False
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._hidden:  # source line breaks are spaces; blocks make the lines
            self.parts.append(re.sub(r"\s+", " ", data))


def page_text(page: str) -> str:
    """An HTML page as its visible text, one line per block (the title when it shows none)."""
    parser = _PageText()
    try:
        parser.feed(page[:200_000])  # an error page; more is not worth reading
        parser.close()
    except Exception:  # HTMLParser is lenient; whatever it cannot take is dropped as markup
        return html.unescape(re.sub(r"<[^>]*>", " ", page[:200_000]))
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    return text or " ".join(parser.title.split())


def _capped(text: str) -> str:
    text = redact_secrets(text.strip())
    return text if len(text) <= DETAILS_LIMIT else text[:DETAILS_LIMIT - 1] + "…"


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds asked for by `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # ~4 ms, for the rare date form only: not at the app's start

    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


def root_cause(exc: BaseException) -> str:
    """The innermost cause, in words: 'Connection refused', 'Name or service not known'."""
    seen: BaseException = exc
    while (inner := seen.__cause__ or seen.__context__) is not None:
        seen = inner
        if isinstance(seen, OSError) and seen.errno and seen.errno > 0:
            return os.strerror(seen.errno)  # "Connection refused"
    text = str(seen).strip() or type(seen).__name__
    if "]" in text and text.startswith("["):  # "[Errno 111] Connection refused"
        text = text.split("]", 1)[1].strip()
    return text
