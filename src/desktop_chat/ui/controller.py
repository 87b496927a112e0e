"""QObject adapter over the chat: slots in (send, regenerate, continue, edit, stop, open a
conversation or branch), signals out. It owns the send rules: `block(reason)` refuses every
way of starting a reply, and each refusal or history failure is reported (`error`) with
nothing lost. The conversation list is `Library`'s job (ui/library.py).

The consumer task streams into the turn's reply `Message` without touching Qt; a frame timer
(at most one tick per ~16 ms, only while a reply streams) hands the text that arrived since
the last frame to the view in one signal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_chat.core.chat import documents
from desktop_chat.core.chat.pacing import FRAME_MS, FramePacer
from desktop_chat.core.chat.retrieval import HybridRetrieval
from desktop_chat.core.chat.session import ChatSession
from desktop_chat.core.chat.turn import Turn
from desktop_chat.core.chat.usage import ConversationTotals
from desktop_chat.core.config.providers import ConversationSettings, GenerationParams, Profile
from desktop_chat.core.history.store import Store, StoreError
from desktop_chat.core.llm.client import ChatClient
from desktop_chat.core.model.message import (
    Attachment,
    Conversation,
    DocumentRef,
    Message,
    ReplyState,
    Role,
    ToolCall,
    check_size,
)
from desktop_chat.core.tools.consent import Decision
from desktop_chat.core.tools.host import ToolInfo
from desktop_chat.core.tools.toolbox import ToolBox
from desktop_chat.ui.tasks import Tasks

log = logging.getLogger("desktop_chat.controller")

SAVE_RETRY_MS = 5_000


class ChatController(QObject):
    prompt_sent = Signal(object, int)  # the user's Message and its index in the conversation
    reply_started = Signal(str)  # model
    reply_resumed = Signal(object, int)  # Continue: the reply Message growing in place, its index
    text_arrived = Signal(str)
    reasoning_arrived = Signal(str)
    notice_changed = Signal(str)  # transient status ("retrying in 2 s"), "" when cleared
    reply_finished = Signal(object)  # the reply Message, in its final state
    context_trimmed = Signal(int)  # earlier turns left out of the last request to fit
    prompt_returned = Signal(object)  # a prompt Message that could not be sent, for the composer
    error = Signal(str)  # something the user asked for was refused or failed; say why
    save_problem = Signal(str)  # why replies are not being saved, in words; "" once they are
    streaming_changed = Signal(bool)
    conversations_changed = Signal()  # a conversation started, or moved to the top
    conversation_opened = Signal(object)  # Conversation
    # A reply that ended while another conversation was shown: what to tell the user.
    finished_elsewhere = Signal(str)
    # A prompt that could not be sent, in a conversation not shown: (conversation id or None
    # for a new chat, the prompt Message), for that conversation's draft.
    prompt_returned_elsewhere = Signal(object, object)
    tool_approval_requested = Signal(object, object)  # ToolCall, ToolInfo: ask the user
    tool_calls_changed = Signal(object)  # the reply Message whose tool calls changed
    documents_notice = Signal(str)  # e.g. embeddings unavailable: documents searched by words

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: ChatClient,
        model: str,
        system_prompt: str = "",
        store: Store | None = None,
        remember_model: Callable[[str], None] | None = None,
        parent: QObject | None = None,
        tools: ToolBox | None = None,
    ) -> None:
        super().__init__(parent)
        self.tools = tools
        self._approval: asyncio.Future[Decision] | None = None
        self.pending_approval: tuple[ToolCall, ToolInfo] | None = None  # what is being asked
        if tools is not None:
            tools.ask = self.ask_tool
        self._client = client
        self._model = model
        self._system_prompt = system_prompt
        self._params = GenerationParams()  # configure() sets these for the active profile
        self.profile: Profile | None = None
        self.store = store
        self._remember_model = remember_model
        self._blocked: str | None = None
        self._retired: list[ChatClient] = []
        # All background work (the reply, opening a conversation, closing old clients): one
        # owner that keeps each task and routes its failures to the log and the window.
        self.tasks = Tasks(self, loop=loop)
        self.tasks.failed.connect(self.error)
        self._document_share = documents.DEFAULT_SHARE
        self._retrieval: HybridRetrieval | None = None
        self.session = self._new_session()
        self._turn: Turn | None = None
        # The conversation the reply in flight belongs to; the user may show another one
        # meanwhile (the reply goes on streaming and saving there).
        self._streaming: ChatSession | None = None
        self._opening: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._notice = ""
        self.last_error_details = ""  # what the server sent with the last reply's error
        self._unsaved: list[Message] = []  # finished replies the history could not take
        self._save_problem = ""
        self._save_retry = QTimer(self)
        self._save_retry.setInterval(SAVE_RETRY_MS)
        self._save_retry.timeout.connect(self.save_again)
        self._pacer = FramePacer()
        self._painted_ms = 0.0  # the view's paints since the last frame (they are its cost too)
        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self._paint_frame)

    # -- state ----------------------------------------------------------------------------

    @property
    def is_streaming(self) -> bool:
        return self._task is not None

    @property
    def opening(self) -> bool:
        """A stored conversation is being read, to be shown (`open_chat`)."""
        return self._opening is not None

    async def wait_opened(self) -> None:
        """Return once no conversation is being opened: the one asked for is shown, or
        could not be (said)."""
        while (task := self._opening) is not None:
            await asyncio.wait([task])

    @property
    def shows_reply(self) -> bool:
        """The reply in flight belongs to the conversation shown."""
        return self._streaming is not None and self._streaming is self.session

    @property
    def streaming_conversation_id(self) -> int | None:
        return self._streaming.conversation_id if self._streaming is not None else None

    @property
    def streaming_title(self) -> str:
        """The title of the conversation the reply in flight goes to ("" if none)."""
        return self._streaming.conversation.title if self._streaming is not None else ""

    @property
    def blocked_reason(self) -> str | None:
        """Why no reply can be started right now (None: one can)."""
        return self._blocked

    def block(self, reason: str | None) -> None:
        """Refuse to start replies (send, regenerate, continue, edit) while `reason` holds,
        e.g. the offline engine is starting; None lifts it."""
        self._blocked = reason

    def _can_start(self) -> bool:
        """The send rule every way of starting a reply obeys; says why when it refuses."""
        if self.is_streaming:
            return False
        if self._blocked:
            self.error.emit(self._blocked)
            return False
        return True

    @property
    def model(self) -> str:
        """The model the next message goes to (a conversation's own choice wins)."""
        return self.session.effective_model

    @property
    def _context_window(self) -> int:
        return self.profile.context_window if self.profile is not None else 0

    @property
    def client(self) -> ChatClient:
        return self._client

    @property
    def conversation_id(self) -> int | None:
        return self.session.conversation_id

    def set_model(self, model: str) -> None:
        """Applies from the next prompt on; a reply in flight keeps its model. A conversation
        that has its own model keeps the choice to itself; otherwise it becomes the profile's
        model (remembered)."""
        model = model.strip()
        if not model or model == self.model:
            return
        overrides = self.session.overrides
        if overrides.model is not None:
            self.session.set_overrides(dataclasses.replace(overrides, model=model))
            return
        self._model = self.session.model = model
        if self._remember_model is not None:
            self._remember_model(model)

    def configure(self, client: ChatClient, profile: Profile | None, model: str, *,
                  system_prompt: str, params: GenerationParams,
                  remember_model: Callable[[str], None] | None) -> None:
        """Talk to another server / with other defaults from the next message on. A reply in
        flight finishes on the client it started with, which is closed afterwards."""
        old = self._client
        self._client, self.profile, self._model = client, profile, model
        self._system_prompt, self._params = system_prompt, params
        self._remember_model = remember_model
        session = self.session
        session.client, session.model, session.system_prompt = client, model, system_prompt
        session.params, session.context_window = params, self._context_window
        self._set_retrieval(client, profile)
        if old is not client:
            self._retired.append(old)  # closed when idle (a reply may still be using it)
            if not self.is_streaming:
                self._close_retired()

    def _set_retrieval(self, client: ChatClient, profile: Profile | None) -> None:
        """Hybrid retrieval (BM25 + embeddings) while the profile has embeddings on."""
        model = profile.embeddings_model if profile is not None else ""
        old = self._retrieval
        if old is not None and old.client is client and old.model == model:
            return
        if old is not None:
            old.close()
        self._retrieval = None
        if model and self.store is not None:
            self._retrieval = HybridRetrieval(self.store, client, model,
                                              self.documents_notice.emit)
        self.session.retrieval = self._retrieval

    def document_ready(self, ref: DocumentRef) -> None:
        """A document was read: with embeddings on, embed its passages in the background."""
        if self._retrieval is not None and (
                ref.tokens > self.document_budget * documents.SMALL_SHARE):
            self.tasks.start(self._retrieval.prepare([ref.sha256]),
                             what="Embedding a document's passages")

    def _close_retired(self) -> None:
        for client in self._retired:
            self.tasks.start(client.aclose(), what="Closing the previous connection")
        self._retired.clear()

    @property
    def overrides(self) -> ConversationSettings:
        return self.session.overrides

    def set_overrides(self, overrides: ConversationSettings) -> None:
        self.session.set_overrides(overrides)

    def usage_totals(self) -> ConversationTotals:
        return self.session.usage_totals(self.profile)

    def last_reply_text(self) -> str | None:
        for message in reversed(self.session.messages):
            if message.role is Role.ASSISTANT:
                return message.content
        return None

    # -- replies --------------------------------------------------------------------------

    def send(self, prompt: str, attachments: list[Attachment] | tuple[()] = (),
             documents: Sequence[DocumentRef] = ()) -> bool:
        """Start a reply to `prompt`. False when nothing was sent (streaming, blocked, an
        image that cannot be sent, the history could not save it): then nothing changed and
        `error` said why, so the composer keeps what was typed."""
        if not (prompt.strip() or attachments or documents) or not self._can_start():
            return False
        first = self.session.conversation_id is None
        opening = self._opening
        if not self._start(lambda: self.session.start(prompt, attachments, documents)):
            return False
        if opening is not None and opening is self._opening:
            # a conversation still loading (the one restored at start-up, a click just
            # before): sending here is the newer choice, the reply stays on screen
            opening.cancel()
            self._opening = None
        if first:
            self.conversations_changed.emit()  # a new conversation, titled from the prompt
        return True

    def continue_reply(self) -> bool:
        """Extend a stopped or interrupted reply in place (no new turn in the transcript)."""
        if not self.session.messages or not self._can_start():
            return False
        return self._start(self.session.start_continue, resumed=True,
                           refused="The reply was not continued. {why}. Try again in a moment.")

    def regenerate(self) -> bool:
        """Answer the last prompt again; the previous answer stays as a sibling."""
        if not self.session.messages or not self._can_start():
            return False
        return self._start(self.session.start_regenerate, reopen=True,
                           refused="The answer was not regenerated. {why}. Try again in a "
                                   "moment.")

    def edit_and_resend(self, index: int, prompt: str) -> bool:
        if not prompt.strip() or not self._can_start():
            return False
        return self._start(lambda: self.session.start_edit(index, prompt), reopen=True)

    def load_image(self, path: str) -> Attachment:
        """An image file to attach (read and checked here, not in a widget). Raises ValueError
        with text for the user."""
        file = Path(path)
        try:
            check_size(file.stat().st_size, f"'{file.name}'")  # before reading 1 GB by mistake
            data = file.read_bytes()
        except OSError as exc:
            raise ValueError(f"Could not read '{file.name}': {exc.strerror or exc}.") from exc
        return Attachment.image(data, file.name)

    def set_document_share(self, share: float) -> None:
        """The share of the context window documents may take, from the next prompt on."""
        self._document_share = self.session.document_share = share

    @property
    def document_budget(self) -> int:
        """Tokens the conversation's documents may take in the next request."""
        return documents.budget_for(self._context_window, self.session.document_share)

    def stop(self) -> None:
        if self._task is not None:
            log.info("stop requested")
            self._task.cancel()

    def _start(self, start: Callable[[], Turn], *, reopen: bool = False, resumed: bool = False,
               refused: str = ("Your message was not sent — it is still in the message box. "
                               "{why}. Press Enter to try again."),
               ) -> bool:
        """Run one of the session's `start…` and stream its turn; a refusal (ValueError:
        an image; StoreError: the history) is reported (`refused`, with `{why}` filled in)
        and changes nothing."""
        try:
            turn = start()
        except (ValueError, StoreError) as exc:
            log.warning("reply not started: %s", exc)
            self.error.emit(str(exc) if isinstance(exc, ValueError) else
                            refused.format(why=str(exc).rstrip(".")))
            return False
        self._turn = turn
        self._streaming = self.session
        if resumed:
            self.reply_resumed.emit(turn.reply, len(self.session.messages) - 1)
        elif reopen:  # the path changed above the new reply: show it as it now is
            self.conversation_opened.emit(self.session.conversation)
        else:
            self.prompt_sent.emit(turn.prompt, len(self.session.messages) - 1)
        # A full collection stalls the loop for ~30-50 ms; a reply's own objects are freed by
        # reference counting, so cyclic collection waits until the reply has ended.
        gc.disable()
        self._task = self.tasks.start(self._run(turn, self.session), what="The reply")
        if not resumed:
            self.reply_started.emit(turn.model)
        self.streaming_changed.emit(True)
        self._pacer.restart()
        self._painted_ms = 0.0
        self._frame.setInterval(FRAME_MS)
        self._frame.start()
        return True

    # -- conversations --------------------------------------------------------------------

    def new_chat(self) -> None:
        """A reply in flight goes on in its own conversation."""
        if self.session.messages:
            self.session = self._new_session()
            self.conversations_changed.emit()
        self.conversation_opened.emit(self.session.conversation)

    def open_chat(self, conversation_id: int, message_id: int | None = None) -> None:
        """Open a stored conversation (at `message_id`'s branch); the path loads off-thread."""
        if self.store is None:
            return
        if self._opening is not None:
            self._opening.cancel()  # the newest choice wins
            self._opening = None
        if message_id is None and self._return_to_reply(conversation_id):
            return
        self._opening = self.tasks.start(self._open(conversation_id, message_id),
                                         what="Opening the conversation")

    def switch_branch(self, message_id: int, step: int) -> None:
        """Show the previous (-1) or next (+1) alternative of a message. Only a message of
        the conversation shown has alternatives here; any other id is ignored."""
        if self.shows_reply or self.store is None or self.conversation_id is None:
            return
        if message_id not in {m.id for m in self.session.messages if m.id is not None}:
            return
        try:
            siblings = self.store.siblings(message_id)
        except StoreError as exc:
            self.error.emit(str(exc))
            return
        index = siblings.index(message_id) + step if message_id in siblings else -1
        if 0 <= index < len(siblings):
            self.open_chat(self.conversation_id, siblings[index])

    async def _open(self, conversation_id: int, message_id: int | None) -> None:
        store = self.store
        assert store is not None
        try:
            if message_id is not None:
                store.set_active_leaf(conversation_id, message_id)
            stored = store.conversation(conversation_id)
            path = await asyncio.to_thread(store.active_path, conversation_id)
            overrides = store.conversation_settings(conversation_id)
        except StoreError as exc:
            log.warning("could not open conversation %d: %s", conversation_id, exc)
            self.error.emit(f"This conversation could not be opened: {exc}")
            return
        finally:
            if self._opening is asyncio.current_task():
                self._opening = None
        if stored is None or self._return_to_reply(conversation_id):
            return
        conversation = Conversation(path, stored.title)
        self.session = self._new_session(conversation, conversation_id, overrides)
        self.conversation_opened.emit(conversation)

    def _return_to_reply(self, conversation_id: int) -> bool:
        """Show the conversation a reply is streaming into, live: what arrived so far, then
        the rest as it comes. False when no reply streams into it."""
        streaming, turn = self._streaming, self._turn
        if streaming is None or turn is None or streaming.conversation_id != conversation_id:
            return False
        if streaming is not self.session:
            self.session = streaming
            self.conversation_opened.emit(streaming.conversation)
            turn.take_pending()  # already in the reply's text, shown in full below
            self.reply_started.emit(turn.model)
            if turn.reply.reasoning:
                self.reasoning_arrived.emit(turn.reply.reasoning)
            if turn.reply.content:
                self.text_arrived.emit(turn.reply.content)
        return True

    def save_again(self) -> bool:
        """Save the finished replies the history could not take (retried every few seconds,
        e.g. until there is disk space again). True once none is left."""
        for reply in list(self._unsaved):  # only replies of a stored conversation get here
            try:
                assert self.store is not None
                self.store.finish_reply(reply)
            except StoreError as exc:
                log.warning("reply %s still not saved: %s", reply.id, exc)
                self._report_saving(exc.reason)
                return False
            self._unsaved.remove(reply)
        self._save_retry.stop()
        self._report_saving("")
        return True

    def _report_saving(self, problem: str) -> None:
        if problem != self._save_problem:
            self._save_problem = problem
            self.save_problem.emit(problem)

    def conversation_renamed(self, conversation_id: int, title: str) -> None:
        for session in (self.session, self._streaming):  # shown, or being written in
            if session is not None and session.conversation_id == conversation_id:
                session.conversation.title = title

    def conversation_deleted(self, conversation_id: int) -> None:
        """The open conversation went from the list: show a new chat instead."""
        if conversation_id == self.conversation_id and not self.shows_reply:
            self.session = self._new_session()
            self.conversation_opened.emit(self.session.conversation)

    def is_replying_in(self, conversation_id: int) -> bool:
        return self.is_streaming and conversation_id == self.streaming_conversation_id

    async def aclose(self) -> None:
        """Stop a reply in flight (keeping its text) and release the HTTP clients."""
        self.stop()
        if self._opening is not None:
            self._opening.cancel()
        await self.tasks.idle()  # the reply settles (saved, stopped); old clients close
        if self._unsaved and not self.save_again():
            log.error("closing with %d reply(ies) the history could not save",
                      len(self._unsaved))
        self._close_retired()
        await self.tasks.idle()
        if self._retrieval is not None:
            self._retrieval.close()
        await self._client.aclose()

    def _new_session(
        self, conversation: Conversation | None = None, conversation_id: int | None = None,
        overrides: ConversationSettings | None = None,
    ) -> ChatSession:
        session = ChatSession(self._client, self._model, self._system_prompt, conversation,
                              store=self.store, conversation_id=conversation_id,
                              params=self._params, context_window=self._context_window,
                              overrides=overrides or ConversationSettings(), tools=self.tools)
        session.document_share = self._document_share
        session.retrieval = self._retrieval
        return session

    # -- tool consent ---------------------------------------------------------------------

    async def ask_tool(self, call: ToolCall, tool: ToolInfo) -> Decision:
        """Ask the user whether `call` may run (the approval card answers through
        `answer_tool`); Stop cancels the wait with the rest of the turn."""
        self._approval = asyncio.get_running_loop().create_future()
        self.pending_approval = (call, tool)
        self._paint_frame()  # the row of the call in question is shown with the card
        self.tool_approval_requested.emit(call, tool)
        try:
            return await self._approval
        finally:
            self._approval = None
            self.pending_approval = None

    def answer_tool(self, decision: Decision) -> None:
        if self._approval is not None and not self._approval.done():
            self._approval.set_result(decision)

    @property
    def waiting_for_approval(self) -> bool:
        return self._approval is not None

    @property
    def reply_in_flight(self) -> Message | None:
        """The reply being written (in whichever conversation), None when none is."""
        return self._turn.reply if self._turn is not None else None

    # -- the reply in flight --------------------------------------------------------------

    async def _run(self, turn: Turn, session: ChatSession) -> None:
        try:
            await session.run(turn)
            # The last text goes to the view in a turn of the loop of its own, apart from
            # the end of receiving and saving, and apart from the reply's end in the view.
            self._paint_frame()
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            pass  # the session marked the reply stopped and kept its text
        finally:
            self._finish(turn)

    @property
    def frame_interval_ms(self) -> int:
        """How long the next frame of a streaming reply waits (the pacer's choice)."""
        return self._frame.interval()

    def view_painted(self, ms: float) -> None:
        """The view took `ms` to paint: what a frame costs includes the paints it causes, and
        the pacer spaces frames by that whole cost."""
        if self._turn is not None:
            self._painted_ms += ms

    def _paint_frame(self) -> None:
        if self._turn is None:
            return
        text, reasoning = self._turn.take_pending()
        if not self.shows_reply:  # streaming into a conversation not shown: saved, not drawn
            self._report_saving(self._turn.save_error or "")
            return
        started = time.perf_counter()
        if reasoning:
            self.reasoning_arrived.emit(reasoning)
        if text:
            self.text_arrived.emit(text)
        spent_ms = (time.perf_counter() - started) * 1000 + self._painted_ms
        self._painted_ms = 0.0
        self._frame.setInterval(self._pacer.next_interval_ms(spent_ms))
        if self._turn.take_tools_changed():
            self.tool_calls_changed.emit(self._turn.reply)
        notice = self._turn.notice or ""
        if notice != self._notice:
            self._notice = notice
            self.notice_changed.emit(notice)
        self._report_saving(self._turn.save_error or "")

    def _finish(self, turn: Turn) -> None:
        self._paint_frame()  # whatever arrived after the last frame
        self._frame.stop()
        gc.enable()
        shown, streaming = self.shows_reply, self._streaming
        self._turn = None
        self._task = None
        self._streaming = None
        reply = turn.reply
        self.last_error_details = turn.error_details
        log.info("reply %s: %d chars, finish=%s", reply.state.value, len(reply.content),
                 reply.finish_reason)
        if shown:
            self.reply_finished.emit(reply)
        else:
            self._finished_elsewhere(turn, streaming)
        if turn.save_error:
            self._unsaved.append(reply)
            self._save_retry.start()
            self._report_saving(turn.save_error)
        elif not self._unsaved:
            self._report_saving("")
        if turn.trimmed_turns and not reply.error:
            self.context_trimmed.emit(turn.trimmed_turns)
        self._close_retired()
        if reply.state is ReplyState.FAILED and turn.new_prompt and shown:
            self.prompt_returned.emit(turn.prompt)
        self.streaming_changed.emit(False)
        self.conversations_changed.emit()  # newest first: this one moved to the top

    def _finished_elsewhere(self, turn: Turn, session: ChatSession | None) -> None:
        """A reply ended in a conversation not shown: it is saved there; say how it ended,
        and a prompt that could not be sent goes back to that conversation's draft."""
        reply = turn.reply
        title = (session.conversation.title if session is not None else "") or "another chat"
        if reply.state is ReplyState.FAILED and turn.new_prompt:
            key = session.conversation_id if session is not None else None
            self.prompt_returned_elsewhere.emit(key, turn.prompt)
        outcome = {ReplyState.COMPLETE: "is complete", ReplyState.STOPPED: "was stopped",
                   ReplyState.INTERRUPTED: "was interrupted"}.get(reply.state, "failed")
        why = f": {reply.error}" if reply.error and reply.state is not ReplyState.COMPLETE else ""
        self.finished_elsewhere.emit(f"The reply in “{title}” {outcome}{why}")
