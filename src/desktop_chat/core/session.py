"""One conversation and the turn in flight: build the request, consume the stream.

The consumer appends text to the `Reply` (no per-delta work beyond a list append) and gives
the event loop back every few milliseconds: `async for` over a buffered HTTP response does
not yield on its own, and a GUI sharing the loop would freeze.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from desktop_chat.core.client import ChatClient, ChatRequest
from desktop_chat.core.events import (
    Failed,
    Finished,
    ReasoningDelta,
    Retrying,
    StreamEvent,
    TextDelta,
    UsageReport,
)
from desktop_chat.core.models import Conversation, Message, Reply, ReplyState, Role, Usage
from desktop_chat.core.store import Store, StoreError

log = logging.getLogger("desktop_chat.session")

YIELD_EVERY_S = 0.008
AUTOSAVE_S = 1.0


class ChatSession:
    """One conversation: its active path of messages, and the turn in flight.

    With a store, every message is saved as it happens: the prompt at once, the reply as it
    grows (at most once a second, one row) and in its final state, so neither a crash nor a
    stop nor an error loses anything.
    """

    def __init__(
        self,
        client: ChatClient,
        model: str,
        system_prompt: str = "",
        conversation: Conversation | None = None,
        *,
        store: Store | None = None,
        conversation_id: int | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.system_prompt = system_prompt
        self.conversation = conversation or Conversation()
        self.store = store
        self.conversation_id = conversation_id

    @property
    def messages(self) -> list[Message]:
        return self.conversation.messages

    def start(self, prompt: str) -> Reply:
        """Add the user's message after the last one; `run` fills the returned reply."""
        return self._start_after(len(self.messages), prompt)

    def start_edit(self, index: int, prompt: str) -> Reply:
        """Send an edited version of the user message at `index`: a sibling branch; the
        original and what followed it stay in the history."""
        if not 0 <= index < len(self.messages) or self.messages[index].role is not Role.USER:
            raise ValueError("only a user message can be edited")
        return self._start_after(index, prompt)

    def start_regenerate(self) -> Reply:
        """A new reply to the last prompt, as a sibling of the last reply."""
        while self.messages and self.messages[-1].role is Role.ASSISTANT:
            self.messages.pop()
        if not self.messages:
            raise ValueError("there is no prompt to answer")
        prompt = self.messages[-1]
        reply = Reply(self.model, prompt.content)
        reply.new_prompt, reply.prompt_id = False, prompt.id
        if self.store is not None and self.conversation_id is not None:
            reply.message_id = self.store.begin_reply(self.conversation_id, prompt.id, self.model)
        return reply

    def _start_after(self, index: int, prompt: str) -> Reply:
        del self.messages[index:]
        parent = self.messages[-1].id if self.messages else None
        message = Message(Role.USER, prompt, parent_id=parent)
        if not self.conversation.title:
            self.conversation.title = title_from_prompt(prompt)
        reply = Reply(self.model, prompt)
        if self.store is not None:
            if self.conversation_id is None:
                self.conversation_id = self.store.create_conversation(
                    self.conversation.title, self.model)
            message.id = self.store.add_message(self.conversation_id, parent, Role.USER, prompt)
            siblings = self.store.siblings(message.id)  # > 1 after an edit
            message.sibling_index, message.sibling_count = len(siblings) - 1, len(siblings)
            reply.message_id = self.store.begin_reply(self.conversation_id, message.id,
                                                      self.model)
        reply.prompt_id = message.id
        self.messages.append(message)
        return reply

    async def run(self, reply: Reply) -> Reply:
        """Stream the reply. Cancelling the task stops it and keeps what arrived."""
        request = ChatRequest(
            model=reply.model,
            messages=self.conversation.request_messages(self.system_prompt),
        )
        autosave = asyncio.ensure_future(self._autosave(reply))
        try:
            await self._consume(request, reply)
        except asyncio.CancelledError:
            reply.state = ReplyState.STOPPED
            raise
        except Exception as exc:  # a bug of ours must not lose the reply either
            log.exception("reply consumer failed")
            reply.state = ReplyState.INTERRUPTED if reply.has_text else ReplyState.FAILED
            reply.error = f"Something went wrong: {exc!r}. Details are in the log file."
        finally:
            autosave.cancel()
            self._settle(reply)
        return reply

    async def _consume(self, request: ChatRequest, reply: Reply) -> None:
        last_yield = time.perf_counter()
        # aclosing: a stop while we are between events must still close the HTTP response now
        async with contextlib.aclosing(self.client.stream(request)) as events:
            async for event in events:
                _apply(event, reply)
                if time.perf_counter() - last_yield >= YIELD_EVERY_S:
                    await asyncio.sleep(0)
                    last_yield = time.perf_counter()
        if reply.state is ReplyState.STREAMING:  # the client always ends with an outcome
            reply.state = ReplyState.INTERRUPTED if reply.has_text else ReplyState.FAILED

    async def _autosave(self, reply: Reply) -> None:
        """Write the growing reply once a second (a timer, so a stalled stream still has
        everything it received on disk)."""
        if self.store is None or reply.message_id is None:
            return
        saved = (0, 0)
        while True:
            await asyncio.sleep(AUTOSAVE_S)
            now = (len(reply.text), len(reply.reasoning))
            if now != saved:
                try:
                    self.store.update_reply_text(reply.message_id, reply.text, reply.reasoning)
                    saved = now
                except StoreError as exc:
                    log.warning("could not save the partial reply (will retry): %s", exc)

    def _settle(self, reply: Reply) -> None:
        """Record the outcome in the conversation and the store."""
        reply.notice = None
        if reply.state is ReplyState.FAILED and reply.new_prompt:
            # Nothing arrived: withdraw the prompt, the window hands it back to the composer.
            last = self.messages[-1] if self.messages else None
            if last is not None and last.role is Role.USER and last.content == reply.prompt:
                self.messages.pop()
            self._forget(reply.prompt_id)
            if not self.messages:
                self.conversation.title = ""
                if self.store is not None and self.conversation_id is not None:
                    self.store.discard_conversation(self.conversation_id)
                    self.conversation_id = None
            return
        message = reply.to_message()
        message.id, message.parent_id = reply.message_id, reply.prompt_id
        self.messages.append(message)
        if self.store is not None and reply.message_id is not None:
            try:
                self.store.finish_reply(reply.message_id, reply.state, reply.text,
                                        reply.reasoning, reply.usage, reply.finish_reason,
                                        reply.error)
                siblings = self.store.siblings(reply.message_id)
                message.sibling_index = siblings.index(reply.message_id)
                message.sibling_count = len(siblings)
            except (StoreError, ValueError) as exc:
                log.error("could not save the reply: %s", exc)

    def _forget(self, prompt_id: int | None) -> None:
        if self.store is not None and prompt_id is not None:
            try:
                self.store.delete_message(prompt_id)  # and the empty reply below it
            except StoreError as exc:
                log.error("could not withdraw the failed prompt: %s", exc)


def _apply(event: StreamEvent, reply: Reply) -> None:
    if isinstance(event, TextDelta):
        reply.add_text(event.text)
    elif isinstance(event, ReasoningDelta):
        reply.add_reasoning(event.text)
    elif isinstance(event, UsageReport):
        reply.usage = Usage(event.prompt_tokens, event.completion_tokens, event.total_tokens)
    elif isinstance(event, Retrying):
        reply.notice = f"{event.reason} — retrying in {event.delay_s:.0f} s…"
    elif isinstance(event, Finished):
        reply.finish_reason = event.reason
        reply.state = ReplyState.COMPLETE
    elif isinstance(event, Failed):
        reply.error = event.error.message
        reply.error_kind = event.error.kind
        reply.state = ReplyState.INTERRUPTED if reply.has_text else ReplyState.FAILED


def title_from_prompt(prompt: str, limit: int = 60) -> str:
    words = " ".join(prompt.split())
    if len(words) <= limit:
        return words
    return words[: limit - 1].rsplit(" ", 1)[0] + "…"
