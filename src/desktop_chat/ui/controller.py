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
from desktop_chat.core.models import Reply, ReplyState, Role
from desktop_chat.core.session import ChatSession

log = logging.getLogger("desktop_chat.controller")

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
        remember_model: Callable[[str], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._loop = loop
        self._client = client
        self._model = model
        self._system_prompt = system_prompt
        self._remember_model = remember_model
        self.session = self._new_session()
        self.sessions: list[ChatSession] = [self.session]
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

    def set_model(self, model: str) -> None:
        """Applies from the next prompt on; a reply in flight keeps its model."""
        model = model.strip()
        if not model or model == self._model:
            return
        self._model = self.session.model = model
        if self._remember_model is not None:
            self._remember_model(model)

    def last_reply_text(self) -> str | None:
        for message in reversed(self.session.conversation.messages):
            if message.role is Role.ASSISTANT:
                return message.content
        return None

    # -- slots ----------------------------------------------------------------------------

    def send(self, prompt: str) -> bool:
        """Start a reply to `prompt`; False (and nothing changes) if one is streaming."""
        if self.is_streaming or not prompt.strip():
            return False
        reply = self.session.start(prompt)
        self._reply = reply
        # A full collection stalls the loop for ~30-50 ms; a reply's own objects are freed by
        # reference counting, so cyclic collection waits until the reply has ended.
        gc.disable()
        self._task = self._loop.create_task(self._run(reply))
        self.reply_started.emit(reply.model)
        self.streaming_changed.emit(True)
        self._frame.start()
        if len(self.session.conversation.messages) == 1:
            self.conversations_changed.emit()  # it has a title now
        return True

    def stop(self) -> None:
        if self._task is not None:
            log.info("stop requested")
            self._task.cancel()

    def new_chat(self) -> None:
        if self.is_streaming:
            return
        if self.session.conversation.messages:
            self.session = self._new_session()
            self.sessions.insert(0, self.session)
            self.conversations_changed.emit()
        self.conversation_opened.emit(self.session.conversation)

    def open_chat(self, index: int) -> None:
        if self.is_streaming or not 0 <= index < len(self.sessions):
            return
        self.session = self.sessions[index]
        self.session.model = self._model
        self.conversation_opened.emit(self.session.conversation)

    async def aclose(self) -> None:
        """Stop a reply in flight (keeping its text) and release the HTTP client."""
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._client.aclose()

    def _new_session(self) -> ChatSession:
        return ChatSession(self._client, self._model, self._system_prompt)

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
        if reply.state is ReplyState.FAILED:
            self.prompt_returned.emit(reply.prompt)
        self.streaming_changed.emit(False)
