"""What waits for the window's first frame: the moment it is on screen, and the work that
starts then instead of before it (issue #18: on screen in half a second).

`FirstFrame` watches the main window for its first paint (with a fallback for a window that
is never shown: embedding, tools); `Connections` holds its start-up requests until then, and
the composition root (app.py) starts the background loading: the openai SDK
(core/llm/sdk.py), markdown and code highlighting, the history's integrity check. Every one of
them is also loaded on first use, so nothing depends on this order for correctness: a prompt
sent before the SDK is loaded simply waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from desktop_chat.core.llm import sdk
from desktop_chat.core.render import markdown

log = logging.getLogger("desktop_chat.startup")

FALLBACK_MS = 2_000  # a window never painted (not shown) still gets its start-up work


class FirstFrame(QObject):
    """Emits `shown` once, just after the watched window painted its first frame."""

    shown = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._window: QWidget | None = None
        self._shown = False
        self._waiters: list[asyncio.Future[None]] = []
        self._fallback = QTimer(self)
        self._fallback.setSingleShot(True)
        self._fallback.timeout.connect(self._open)

    @property
    def is_shown(self) -> bool:
        return self._shown

    def watch(self, window: QWidget, fallback_ms: int = FALLBACK_MS) -> None:
        self._window = window
        window.installEventFilter(self)
        self._fallback.start(fallback_ms)

    async def wait(self) -> None:
        """Return once the first frame is on screen."""
        if self._shown:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and watched is self._window:
            watched.removeEventFilter(self)
            # The window's widgets are painted in this same pass: after it, the frame is done.
            QTimer.singleShot(0, self._open)
        return False

    def _open(self) -> None:
        if self._shown:
            return
        self._shown = True
        self._fallback.stop()
        if self._window is not None:
            self._window.removeEventFilter(self)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        self.shown.emit()


def preload() -> threading.Thread:
    """Start loading, off the GUI thread, what the first frame did without: the SDK (its own
    thread) and markdown with code highlighting (the first reply must not stall on them)."""
    sdk.preload()
    thread = threading.Thread(target=_warm_up_markdown, name="warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up_markdown() -> None:
    started = time.perf_counter()
    markdown.warm_up()
    log.info("markdown and code highlighting ready (%.0f ms)",
             (time.perf_counter() - started) * 1000)
