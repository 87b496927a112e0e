"""Background work on the GUI thread's (qasync) loop: the one way the UI starts it, keeps hold
of it, cancels it and hears what went wrong.

The contract, like Anki's QueryOp: a coroutine given to `Tasks.start` runs on the GUI thread,
so it may update widgets between its awaits; blocking work goes to `asyncio.to_thread`. An
exception it does not handle itself is never lost: it is logged with its traceback, then
reported to the `on_error` given for that task or, without one, through `failed` (user text),
which the owner connects to where the user sees problems (the window's error banner, a
dialog's result line). Cancelling is not a failure.

One `Tasks` per owner (`Connections`, `Transfers`, a panel, a form): the owner's `cancel_all`
or `aclose` ends exactly its own work, so a late result never touches a widget that is gone.

    tasks = Tasks(self, loop=loop)
    tasks.failed.connect(window.show_error)
    tasks.start(self._load(...), what="Loading the model list")
    ...
    await tasks.idle()  # wait for what must finish (e.g. HTTP clients closing), cancel nothing
    await tasks.aclose()  # on shutdown: cancel and wait
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Signal

log = logging.getLogger("desktop_chat.tasks")

T = TypeVar("T")
OnError = Callable[[Exception], None]


def failure_text(what: str, exc: BaseException) -> str:
    """What the user reads about an unexpected failure: which work, the kind of error, where
    the details are (the message itself may be long or technical; the log has it)."""
    return f"{what} failed unexpectedly ({type(exc).__name__}). The log has the details."


class Tasks(QObject):
    failed = Signal(str)  # user text: a task without `on_error` failed (details in the log)

    def __init__(self, parent: QObject | None = None, *,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        """`loop`: where tasks run; None takes the current event loop when one starts."""
        super().__init__(parent)
        self._loop = loop
        self._running: set[asyncio.Task[Any]] = set()

    def start(self, coro: Coroutine[Any, Any, T], *, what: str = "Background work",
              on_error: OnError | None = None) -> asyncio.Task[T]:
        """Run `coro` as a task kept until it ends. `what` names the work in the user's words
        (for the log and the failure text); `on_error` takes the exception of a failed task
        instead of `failed`."""
        loop = self._loop or asyncio.get_event_loop()
        task = loop.create_task(coro)
        self._running.add(task)
        task.add_done_callback(lambda done: self._ended(done, what, on_error))
        return task

    def cancel_all(self) -> None:
        """Cancel every task (they end at their next await; `aclose` also waits for that)."""
        for task in list(self._running):
            task.cancel()

    @property
    def busy(self) -> bool:
        return bool(self._running)

    async def idle(self) -> None:
        """Return once no task runs, including tasks started meanwhile. Failures are reported
        before this returns. Waiting does not cancel them; do not await it from a task of
        this same `Tasks` (it would wait for itself)."""
        while self._running:
            await asyncio.wait(list(self._running))

    async def aclose(self) -> None:
        """Cancel every task and wait until all have ended."""
        self.cancel_all()
        await self.idle()

    def _ended(self, task: asyncio.Task[Any], what: str, on_error: OnError | None) -> None:
        self._running.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved: asyncio will not also complain about it
        if exc is None:
            return
        log.error("%s failed", what, exc_info=exc)
        if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt: the loop has them
            return
        if on_error is not None:
            try:
                on_error(exc)
                return
            except Exception:  # a broken handler must not hide the first failure
                log.exception("reporting that %s failed went wrong too", what)
        if shiboken6.isValid(self):  # else its owner is gone, and the log is all there is
            self.failed.emit(failure_text(what, exc))
