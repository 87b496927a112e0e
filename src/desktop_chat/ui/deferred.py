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
import concurrent.futures
import gc
import logging
import sys
import threading
import time

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

import desktop_chat
from desktop_chat.core.llm import sdk

log = logging.getLogger("desktop_chat.startup")

FALLBACK_MS = 2_000  # a window never painted (not shown) still gets its start-up work
# While imports run in helper threads, the GUI thread gets the interpreter back within 1 ms
# (the default is 5 ms, and several helper threads may be queued before it).
LOADING_SWITCH_INTERVAL_S = 0.001
DEFAULT_SWITCH_INTERVAL_S = 0.005  # Python's
PAUSE_LIMIT_S = 5.0  # `Loading`'s pause never holds back the SDK longer than this


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


class Loading:
    """Loading, off the GUI thread, what the first frame did without: a helper thread loads
    markdown with code highlighting first (the conversation left open is shown with them),
    then starts the SDK's import (`core/llm/sdk.py`, a thread of its own) and waits for it;
    the first reply needs both. A request made meanwhile (a prompt sent at once) starts the
    SDK's import at once instead.

    Meanwhile the GUI thread must stay responsive although the helper threads want the
    interpreter all the time: threads switch every 1 ms instead of 5, and the cyclic garbage
    collector is off (its full passes over the objects being imported would hold the
    interpreter for tens of ms); `finish` undoes both and freezes what was loaded, so
    that later full passes skip it (as `app.settle_startup_objects` did for the rest).
    One helper thread at a time: with two, a 13 ms task on the GUI thread took ~40 ms."""

    def __init__(self, *, pause_after_markdown: bool = False) -> None:
        """`pause_after_markdown`: once markdown can show a conversation, wait for `resume`
        (at most `PAUSE_LIMIT_S`), so that the GUI thread has the interpreter to itself while
        it shows the conversation left open."""
        # (another window of this process may be loading too: never "restore" its 1 ms)
        self._switch_interval = max(sys.getswitchinterval(), DEFAULT_SWITCH_INTERVAL_S)
        self._gc_was_enabled = gc.isenabled()
        # The loop's worker threads (asyncio.to_thread: the key, the HTTP client, the history
        # check) start now, while nothing competes with the GUI thread for the interpreter.
        asyncio.get_event_loop().run_in_executor(None, time.sleep, 0)
        sys.setswitchinterval(LOADING_SWITCH_INTERVAL_S)
        gc.disable()
        self.started = time.perf_counter()
        self._markdown: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._resume = threading.Event()
        if not pause_after_markdown:
            self._resume.set()
        self._thread = threading.Thread(target=_load, args=(self._markdown, self._resume),
                                        name="loading", daemon=True)
        self._thread.start()

    def resume(self) -> None:
        """Go on after the pause (`pause_after_markdown`)."""
        self._resume.set()

    async def markdown_ready(self) -> None:
        """Return once markdown and code highlighting are loaded enough to show a
        conversation (`markdown.warm_up_parser`; or failed to: the first use says why)."""
        await asyncio.wrap_future(self._markdown)

    async def done(self) -> None:
        """Return once everything is loaded (a failed SDK import counts as done: every
        request says what went wrong)."""
        await asyncio.to_thread(self._thread.join)
        try:
            await sdk.load()
        except Exception:
            log.exception("the SDK could not be loaded")

    def finish(self, *, keep_gc_off: bool = False) -> None:
        """`keep_gc_off`: a reply is streaming, and its end turns the collector on again."""
        sys.setswitchinterval(self._switch_interval)
        gc.freeze()
        if self._gc_was_enabled and not keep_gc_off:
            gc.enable()
        log.info("background loading done (%.0f ms after the first frame)",
                 (time.perf_counter() - self.started) * 1000)


def _load(markdown_done: concurrent.futures.Future[None], resume: threading.Event) -> None:
    started = time.perf_counter()
    try:
        from desktop_chat.core.render import markdown

        markdown.warm_up_parser()
        markdown_done.set_result(None)
        resume.wait(PAUSE_LIMIT_S)
        markdown.warm_up()  # the other common languages' lexers
        log.info("markdown and code highlighting ready (%.0f ms)",
                 (time.perf_counter() - started) * 1000)
    except Exception:
        log.exception("markdown could not be loaded ahead")
    finally:
        if not markdown_done.done():
            markdown_done.set_result(None)
    concurrent.futures.wait([sdk.preload()])
    _ = desktop_chat.__version__  # read from the package's metadata (~20 ms), here
