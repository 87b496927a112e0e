"""The things a conversation is made of: one `Message` record (content as typed parts), the
conversation it belongs to, and the checks an attached image must pass."""

from __future__ import annotations

import base64
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
    estimated: bool = False  # counted offline (core/chat/usage.py), not reported by the server


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


class _GrowingText:
    """Text that grows by appends, each O(1) (a streamed reply gets thousands); reading joins
    the pieces once and keeps the result."""

    __slots__ = ("_chunks",)

    def __init__(self, text: str = "") -> None:
        self._chunks: list[str] = [text] if text else []

    def append(self, text: str) -> None:
        self._chunks.append(text)

    @property
    def text(self) -> str:
        if len(self._chunks) > 1:
            self._chunks[:] = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.text == self.text  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


class Text(_GrowingText):
    """What the user or the model wrote (markdown, for a reply), exactly as received."""


class Reasoning(_GrowingText):
    """A model's thinking before its answer: shown apart, stored, never sent back."""


STEP_BREAK = "\n\n"  # between the texts of two model requests (tool steps) of one reply


class ToolCallState(enum.Enum):
    REQUESTED = "requested"  # the model asked for it; waiting for the user's consent
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the tool said it failed, the server broke, or the call timed out
    DENIED = "denied"  # the user (or a remembered choice) said no; the model is told so
    CANCELLED = "cancelled"  # the user pressed Stop while it ran
    INTERRUPTED = "interrupted"  # the app ended while it ran (found so on the next start)

    @property
    def is_open(self) -> bool:
        return self in (ToolCallState.REQUESTED, ToolCallState.RUNNING)


# What the model is told when a call has no result of its own (every call in a request must
# be answered, or the server refuses the request).
_NO_RESULT = {
    ToolCallState.REQUESTED: "The tool call was not run: the turn ended before the user "
                             "decided.",
    ToolCallState.RUNNING: "The tool call did not finish.",
    ToolCallState.DENIED: "The user denied this tool call. Do not retry it; ask the user or "
                          "answer without it.",
    ToolCallState.CANCELLED: "The user stopped this tool call before it finished.",
    ToolCallState.INTERRUPTED: "The tool call was interrupted (the app closed) before it "
                               "finished.",
}


@dataclass(slots=True)
class ToolCall:
    """One call of a tool the model asked for, and its outcome: the part a reply gets for each
    call, in the order the calls were made. `name` is the function name the model used;
    `server` and `tool` are the MCP server and tool it stands for. `arguments` is the JSON
    text exactly as the model sent it (it may be malformed: the call then fails, the model
    is told why). `result` is the complete text the model is given back. `step` counts the
    model's requests in the turn: calls of one step were asked for together (parallel)."""

    call_id: str
    name: str
    arguments: str = ""
    server: str = ""
    tool: str = ""
    step: int = 0
    state: ToolCallState = ToolCallState.REQUESTED
    result: str = ""
    duration_s: float | None = None

    @property
    def label(self) -> str:
        """`server › tool` as the window shows it."""
        return f"{self.server} › {self.tool}" if self.server else self.name

    @property
    def result_for_model(self) -> str:
        if self.state in (ToolCallState.DONE, ToolCallState.FAILED):
            return self.result
        return self.result or _NO_RESULT[self.state]

    def close(self, state: ToolCallState, result: str = "") -> None:
        self.state, self.result = state, result or self.result


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """A document attached to a user message: a reference by content hash to its extracted
    text, which the history keeps once however many messages attach it (core/documents,
    core/history/documents.py). `pages` is None for a document without pages; `tokens` is
    the estimated cost of its whole text."""

    sha256: str
    name: str
    kind: str  # "pdf", "docx", "text", "markdown", "html", "csv", "code"
    size: int = 0  # bytes of the file
    pages: int | None = None
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class Passage:
    """What a reply was given from a document: a retrieved chunk (`text`, its `page`), or
    the whole document (`whole`, its text is the document's). Kept on the reply, so its
    sources and the context it was sent survive a restart."""

    sha256: str
    name: str
    text: str = ""
    page: int | None = None
    heading: str = ""
    whole: bool = False

    @property
    def where(self) -> str:
        """"report.pdf, page 12": how a source is named to the user and the model."""
        if self.whole:
            return f"{self.name} (whole document)"
        return f"{self.name}, page {self.page}" if self.page is not None else self.name


# A message's content, in order. Images are `Attachment`s, documents `DocumentRef`s (on a
# prompt) and `Passage`s (on the reply that used them), tool calls (with their results)
# `ToolCall`s. A store, an export or a request builder that meets a part it does not know
# leaves it out rather than guessing.
Part = Text | Reasoning | Attachment | DocumentRef | Passage | ToolCall


