"""The built-in offline engine while the chat uses it: started (the demo model prepared first
when no model file is chosen), watched (an engine that dies is reported, not found out by the
next message), stopped. A QObject adapter over `core.engine.offline.LocalEngine`: `Connections`
decides when, this object knows how, and says what happened through signals."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_chat.core.engine import offline as engines
from desktop_chat.ui.tasks import Tasks

log = logging.getLogger("desktop_chat.engine")

WATCH_MS = 1000
ENGINE_DIED = ("The offline engine stopped unexpectedly. If the computer ran out of memory, "
               "close other programs or pick a smaller model; to restart it, open Settings "
               "and press OK.")


class EngineSupervisor(QObject):
    progress = Signal(str)  # for the status bar ("Loading the model…"), "" when done
    ready = Signal(str, str, int)  # base URL, model id, context size (0: unknown)
    failed = Signal(str)  # it could not start: what to tell the user
    died = Signal(str)  # it stopped on its own while in use: what to tell the user
    demo_changed = Signal(bool)  # the tiny demo model is (or is no longer) the one in use

    def __init__(self, tasks: Tasks, data_dir: Path, engine: engines.LocalEngine | None = None,
                 parent: QObject | None = None) -> None:
        """`tasks`: the owner's, so that its `idle` and `aclose` include starting and
        stopping the engine."""
        super().__init__(parent)
        self._tasks = tasks
        self._data_dir = data_dir
        self.engine = engine  # created on the first start
        self.demo_in_use = False  # label the demo model while it is in use
        self._starting: asyncio.Task[Any] | None = None  # the newest start
        self._watch = QTimer(self, interval=WATCH_MS)
        self._watch.timeout.connect(self._check)

    def start(self, gguf_path: str) -> None:
        """Serve `gguf_path` ("" = the demo model); an engine already serving it is kept.
        Ends with `ready` or `failed` (only the newest start reports a failure)."""
        task = self._tasks.start(
            self._start(gguf_path), what="Starting the offline engine",
            on_error=lambda exc: self._fail(task, f"The offline engine could not start "
                                            f"({type(exc).__name__}). The log has the details."))
        self._starting = task

    def stop(self) -> None:
        """Not needed any more (another profile, or none): cancel a start, stop the engine."""
        self._set_demo(False)
        self._watch.stop()
        if self._starting is not None:
            self._starting.cancel()
            self._starting = None
        if self.engine is not None and self.engine.running:
            self._tasks.start(self.engine.stop(), what="Stopping the offline engine")

    async def aclose(self) -> None:
        """The app closes: no engine process outlives it. (Touches no Qt object: the window
        that owns this one may be gone already.)"""
        if self.engine is not None:
            await self.engine.stop()

    async def _start(self, gguf_path: str) -> None:
        engine = self.engine = self.engine or engines.LocalEngine()
        path = gguf_path
        self._set_demo(not path or Path(path).name == engines.DEMO_FILE)
        try:
            if not path:
                self.progress.emit("Preparing the demo model…")
                path = str((await asyncio.to_thread(engines.demo_model, self._data_dir)).path)
            wanted = Path(path).expanduser().absolute()
            if engine.running and engine.base_url and engine.model_path == wanted:
                base_url = engine.base_url  # e.g. other settings changed: no restart
            else:
                base_url = await engine.start(wanted, self.progress.emit)
        except engines.EngineError as exc:
            self._fail(asyncio.current_task(), exc.message)
            return
        self.progress.emit("")
        self._watch.start()
        self.ready.emit(base_url, engine.model_id, engine.context_size)

    def _fail(self, task: asyncio.Future[Any] | None, message: str) -> None:
        if task is not self._starting:
            return  # a newer start replaced this one: only that one reports
        self._set_demo(False)
        self.progress.emit("")
        self.failed.emit(message)

    def _check(self) -> None:
        """The engine died while in use (the system's out-of-memory killer, a crash)."""
        engine = self.engine
        if engine is None or engine.running or engine.pid is None:  # fine, or stopped by us
            return
        log.error("the offline engine (pid %d) exited unexpectedly", engine.pid)
        self._watch.stop()
        engine.kill()  # reaps it
        self._set_demo(False)
        self.died.emit(ENGINE_DIED)

    def _set_demo(self, in_use: bool) -> None:
        if in_use != self.demo_in_use:
            self.demo_in_use = in_use
            self.demo_changed.emit(in_use)
