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

log = logging.getLogger("desktop_chat.session")

YIELD_EVERY_S = 0.008


class ChatSession:
    def __init__(
        self,
        client: ChatClient,
        model: str,
        system_prompt: str = "",
        conversation: Conversation | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.system_prompt = system_prompt
        self.conversation = conversation or Conversation()

    def start(self, prompt: str) -> Reply:
        """Add the user's message; the returned reply is filled by `run`."""
        self.conversation.messages.append(Message(Role.USER, prompt))
        if not self.conversation.title:
            self.conversation.title = title_from_prompt(prompt)
        return Reply(self.model, prompt)

    async def run(self, reply: Reply) -> Reply:
        """Stream the reply. Cancelling the task stops it and keeps what arrived."""
        request = ChatRequest(
            model=reply.model,
            messages=self.conversation.request_messages(self.system_prompt),
        )
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

    def _settle(self, reply: Reply) -> None:
        """Record the outcome in the conversation."""
        reply.notice = None
        if reply.state is ReplyState.FAILED:
            # Nothing arrived: withdraw the prompt, the window hands it back to the composer.
            last = self.conversation.messages[-1] if self.conversation.messages else None
            if last is not None and last.role is Role.USER and last.content == reply.prompt:
                self.conversation.messages.pop()
            if not self.conversation.messages:
                self.conversation.title = ""
            return
        self.conversation.messages.append(reply.to_message())


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
