"""One conversation and the turn in flight: build the request, consume the stream.

The request is built from the conversation's overrides (model, system prompt, params) over the
app-wide values, and trimmed to the context window (core/chat/context.py). When the server sends
no usage, an offline estimate fills it (flagged `estimated`).

The consumer appends text to the turn's reply `Message` (no per-delta work beyond a list
append) and gives the event loop back every few milliseconds: `async for` over a buffered HTTP
response does not yield on its own, and a GUI sharing the loop would freeze.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from desktop_chat.core.chat import documents
from desktop_chat.core.chat.context import reserve_for, trim
from desktop_chat.core.chat.retrieval import HybridRetrieval
from desktop_chat.core.chat.turn import Turn
from desktop_chat.core.chat.usage import ConversationTotals, estimate_usage, totals
from desktop_chat.core.config.providers import ConversationSettings, GenerationParams, Profile
from desktop_chat.core.history.store import Store, StoreError
from desktop_chat.core.llm.client import ChatClient, ChatRequest
from desktop_chat.core.llm.events import (
    Failed,
    Finished,
    ReasoningDelta,
    Retrying,
    StreamEvent,
    TextDelta,
    ToolCallsRequested,
)
from desktop_chat.core.logs import redact_secrets
from desktop_chat.core.model.message import (
    Attachment,
    Conversation,
    DocumentRef,
    Message,
    ReplyState,
    Role,
    ToolCall,
    ToolCallState,
    Usage,
    check_attachments,
)
from desktop_chat.core.tools.host import ToolInfo
from desktop_chat.core.tools.toolbox import ToolBox

log = logging.getLogger("desktop_chat.session")

# Sent after an interrupted reply to have the model go on with it. It is part of that one
# request only: never shown, never stored, never in a later request.
CONTINUE_INSTRUCTION = ("Continue your last reply exactly where it stopped, without repeating "
                        "anything and without any preamble.")

YIELD_EVERY_S = 0.003
AUTOSAVE_S = 1.0
# Characters of reply beyond which saving it (its search index entry is rebuilt each time:
# ~80 ms per MB) and estimating its tokens (~0.2 s per MB) run on a worker thread, not the
# thread the window runs on.
BIG_REPLY = 200_000


class ChatSession:
    """One conversation: its active path of messages, and the turn in flight.

    With a store, every message is saved as it happens: the prompt at once, the reply as it
    grows (at most once a second, one row) and in its final state, so neither a crash nor a
    stop nor an error loses anything.

    `model`, `system_prompt` and `params` are the app-wide values; `overrides` (this
    conversation's, read from the store when not given) win over them. `context_window`
    (tokens, 0 = unknown) makes requests leave out the oldest turns that do not fit.
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
        params: GenerationParams | None = None,
        context_window: int = 0,
        overrides: ConversationSettings | None = None,
        tools: ToolBox | None = None,
    ) -> None:
        self.client = client
        self.tools = tools  # MCP tools the model may call (None: no tools in this app)
        self.model = model
        self.system_prompt = system_prompt
        self.conversation = conversation or Conversation()
        self.store = store
        self.conversation_id = conversation_id
        self.params = params or GenerationParams()
        self.context_window = context_window
        self._progress_write: asyncio.Future[None] | None = None  # a big reply's, in a thread
        if overrides is None and store is not None and conversation_id is not None:
            overrides = store.conversation_settings(conversation_id)
        self.overrides = overrides or ConversationSettings()
        # the share of the context window the conversation's documents may take per prompt
        self.document_share = documents.DEFAULT_SHARE
        # BM25 + embeddings when the profile has embeddings on (None: BM25 alone)
        self.retrieval: HybridRetrieval | None = None

    @property
    def messages(self) -> list[Message]:
        return self.conversation.messages

    # -- what the next request uses --------------------------------------------------------

    @property
    def effective_model(self) -> str:
        return self.overrides.model or self.model

    @property
    def effective_system_prompt(self) -> str:
        override = self.overrides.system_prompt
        return self.system_prompt if override is None else override

    @property
    def effective_params(self) -> GenerationParams:
        return self.params.merged(self.overrides.params)

    def set_overrides(self, overrides: ConversationSettings) -> None:
        """This conversation's settings, from the next prompt on. Saved at once when the
        conversation is stored, else when its first message creates it. Raises StoreError
        (user text) if saving fails; the overrides still apply to this session."""
        self.overrides = overrides
        if self.store is not None and self.conversation_id is not None:
            self.store.set_conversation_settings(self.conversation_id, overrides)

    def usage_totals(self, profile: Profile | None = None) -> ConversationTotals:
        """Tokens (and cost, at `profile`'s prices) of every reply so far, all branches
        included when the conversation is stored."""
        if self.store is not None and self.conversation_id is not None:
            try:
                return totals(self.store.conversation_usages(self.conversation_id), profile)
            except StoreError as exc:
                log.warning("could not read the conversation's usage: %s", exc)
        return totals((m.usage for m in self.messages), profile)

    # -- turns -----------------------------------------------------------------------------

    def start(self, prompt: str, attachments: Sequence[Attachment] = (),
              documents: Sequence[DocumentRef] = ()) -> Turn:
        """Add the user's message (with its images and documents, read already: see
        core/chat/documents.py) after the last one; `run` streams the turn's reply. Raises
        ValueError (user text) for an image that cannot be sent, and StoreError (user
        text) when the history cannot save the prompt: then nothing changed, in memory or
        on disk."""
        return self._start_after(len(self.messages), prompt, attachments, documents)

    def start_edit(self, index: int, prompt: str,
                   attachments: Sequence[Attachment] | None = None) -> Turn:
        """Send an edited version of the user message at `index`: a sibling branch; the
        original and what followed it stay in the history. `attachments=None` keeps the
        original's images."""
        if not 0 <= index < len(self.messages) or self.messages[index].role is not Role.USER:
            raise ValueError("only a user message can be edited")
        if attachments is None:
            attachments = self.messages[index].attachments
        return self._start_after(index, prompt, attachments, self.messages[index].documents)

    def start_regenerate(self) -> Turn:
        """A new reply to the last prompt, as a sibling of the last reply."""
        end = len(self.messages)
        while end and self.messages[end - 1].role is Role.ASSISTANT:
            end -= 1
        if not end:
            raise ValueError("there is no prompt to answer")
        turn = Turn(self.messages[end - 1], self.effective_model, new_prompt=False)
        if self.store is not None and self.conversation_id is not None:
            self.store.add_message(self.conversation_id, turn.reply)  # may raise StoreError
        del self.messages[end:]
        return turn

    def start_continue(self) -> Turn:
        """Extend the last reply (stopped or interrupted) in place: the same message grows,
        in the conversation and in the store; no turn is added."""
        if len(self.messages) < 2 or self.messages[-1].role is not Role.ASSISTANT:
            raise ValueError("there is no reply to continue")
        reply = self.messages[-1]
        if reply.state not in (ReplyState.STOPPED, ReplyState.INTERRUPTED,
                               ReplyState.FAILED) and reply.finish_reason != "length":
            raise ValueError("the last reply is complete")
        return Turn.resuming(self.messages[-2], reply)

    def _start_after(self, index: int, prompt: str, attachments: Sequence[Attachment],
                     documents: Sequence[DocumentRef] = ()) -> Turn:
        check_attachments(attachments)  # before anything changes
        parent = self.messages[index - 1].id if index else None
        message = Message.of(Role.USER, prompt, attachments=attachments, documents=documents,
                             parent_id=parent)
        title = self.conversation.title or title_from_prompt(prompt) or (
            title_from_prompt(attachments[0].name or "Image") if attachments else "") or (
            title_from_prompt(documents[0].name) if documents else "")
        turn = Turn(message, self.effective_model)
        if self.store is not None:
            self._store_prompt(turn, title)
        del self.messages[index:]
        self.messages.append(message)
        self.conversation.title = title
        return turn

    def _store_prompt(self, turn: Turn, title: str) -> None:
        """Save the prompt and the empty reply below it; on a StoreError, undo what was
        written (a conversation created for it goes again) and re-raise."""
        assert self.store is not None
        created = self.conversation_id is None
        if created:
            self.conversation_id = self.store.create_conversation(title, turn.model)
        try:
            if created and not self.overrides.is_empty:
                self.store.set_conversation_settings(self.conversation_id, self.overrides)
            prompt_id = self.store.add_message(self.conversation_id, turn.prompt)
            siblings = self.store.siblings(prompt_id)  # > 1 after an edit
            turn.prompt.sibling_index, turn.prompt.sibling_count = len(siblings) - 1, len(
                siblings)
            turn.reply.parent_id = prompt_id
            self.store.add_message(self.conversation_id, turn.reply)
        except StoreError:
            self._forget(turn.prompt.id)
            turn.prompt.id = turn.reply.parent_id = None
            if created:
                self._discard_conversation()
            raise

    async def run(self, turn: Turn) -> Message:
        """Stream the turn's reply: model -> tool calls -> results -> model, up to the step
        limit. Cancelling the task stops it (a running tool call is cancelled on its server)
        and keeps what arrived."""
        reply = turn.reply
        autosave = asyncio.ensure_future(self._autosave(turn))
        request = ChatRequest(turn.model, [])
        try:
            await self._retrieve(turn)
            request = self.build_request(turn)
            step = 0
            while (calls := await self._consume(request, turn)) and (
                    reply.state is ReplyState.COMPLETE):
                step += 1
                await self._run_tools(turn, calls, step)
                if step >= self._step_limit:
                    _stop_at_limit(reply, self._step_limit)
                    break
                reply.state = ReplyState.STREAMING
                request = self.build_request(turn)
                # The step's calls and results go to the history as soon as the request that
                # carries them is on its way (~0.5 ms here), not between result and request.
                asyncio.get_running_loop().call_soon(self._save_progress, turn)
        except asyncio.CancelledError:
            reply.state = ReplyState.STOPPED
            _close_open_calls(reply, ToolCallState.CANCELLED)
            raise
        except Exception as exc:  # a bug of ours must not lose the reply either
            log.exception("reply consumer failed")
            _close_open_calls(reply, ToolCallState.FAILED)
            reply.state = ReplyState.INTERRUPTED if reply.has_text else ReplyState.FAILED
            reply.error = redact_secrets(
                f"Something went wrong: {exc!r}. Details are in the log file.")
        finally:
            autosave.cancel()
            await asyncio.sleep(0)  # the end of receiving and the saving: two turns of the loop
            if _is_big(reply):
                await asyncio.to_thread(_estimate_usage, request, reply)
            else:
                _estimate_usage(request, reply)
            await self._settle(turn)
        return reply

    @property
    def tools_on(self) -> bool:
        return self.tools is not None and not self.overrides.tools_off

    @property
    def _step_limit(self) -> int:
        return self.tools.step_limit if self.tools is not None else 1

    async def _run_tools(self, turn: Turn, requested: ToolCallsRequested, step: int) -> None:
        """Add the step's calls to the reply, ask for consent one by one (in order), then
        run the allowed ones together."""
        assert self.tools is not None
        calls = [ToolCall(c.call_id, c.name, c.arguments, step=step) for c in requested.calls]
        for call in calls:
            self.tools.label(call)
            turn.add_part(call)
        allowed = []
        for call in calls:
            tool = await self.tools.decide(call)
            turn.tools_changed()
            if tool is not None:
                allowed.append(self._run_call(turn, call, tool))
        if allowed:
            await asyncio.gather(*allowed)

    async def _run_call(self, turn: Turn, call: ToolCall, tool: ToolInfo) -> None:
        assert self.tools is not None
        turn.tools_changed()
        try:
            await self.tools.run(call, tool)
        finally:
            turn.tools_changed()

    def _save_progress(self, turn: Turn) -> None:
        if self.store is not None and turn.reply.id is not None:
            try:
                self.store.save_progress(turn.reply)
            except StoreError as exc:
                log.warning("could not save the reply's tool calls (will retry): %s", exc)
                turn.save_error = exc.reason

    def build_request(self, turn: Turn) -> ChatRequest:
        """The request for `turn`: overrides applied, trimmed to the context window (the
        number of turns left out is recorded on the turn). The reply so far (tool steps)
        is part of it."""
        params = self.effective_params
        messages = self.conversation.request_messages(self.effective_system_prompt)
        self._add_documents(turn, messages)
        if turn.reply.tool_calls and turn.reply not in self.conversation.messages:
            messages += turn.reply.request_messages()
        reserve = reserve_for(self.context_window, params.max_tokens)
        if turn.continuing:  # the reply so far is the last message; the instruction follows
            messages.append({"role": "user", "content": CONTINUE_INSTRUCTION})
        messages, turn.trimmed_turns = trim(messages, self.context_window, reserve)
        if turn.trimmed_turns:
            log.info("left %d earlier turn(s) out to fit a %d-token context",
                     turn.trimmed_turns, self.context_window)
        tools = self.tools.specs() if self.tools is not None and self.tools_on else []
        return ChatRequest(model=turn.model, messages=[dict(m) for m in messages],
                           params=params, tools=tools)

    def _add_documents(self, turn: Turn, messages: list[dict[str, Any]]) -> None:
        """The conversation's documents, whole or their best passages for this prompt, go
        before the prompt in the request; the reply keeps what it was given (its sources).
        A document the history lost is left out, logged, rather than failing the turn. The
        later requests of a turn (tool steps) send the same passages again."""
        refs = documents.conversation_documents(self.messages)
        if not refs or self.store is None or not messages or messages[-1]["role"] != "user":
            return
        chosen = turn.reply.passages
        budget = documents.budget_for(self.context_window, self.document_share)
        try:
            passages = chosen or documents.choose(self.store, refs, turn.prompt.content, budget)
            context = documents.context_text(self.store, passages)
        except StoreError as exc:
            log.error("documents left out of the request: %s", exc)
            turn.notice = f"The documents could not be read from the history: {exc}"
            return
        if not chosen:
            turn.reply.parts += passages
        messages[-1] = documents.with_context(messages[-1], context)
        log.info("sent %d document piece(s) (%s) with the prompt", len(passages),
                 "whole" if all(p.whole for p in passages) else "passages")

    async def _retrieve(self, turn: Turn) -> None:
        """With embeddings on (`retrieval`), pick the passages for this prompt by hybrid
        retrieval, before the request is built; without them, or when they fail (said once,
        by the retrieval), `_add_documents` searches by words alone."""
        if self.retrieval is None or self.store is None or turn.reply.passages:
            return
        refs = documents.conversation_documents(self.messages)
        budget = documents.budget_for(self.context_window, self.document_share)
        searched = documents.searched_documents(refs, budget)
        if not searched:
            return

        def progress(notice: str | None) -> None:
            turn.notice = notice

        found = await self.retrieval.search([d.sha256 for d in searched],
                                            turn.prompt.content, progress=progress)
        if found is not None:
            try:
                turn.reply.parts += documents.choose(self.store, refs, turn.prompt.content,
                                                     budget, found=found)
            except StoreError as exc:
                log.error("hybrid retrieval's passages left out: %s", exc)

    async def _consume(self, request: ChatRequest, turn: Turn) -> ToolCallsRequested | None:
        """Stream one model request into the reply; the tool calls it ended asking for."""
        last_yield = time.perf_counter()
        requested: ToolCallsRequested | None = None
        # aclosing: a stop while we are between events must still close the HTTP response now
        async with contextlib.aclosing(self.client.stream(request)) as events:
            async for event in events:
                if isinstance(event, ToolCallsRequested):
                    requested = event
                    continue
                _apply(event, turn)
                if time.perf_counter() - last_yield >= YIELD_EVERY_S:
                    await asyncio.sleep(0)
                    last_yield = time.perf_counter()
        reply = turn.reply
        if reply.state is ReplyState.STREAMING:  # the client always ends with an outcome
            reply.state = (ReplyState.INTERRUPTED if reply.has_text or reply.tool_calls
                           else ReplyState.FAILED)
        if requested is not None and not request.tools:
            log.warning("the model asked for tools although none were offered")
            return None
        return requested

    async def _autosave(self, turn: Turn) -> None:
        """Write the growing reply once a second (a timer, so a stalled stream still has
        everything it received on disk). A failed write is retried at the next tick and
        recorded on the turn (`save_error`) for the window to say so at once."""
        reply = turn.reply
        if self.store is None or reply.id is None:
            return
        saved = (0, 0, 0)
        while True:
            await asyncio.sleep(AUTOSAVE_S)
            now = (len(reply.content), len(reply.reasoning), len(reply.tool_calls))
            if now != saved:
                try:
                    if _is_big(reply):  # a copy: the reply grows meanwhile
                        snapshot = Message.of(Role.ASSISTANT, reply.content,
                                              reasoning=reply.reasoning, id=reply.id)
                        self._progress_write = asyncio.get_running_loop().run_in_executor(
                            None, self.store.save_progress, snapshot)
                        await asyncio.shield(self._progress_write)
                    else:
                        self.store.save_progress(reply)
                    saved, turn.save_error = now, None
                except StoreError as exc:
                    log.warning("could not save the partial reply (will retry): %s", exc)
                    turn.save_error = exc.reason

    async def _settle(self, turn: Turn) -> None:
        """Record the outcome in the conversation and the store."""
        turn.notice = None
        reply = turn.reply
        if reply.state is ReplyState.FAILED and turn.new_prompt:
            # Nothing arrived: withdraw the prompt, the window hands it back to the composer.
            if self.messages and self.messages[-1] is turn.prompt:
                self.messages.pop()
            self._forget(turn.prompt.id)
            if not self.messages:
                self.conversation.title = ""
                self._discard_conversation()
            return
        if not any(m is reply for m in self.messages):  # a continued reply is already there
            self.messages.append(reply)
        if self.store is not None and reply.id is not None:
            try:
                if _is_big(reply):
                    if self._progress_write is not None:  # the last one first, not over ours
                        await asyncio.wait([self._progress_write])
                    await asyncio.to_thread(self.store.finish_reply, reply)
                else:
                    self.store.finish_reply(reply)
                turn.save_error = None
                siblings = self.store.siblings(reply.id)
                reply.sibling_index = siblings.index(reply.id)
                reply.sibling_count = len(siblings)
            except StoreError as exc:  # the window keeps the reply and retries the save
                log.error("could not save the reply: %s", exc)
                turn.save_error = exc.reason
            except ValueError as exc:
                log.error("could not place the reply among its siblings: %s", exc)

    def _forget(self, prompt_id: int | None) -> None:
        if self.store is not None and prompt_id is not None:
            try:
                self.store.delete_message(prompt_id)  # and the empty reply below it
            except StoreError as exc:
                log.error("could not withdraw the failed prompt: %s", exc)

    def _discard_conversation(self) -> None:
        if self.store is not None and self.conversation_id is not None:
            try:
                self.store.discard_conversation(self.conversation_id)
            except StoreError as exc:
                log.error("could not remove the empty conversation: %s", exc)
            self.conversation_id = None


