"""Errors a user can meet, each with the text the window shows.

The message says what happened and what to do; `detail` is the technical cause for the log.
"""

from __future__ import annotations

import email.utils
import enum
import json
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from desktop_chat.core.config.providers import is_local_host


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


def server_error(status: int, detail: str) -> ChatError:
    return ChatError(
        ErrorKind.SERVER,
        f"The server failed with HTTP {status}{_said(detail)}. Try again in a moment.",
        detail=detail,
        status=status,
    )


def bad_request(status: int, detail: str) -> ChatError:
    return ChatError(
        ErrorKind.BAD_REQUEST,
        f"The server refused the request (HTTP {status}){_said(detail)}.",
        detail=detail,
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
    return ChatError(
        ErrorKind.STREAM_ERROR,
        f"The server reported an error while replying: {message}",
        detail=detail,
    )


def images_rejected(model: str, status: int, detail: str) -> ChatError:
    return ChatError(
        ErrorKind.IMAGES_REJECTED,
        f"Model '{model}' does not accept images. Remove the image or pick a vision model.",
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
    detail = " ".join(detail.split())[:200].rstrip(" .")
    if not detail:
        return ""
    return f": {detail}"


# -- reading what the server said (duck-typed on the SDK's exceptions) -----------------------


def status_detail(exc: Any) -> str:
    """The server's own words from an HTTP error: `error.message`, or the body's text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
        return json.dumps(body)[:500]
    if isinstance(body, str):
        return body[:500]
    try:
        return str(exc.response.text)[:500]
    except Exception:  # the body may be unreadable; the status is still known
        return ""


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
