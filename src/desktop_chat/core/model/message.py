"""The things a conversation is made of."""

from __future__ import annotations

import base64
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from desktop_chat.core.llm.errors import ErrorKind

# OpenAI refuses images over 20 MB per image; other vision servers are stricter, never looser.
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
# The image formats vision APIs accept, by their first bytes (what the file claims to be is
# not trusted: a pasted or renamed file often says otherwise).
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF",
               "image/webp": "WebP"}


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
    estimated: bool = False  # counted offline (core/usage.py), not reported by the server


@dataclass(frozen=True, slots=True)
class Attachment:
    """An image sent with a user message; kept as bytes so the history owns its own copy."""

    mime: str
    data: bytes = field(repr=False)
    name: str = ""

    @property
    def data_url(self) -> str:
        """How Chat Completions takes an image inline (no URL the server would fetch)."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def size(self) -> int:
        return len(self.data)

    @classmethod
    def image(cls, data: bytes, name: str = "") -> Attachment:
        """A checked image: its type is read from its bytes. Raises ValueError with text for
        the user when it is not a PNG/JPEG/GIF/WebP image or is too large."""
        mime = sniff_image(data)
        label = f"'{name}'" if name else "This image"
        if mime is None:
            raise ValueError(f"{label} is not a PNG, JPEG, GIF or WebP image, so it cannot be "
                             "attached. Save it in one of those formats and attach it again.")
        check_size(len(data), label)
        return cls(mime, bytes(data), name)


def sniff_image(data: bytes) -> str | None:
    """The image type from the file's first bytes, or None if it is not one we can send."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_size(size: int, label: str = "This image") -> None:
    if size > MAX_ATTACHMENT_BYTES:
        raise ValueError(
            f"{label} is {size / 1024 / 1024:.1f} MB; images up to "
            f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB can be sent. Make it smaller (or "
            "take a screenshot of the part you need) and attach it again.")


def check_attachments(attachments: Sequence[Attachment]) -> None:
    """Raise ValueError (user text) unless every attachment can be sent as an image."""
    for attachment in attachments:
        label = f"'{attachment.name}'" if attachment.name else "An image"
        if attachment.mime not in IMAGE_TYPES:
            raise ValueError(f"{label} ({attachment.mime}) is not a PNG, JPEG, GIF or WebP "
                             "image, so it cannot be attached.")
        check_size(attachment.size, label)


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
    attachments: list[Attachment] = field(default_factory=list)  # images, in order

    def counts_as_context(self) -> bool:
        """Whether the message is sent back to the model with the next prompt."""
        return self.role is not Role.ASSISTANT or bool(self.content)

    def request_message(self) -> dict[str, Any]:
        """The Chat Completions form; with images, content parts (text first, then images
        in the order attached; an empty text is left out rather than sent as a blank part)."""
        if not self.attachments:
            return {"role": self.role.value, "content": self.content}
        parts: list[dict[str, Any]] = (
            [{"type": "text", "text": self.content}] if self.content else [])
        parts += [{"type": "image_url", "image_url": {"url": a.data_url}}
                  for a in self.attachments]
        return {"role": self.role.value, "content": parts}


@dataclass(slots=True)
class Conversation:
    messages: list[Message] = field(default_factory=list)
    title: str = ""

    def request_messages(self, system_prompt: str = "") -> list[dict[str, Any]]:
        """The Chat Completions `messages` for the next request."""
        out: list[dict[str, Any]] = (
            [{"role": "system", "content": system_prompt}] if system_prompt else [])
        out += [m.request_message() for m in self.messages if m.counts_as_context()]
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
        # Whole earlier turns left out of the request to fit the model's context window.
        self.trimmed_turns = 0
        # The prompt's images, handed back to the composer with the text if the request fails.
        self.prompt_attachments: tuple[Attachment, ...] = ()
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
