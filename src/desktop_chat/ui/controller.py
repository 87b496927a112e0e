"""QObject adapter over core: slots in (send, stop), signals out.

The consumer task fills a `Reply` without touching Qt; a frame timer (at most one tick per
~16 ms, only while a reply streams) hands the text that arrived since the last frame to the
view in one signal.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_chat.core.client import ChatClient
from desktop_chat.core.models import Conversation, Reply, ReplyState, Role
from desktop_chat.core.session import ChatSession
from desktop_chat.core.store import ConversationSummary, SearchHit, Store

log = logging.getLogger("desktop_chat.controller")

MAX_LISTED = 500
FRAME_MS = 16  # paint at most once a frame...
MAX_FRAME_MS = 100
# ...but while text pours in faster than it can be drawn, space the paints so that drawing
# takes at most ~1/8 of the time: the consumer keeps the provider's full speed.
PAINT_SHARE = 8


class ChatController(QObject):
    reply_started = Signal(str)  # model
    text_arrived = Signal(str)
    reasoning_arrived = Signal(str)
    notice_changed = Signal(str)  # transient status ("retrying in 2 s"), "" when cleared
    reply_finished = Signal(object)  # the Reply, in its final state
    prompt_returned = Signal(str)  # a prompt that could not be sent, for the composer
    streaming_changed = Signal(bool)
    conversations_changed = Signal()
    conversation_opened = Signal(object)  # Conversation

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: ChatClient,
        model: str,
        system_prompt: str = "",
        store: Store | None = None,
        remember_model: Callable[[str], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._loop = loop
        self._client = client
        self._model = model
        self._system_prompt = system_prompt
        self.store = store
        self._remember_model = remember_model
        self.session = self._new_session()
        self._reply: Reply | None = None
        self._task: asyncio.Task[None] | None = None
        self._notice = ""
        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self._paint_frame)

    # -- state ----------------------------------------------------------------------------

    @property
    def is_streaming(self) -> bool:
        return self._task is not None

    @property
    def model(self) -> str:
        return self._model

    @property
    def conversation_id(self) -> int | None:
        return self.session.conversation_id

    def set_model(self, model: str) -> None:
        """Applies from the next prompt on; a reply in flight keeps its model."""
        model = model.strip()
        if not model or model == self._model:
            return
        self._model = self.session.model = model
        if self._remember_model is not None:
            self._remember_model(model)

    def last_reply_text(self) -> str | None:
        for message in reversed(self.session.messages):
            if message.role is Role.ASSISTANT:
                return message.content
        return None

    # -- replies --------------------------------------------------------------------------

    def send(self, prompt: str) -> bool:
        """Start a reply to `prompt`; False (and nothing changes) if one is streaming."""
        if self.is_streaming or not prompt.strip():
            return False
        first = self.session.conversation_id is None
        self._begin(self.session.start(prompt))
        if first:
            self.conversations_changed.emit()  # a new conversation, titled from the prompt
        return True

    def regenerate(self) -> bool:
        """Answer the last prompt again; the previous answer stays as a sibling."""
        if self.is_streaming or not self.session.messages:
            return False
        self._begin(self.session.start_regenerate(), reopen=True)
        return True

    def edit_and_resend(self, index: int, prompt: str) -> bool:
        if self.is_streaming or not prompt.strip():
            return False
        self._begin(self.session.start_edit(index, prompt), reopen=True)
        return True

    def stop(self) -> None:
        if self._task is not None:
            log.info("stop requested")
            self._task.cancel()

    def _begin(self, reply: Reply, *, reopen: bool = False) -> None:
        self._reply = reply
        if reopen:  # the path changed above the new reply: show it as it now is
            self.conversation_opened.emit(self.session.conversation)
        # A full collection stalls the loop for ~30-50 ms; a reply's own objects are freed by
        # reference counting, so cyclic collection waits until the reply has ended.
        gc.disable()
        self._task = self._loop.create_task(self._run(reply))
        self.reply_started.emit(reply.model)
        self.streaming_changed.emit(True)
        self._frame.start()

    # -- conversations --------------------------------------------------------------------

    def new_chat(self) -> None:
        if self.is_streaming:
            return
        if self.session.messages:
            self.session = self._new_session()
            self.conversations_changed.emit()
        self.conversation_opened.emit(self.session.conversation)

    def open_chat(self, conversation_id: int, message_id: int | None = None) -> None:
        """Open a stored conversation (at `message_id`'s branch); the path loads off-thread."""
        if self.is_streaming or self.store is None:
            return
        self._loop.create_task(self._open(conversation_id, message_id))

    def switch_branch(self, message_id: int, step: int) -> None:
        """Show the previous (-1) or next (+1) alternative of a message."""
        if self.is_streaming or self.store is None or self.conversation_id is None:
            return
        siblings = self.store.siblings(message_id)
        index = siblings.index(message_id) + step if message_id in siblings else -1
        if 0 <= index < len(siblings):
            self.open_chat(self.conversation_id, siblings[index])

    async def _open(self, conversation_id: int, message_id: int | None) -> None:
        store = self.store
        assert store is not None
        if message_id is not None:
            store.set_active_leaf(conversation_id, message_id)
        stored = store.conversation(conversation_id)
        path = await asyncio.to_thread(store.active_path, conversation_id)
        if stored is None or self.is_streaming:
            return
        conversation = Conversation([m.to_message() for m in path], stored.title)
        self.session = self._new_session(conversation, conversation_id)
        self.conversation_opened.emit(conversation)

    def conversations(self) -> list[ConversationSummary]:
        if self.store is None:
            return []
        return [c for c in self.store.list_conversations(MAX_LISTED) if c.message_count]

    def rename(self, conversation_id: int, title: str) -> None:
        if self.store is not None and title.strip():
            self.store.rename_conversation(conversation_id, title.strip())
            if conversation_id == self.conversation_id:
                self.session.conversation.title = title.strip()
            self.conversations_changed.emit()

    def delete(self, conversation_id: int) -> None:
        """Hidden at once, removed for good only later: `restore` undoes it."""
        if self.store is None or (self.is_streaming and conversation_id == self.conversation_id):
            return
        self.store.delete_conversation(conversation_id)
        if conversation_id == self.conversation_id:
            self.session = self._new_session()
            self.conversation_opened.emit(self.session.conversation)
        self.conversations_changed.emit()

    def restore(self, conversation_id: int) -> None:
        if self.store is not None:
            self.store.restore_conversation(conversation_id)
            self.conversations_changed.emit()

    def search(self, query: str) -> list[SearchHit]:
        return self.store.search(query, limit=100) if self.store and query.strip() else []

    async def aclose(self) -> None:
        """Stop a reply in flight (keeping its text) and release the HTTP client."""
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._client.aclose()

    def _new_session(
        self, conversation: Conversation | None = None, conversation_id: int | None = None
    ) -> ChatSession:
        return ChatSession(self._client, self._model, self._system_prompt, conversation,
                           store=self.store, conversation_id=conversation_id)

    # -- the reply in flight --------------------------------------------------------------

    async def _run(self, reply: Reply) -> None:
        try:
            await self.session.run(reply)
        except asyncio.CancelledError:
            pass  # the session marked the reply stopped and kept its text
        finally:
            self._finish(reply)

    def _paint_frame(self) -> None:
        if self._reply is None:
            return
        text, reasoning = self._reply.take_pending()
        started = time.perf_counter()
        if reasoning:
            self.reasoning_arrived.emit(reasoning)
        if text:
            self.text_arrived.emit(text)
        spent_ms = (time.perf_counter() - started) * 1000
        self._frame.setInterval(int(min(MAX_FRAME_MS, max(FRAME_MS, spent_ms * PAINT_SHARE))))
        notice = self._reply.notice or ""
        if notice != self._notice:
            self._notice = notice
            self.notice_changed.emit(notice)

    def _finish(self, reply: Reply) -> None:
        self._paint_frame()  # whatever arrived after the last frame
        self._frame.stop()
        gc.enable()
        self._reply = None
        self._task = None
        log.info("reply %s: %d chars, finish=%s", reply.state.value, len(reply.text),
                 reply.finish_reason)
        self.reply_finished.emit(reply)
        if reply.state is ReplyState.FAILED and reply.new_prompt:
            self.prompt_returned.emit(reply.prompt)
        self.streaming_changed.emit(False)
        self.conversations_changed.emit()  # newest first: this one moved to the top
