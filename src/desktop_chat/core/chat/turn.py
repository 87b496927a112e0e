"""The turn in flight: the prompt being answered and the reply streaming into a `Message`.

The consumer appends each delta to the reply (a list append) and to a pending buffer; the
view takes what arrived since its last paint with `take_pending()`, at most once a frame.
"""

from __future__ import annotations

from desktop_chat.core.llm.errors import ErrorKind
from desktop_chat.core.model.message import STEP_BREAK, Message, Part, ReplyState, Role


class Turn:
    """`prompt` is the user message answered (already in the conversation); `reply` is the
    assistant message being received. What only matters while the turn runs lives here, not
    on the message: the transient notice, how the request failed, what was trimmed."""

    def __init__(self, prompt: Message, model: str, *, new_prompt: bool = True) -> None:
        self.prompt = prompt
        self.reply = Message(Role.ASSISTANT, state=ReplyState.STREAMING, model=model,
                             parent_id=prompt.id)
        # False for a regenerated reply: its prompt stays in the conversation on failure.
        self.new_prompt = new_prompt
        self.notice: str | None = None  # transient status, e.g. a rate-limit retry
        self.error_kind: ErrorKind | None = None
        # Whole earlier turns left out of the request to fit the model's context window.
        self.trimmed_turns = 0
        # Why the reply is not (yet) saved in the history, in words; None while it is.
        self.save_error: str | None = None
        self._pending_text: list[str] = []
        self._pending_reasoning: list[str] = []
        self._tools_changed = False
        self._new_step = False  # the next text starts a new step's paragraph
        # Continue: `reply` is an interrupted reply that grows in place (see `resuming`).
        self.continuing = False

    @classmethod
    def resuming(cls, prompt: Message, reply: Message) -> Turn:
        """A turn that extends `reply` (stopped or interrupted) where it ended."""
        turn = cls(prompt, reply.model or "", new_prompt=False)
        turn.reply = reply
        turn.continuing = True
        reply.state, reply.error, reply.finish_reason = ReplyState.STREAMING, None, None
        return turn

    @property
    def model(self) -> str:
        return self.reply.model or ""

    def add_text(self, text: str) -> None:
        if text and self._new_step:
            self._new_step = False
            if self.reply.has_text:
                self._pending_text.append(STEP_BREAK)  # as Message.content joins steps
        self.reply.append_text(text)
        self._pending_text.append(text)

    def add_reasoning(self, text: str) -> None:
        self.reply.append_reasoning(text)
        self._pending_reasoning.append(text)

    def add_part(self, part: Part) -> None:
        """A part that is not streamed text (a tool call)."""
        self.reply.parts.append(part)
        self._tools_changed = True
        self._new_step = True

    def tools_changed(self) -> None:
        """A tool call changed (asked, running, done): the view redraws its rows."""
        self._tools_changed = True

    def take_tools_changed(self) -> bool:
        changed, self._tools_changed = self._tools_changed, False
        return changed

    def take_pending(self) -> tuple[str, str]:
        """(text, reasoning) that arrived since the last call."""
        text = "".join(self._pending_text)
        reasoning = "".join(self._pending_reasoning)
        self._pending_text.clear()
        self._pending_reasoning.clear()
        return text, reasoning