def _stop_at_limit(reply: Message, limit: int) -> None:
    reply.state = ReplyState.INTERRUPTED
    reply.error = (f"The model used tools in {limit} steps, the most one reply may take "
                   "(Settings → Tools). Press Continue to let it go on, or raise the limit.")


def _close_open_calls(reply: Message, state: ToolCallState) -> None:
    for call in reply.tool_calls:
        if call.state.is_open:
            call.close(state)


def _is_big(reply: Message) -> bool:
    return len(reply.content) + len(reply.reasoning) > BIG_REPLY


def _estimate_usage(request: ChatRequest, reply: Message) -> None:
    """Servers that send no usage (llama.cpp ignores include_usage) get an offline estimate,
    flagged as such, for whatever was generated."""
    if reply.usage is None and (reply.has_text or reply.reasoning):
        reply.usage = estimate_usage(request.messages, reply.content, reply.reasoning)


def _apply(event: StreamEvent, turn: Turn) -> None:
    reply = turn.reply
    if isinstance(event, TextDelta):
        turn.add_text(event.text)
    elif isinstance(event, ReasoningDelta):
        turn.add_reasoning(event.text)
    elif isinstance(event, Usage):
        reply.usage = event
    elif isinstance(event, Retrying):
        turn.notice = f"{event.reason} — retrying in {event.delay_s:.0f} s…"
    elif isinstance(event, Finished):
        reply.finish_reason = event.reason
        reply.state = ReplyState.COMPLETE
    elif isinstance(event, Failed):
        reply.error = redact_secrets(event.error.message)  # a server may quote the key back
        turn.error_kind = event.error.kind
        turn.error_details = redact_secrets(event.error.detail)
        reply.state = (ReplyState.INTERRUPTED if reply.has_text or reply.tool_calls
                       else ReplyState.FAILED)


def title_from_prompt(prompt: str, limit: int = 60) -> str:
    words = " ".join(prompt.split())
    if len(words) <= limit:
        return words
    return words[: limit - 1].rsplit(" ", 1)[0] + "…"