@dataclass(slots=True)
class Message:
    """One message, the same record from the stream to the store to the export: what the
    session streams a reply into, what the store returns and writes, what imports produce
    and exports read. Its content is `parts`; `content`, `reasoning` and `attachments` are
    the views most code needs."""

    role: Role
    parts: list[Part] = field(default_factory=list)
    state: ReplyState = ReplyState.COMPLETE
    model: str | None = None
    usage: Usage | None = None
    error: str | None = None  # the user-facing error text, when the reply did not complete
    finish_reason: str | None = None
    id: int | None = None  # in the history store (in an import: a key local to the file)
    parent_id: int | None = None
    sibling_index: int = 0  # among the alternatives (regenerated / edited) at this point
    sibling_count: int = 1
    created_at: float = 0.0  # epoch seconds; 0 until stored
    updated_at: float = 0.0

    @classmethod
    def of(cls, role: Role, content: str = "", *, reasoning: str = "",
           attachments: Sequence[Attachment] = (),
           documents: Sequence[DocumentRef | Passage] = (),
           **fields: Any) -> Message:
        """A message from its text, reasoning, images and documents (the parts in that
        order)."""
        parts: list[Part] = [Reasoning(reasoning)] if reasoning else []
        if content:
            parts.append(Text(content))
        parts += attachments
        parts += documents
        return cls(role, parts, **fields)

    @property
    def content(self) -> str:
        """The text, exactly as written or received (all text parts joined). The text of
        each model request after tool calls starts a new paragraph (STEP_BREAK), as the
        window shows it."""
        out: list[str] = []
        after_call = False
        for part in self.parts:
            if type(part) is ToolCall:
                after_call = True
            elif type(part) is Text and part.text:
                if after_call and out:
                    out.append(STEP_BREAK)
                out.append(part.text)
                after_call = False
        return "".join(out)

    @property
    def reasoning(self) -> str:
        return "".join(p.text for p in self.parts if type(p) is Reasoning)

    @property
    def attachments(self) -> list[Attachment]:
        """The images, in the order attached."""
        return [p for p in self.parts if type(p) is Attachment]

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls made in this reply, in order."""
        return [p for p in self.parts if type(p) is ToolCall]

    @property
    def documents(self) -> list[DocumentRef]:
        """The documents attached to this prompt, in the order attached."""
        return [p for p in self.parts if type(p) is DocumentRef]

    @property
    def passages(self) -> list[Passage]:
        """What this reply was given from documents (its sources), in the order sent."""
        return [p for p in self.parts if type(p) is Passage]

    @property
    def has_text(self) -> bool:
        return any(p.text for p in self.parts if type(p) is Text)

    def append_text(self, text: str) -> None:
        """Add a streamed piece of the answer."""
        self._growing(Text).append(text)

    def append_reasoning(self, text: str) -> None:
        self._growing(Reasoning).append(text)

    def _growing(self, kind: type[Text] | type[Reasoning]) -> _GrowingText:
        last = self.parts[-1] if self.parts else None
        if type(last) is kind:
            return last  # type: ignore[return-value]
        part = kind()
        self.parts.append(part)
        return part

    def counts_as_context(self) -> bool:
        """Whether the message is sent back to the model with the next prompt."""
        return self.role is not Role.ASSISTANT or self.has_text or bool(self.tool_calls)

    def request_messages(self) -> list[dict[str, Any]]:
        """The Chat Completions messages this one becomes: itself, or for a reply that used
        tools, per step the assistant message with its `tool_calls` followed by one `tool`
        message per call, then the text that came after the last step."""
        if self.role is not Role.ASSISTANT or not self.tool_calls:
            return [self.request_message()]
        out: list[dict[str, Any]] = []
        text: list[str] = []
        calls: list[ToolCall] = []

        def flush_calls() -> None:
            out.append({"role": "assistant", "content": "".join(text) or None,
                        "tool_calls": [{"id": c.call_id, "type": "function",
                                        "function": {"name": c.name,
                                                     "arguments": c.arguments or "{}"}}
                                       for c in calls]})
            out.extend({"role": "tool", "tool_call_id": c.call_id,
                        "content": c.result_for_model} for c in calls)
            text.clear()
            calls.clear()

        for part in self.parts:
            if type(part) is ToolCall:
                if calls and part.step != calls[-1].step:
                    flush_calls()
                calls.append(part)
            elif type(part) is Text:
                if calls:
                    flush_calls()
                text.append(part.text)
        if calls:
            flush_calls()
        if "".join(text):
            out.append({"role": "assistant", "content": "".join(text)})
        return out

    def request_message(self) -> dict[str, Any]:
        """The Chat Completions form; with images, content parts (text first, then images
        in the order attached; an empty text is left out rather than sent as a blank part)."""
        attachments = self.attachments
        if not attachments:
            return {"role": self.role.value, "content": self.content}
        content = self.content
        parts: list[dict[str, Any]] = [{"type": "text", "text": content}] if content else []
        parts += [{"type": "image_url", "image_url": {"url": a.data_url}} for a in attachments]
        return {"role": self.role.value, "content": parts}


@dataclass(slots=True)
class Conversation:
    messages: list[Message] = field(default_factory=list)
    title: str = ""

    def request_messages(self, system_prompt: str = "") -> list[dict[str, Any]]:
        """The Chat Completions `messages` for the next request."""
        out: list[dict[str, Any]] = (
            [{"role": "system", "content": system_prompt}] if system_prompt else [])
        for message in self.messages:
            if message.counts_as_context():
                out += message.request_messages()
        return out
