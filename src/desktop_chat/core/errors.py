"""Errors a user can meet, each with the text the window shows.

The message says what happened and what to do; `detail` is the technical cause for the log.
"""

from __future__ import annotations

import enum


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
        f"No API key is set for {base_url}. Set the OPENAI_API_KEY environment variable "
        "and restart, or point --base-url at a local server that needs no key.",
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


def connection_failed(base_url: str, cause: str) -> ChatError:
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


def unexpected(detail: str) -> ChatError:
    return ChatError(
        ErrorKind.UNEXPECTED,
        "Something went wrong while talking to the server. Details are in the log file.",
        detail=detail,
    )


def _said(detail: str) -> str:
    detail = " ".join(detail.split())
    if not detail:
        return ""
    return f": {detail[:200]}"
