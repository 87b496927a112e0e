"""What a reply stream yields, in the order the server produced it."""

from __future__ import annotations

from dataclasses import dataclass

from desktop_chat.core.llm.errors import ChatError
from desktop_chat.core.model.message import Usage


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Retrying:
    """The request is retried after a delay (rate limit, overloaded server)."""

    delay_s: float
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """One tool call the model asked for: `arguments` is the JSON text as streamed."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallsRequested:
    """The model's step ended asking for these calls (several: parallel calls), in order."""

    calls: tuple[ToolCallRequest, ...]


@dataclass(frozen=True, slots=True)
class Finished:
    reason: str | None  # "stop", "length", "content_filter", "tool_calls", ... as sent


@dataclass(frozen=True, slots=True)
class Failed:
    error: ChatError


# `Usage` is the server's usage report, as the message keeps it.
StreamEvent = (TextDelta | ReasoningDelta | Usage | Retrying | ToolCallsRequested | Finished
               | Failed)
