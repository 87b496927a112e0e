"""What a reply stream yields, in the order the server produced it."""

from __future__ import annotations

from dataclasses import dataclass

from desktop_chat.core.llm.errors import ChatError


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None


@dataclass(frozen=True, slots=True)
class Retrying:
    """The request is retried after a delay (rate limit, overloaded server)."""

    delay_s: float
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class Finished:
    reason: str | None  # "stop", "length", "content_filter", "tool_calls", ... as sent


@dataclass(frozen=True, slots=True)
class Failed:
    error: ChatError


StreamEvent = TextDelta | ReasoningDelta | UsageReport | Retrying | Finished | Failed
