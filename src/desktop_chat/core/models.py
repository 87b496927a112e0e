"""The things a conversation is made of."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from desktop_chat.core.errors import ErrorKind


class Role(enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class ReplyState(enum.Enum):
    STREAMING = "streaming"
    COMPLETE = "complete"
    STOPPED = "stopped"  # the user pressed Stop; what arrived is kept
    FAILED = "failed"  # the request failed before any text arrived
    INTERRUPTED = "interrupted"  # the stream broke after some text arrived; that text is kept


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


@dataclass(slots=True)
class Message:
    role: Role
    content: str
    reasoning: str = ""
    state: ReplyState = ReplyState.COMPLETE
    model: str | None = None
    usage: Usage | None = None
    error: str | None = None  # the user-facing error text, when the reply did not complete
    finish_reason: str | None = None
    id: int | None = None  # in the history store
    parent_id: int | None = None
    sibling_index: int = 0  # among the alternatives (regenerated / edited) at this point
    sibling_count: int = 1

    def counts_as_context(self) -> bool:
        """Whether the message is sent back to the model with the next prompt."""
        return self.role is not Role.ASSISTANT or bool(self.content)


@dataclass(slots=True)
class Conversation:
    messages: list[Message] = field(default_factory=list)
    title: str = ""

    def request_messages(self, system_prompt: str = "") -> list[dict[str, str]]:
        """The Chat Completions `messages` for the next request."""
        out = [{"role": "system", "content": system_prompt}] if system_prompt else []
        out += [
            {"role": m.role.value, "content": m.content}
            for m in self.messages
            if m.counts_as_context()
        ]
        return out


class Reply:
    """The assistant reply being received: text accumulates without per-delta work.

    The view takes what arrived since its last paint with `take_pending()`, at most once
    a frame; `text` is the full reply exactly as received (all content deltas joined).
    """

    def __init__(self, model: str, prompt: str = "") -> None:
        self.model = model
        self.prompt = prompt  # the user message this replies to
        self.prompt_id: int | None = None  # store ids, when the conversation is stored
        self.message_id: int | None = None
        self.new_prompt = True  # False for a regenerated reply: its prompt stays on failure
        self.state = ReplyState.STREAMING
        self.notice: str | None = None  # transient status, e.g. a rate-limit retry
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.error_kind: ErrorKind | None = None
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._pending_text: list[str] = []
        self._pending_reasoning: list[str] = []

    def add_text(self, text: str) -> None:
        self._text.append(text)
        self._pending_text.append(text)

    def add_reasoning(self, text: str) -> None:
        self._reasoning.append(text)
        self._pending_reasoning.append(text)

    def take_pending(self) -> tuple[str, str]:
        """(text, reasoning) that arrived since the last call."""
        text = "".join(self._pending_text)
        reasoning = "".join(self._pending_reasoning)
        self._pending_text.clear()
        self._pending_reasoning.clear()
        return text, reasoning

    @property
    def text(self) -> str:
        if len(self._text) > 1:  # keep later reads cheap
            self._text[:] = ["".join(self._text)]
        return self._text[0] if self._text else ""

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    @property
    def has_text(self) -> bool:
        return any(self._text)

    def to_message(self) -> Message:
        return Message(
            role=Role.ASSISTANT,
            content=self.text,
            reasoning=self.reasoning,
            state=self.state,
            model=self.model,
            usage=self.usage,
            error=self.error,
            finish_reason=self.finish_reason,
        )
