"""Start-up probe: runs the app (or a bare PySide6 + qasync window) in this process and reports,
as one JSON line on stdout, when its main window painted its first frame, what was imported
by then, the event loop's longest gap during the next seconds and the resident memory after
them. Public tools only: a Qt event filter, a QTimer, sys.modules and /proc.

    python -m tests.support.startup_probe app [--settle S] [--type TEXT] -- [app arguments]
    python -m tests.support.startup_probe bare [--settle S]

Used by benchmarks/startup.py (which times the process from spawn to first paint) and by
tests/ui/test_startup.py (what is imported at the first frame; a prompt sent at once).

The first frame: the first Paint event of the QMainWindow, plus the posted event that follows
it (the whole window is painted in that one pass). The event filter goes on that window when
it is shown (`watch_shown_windows` wraps QMainWindow.show, for both kinds of process alike),
not on the application: an application-wide Python filter is called for every event of every
object and makes PySide6 wrap each one, which charged the app (~60 widgets, each with internal
objects of types PySide6 must look up) far more than the bare window: while the app's window
was built, 128 Qt enum types were created with it against 51 without (22 ms against 10 ms).
The filter is removed then, so it costs nothing afterwards.

Gaps: a 5 ms precise QTimer from the first frame for `--settle` seconds; a gap is the time
between two ticks (the first measured from the first frame), noted with the GUI thread's CPU
time within it (on a shared machine a long gap with little CPU is mostly the scheduler's: other
processes, or helper threads holding the interpreter).
`--wait-idle`: the app's start-up work (model list, background loading, history check) ends
before the probe does. `--type TEXT`: at the first frame, TEXT is typed into the composer and
Enter pressed, with real key events, and the reply's text is reported (the prompt sent
before the SDK loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

TICK_MS = 5
# Loaded after the first frame, or not at all until needed (issue #18).
WATCHED = ("openai", "httpx", "httpx2", "markdown_it", "pygments", "keyring", "mdit_py_plugins")


def rss_kib() -> int | None:
    """This process's resident set (Linux /proc), or None where there is no /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class FirstFrame(QObject):
    """An event filter, on a main window, that waits for its first paint."""

    def __init__(self, on_frame: Callable[[QMainWindow], None]) -> None:
        super().__init__()
        self._on_frame = on_frame
        self._paint = QEvent.Type.Paint

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == self._paint and isinstance(watched, QMainWindow):
            watched.removeEventFilter(self)
            # The window's widgets are painted in this same pass; a posted call runs after it.
            QTimer.singleShot(0, lambda: self._on_frame(watched))
        return False


def watch_shown_windows(frame_filter: FirstFrame) -> None:
    """Put `frame_filter` on the first QMainWindow (or subclass) shown in this process."""
    show = QMainWindow.show

    def shown(window: QMainWindow) -> None:
        QMainWindow.show = show  # type: ignore[method-assign]
        window.installEventFilter(frame_filter)
        show(window)

    QMainWindow.show = shown  # type: ignore[method-assign]


class Probe:
    def __init__(self, settle_s: float, type_text: str | None, wait_idle: bool = False) -> None:
        self.settle_s = settle_s
        self.type_text = type_text
        self.wait_idle = wait_idle
        self.report: dict[str, Any] = {"pid": os.getpid()}
        self._last = 0.0
        self._max_gap = 0.0
        self._max_gap_cpu = 0.0
        self._last_cpu = 0.0
        self._timer: QTimer | None = None
        self._window: QMainWindow | None = None
        self.filter = FirstFrame(self._first_frame)

    def _first_frame(self, window: QMainWindow) -> None:
        now = time.monotonic()
        self.report["first_paint"] = now
        self.report["imported_at_first_paint"] = [m for m in WATCHED if m in sys.modules]
        self._window = window
        self._last, self._last_cpu = now, time.thread_time()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._timer.start(TICK_MS)
        QTimer.singleShot(round(self.settle_s * 1000), self._settled)
        if self.type_text is not None:
            self._type(window, self.type_text)

    def _type(self, window: QMainWindow, text: str) -> None:
        from PySide6.QtTest import QTest
        from PySide6.QtWidgets import QWidget

        composer = window.findChild(QWidget, "composer")
        assert composer is not None
        self.report["typed_at"] = time.monotonic()
        from desktop_chat.core.llm import sdk  # the app's own: already imported

        self.report["sdk_loaded_at_send"] = sdk.loaded()
        QTest.keyClicks(composer, text)
        QTest.keyClick(composer, Qt.Key.Key_Return)
        self.report["composer_after_enter"] = composer.toPlainText()  # type: ignore[attr-defined]
        self._composer = composer
        self._watch_reply(window)

    def _watch_reply(self, window: QMainWindow) -> None:
        """The app's controller comes with the rest of its window, after the first frame."""
        controller = getattr(window, "controller", None)
        if controller is None:
            QTimer.singleShot(TICK_MS, lambda: self._watch_reply(window))
            return
        controller.reply_finished.connect(self._replied)

    def _replied(self, reply: Any) -> None:
        self.report["reply"] = {"content": reply.content, "state": reply.state.value,
                                "error": reply.error, "at": time.monotonic(),
                                "composer": self._composer.toPlainText()}  # type: ignore

    def _tick(self) -> None:
        now, cpu = time.monotonic(), time.thread_time()
        if "whole" not in self.report and getattr(self._window, "whole", True):
            self.report["whole"] = now  # the app's window: all its parts, its conversation
        gap = now - self._last
        gap_cpu = cpu - self._last_cpu  # the GUI thread's own CPU time within the gap
        if gap > self._max_gap:
            self._max_gap, self._max_gap_cpu = gap, gap_cpu
        if gap > 0.03:  # where the long ones were, in ms after the first frame (+ CPU ms)
            self.report.setdefault("long_gaps", []).append(
                [round((self._last - self.report["first_paint"]) * 1000), round(gap * 1000),
                 round(gap_cpu * 1000)])
        self._last, self._last_cpu = now, cpu

    def _settled(self) -> None:
        self._tick()
        if self._timer is not None:
            self._timer.stop()
        self.report["max_gap_ms"] = round(self._max_gap * 1000, 1)
        self.report["max_gap_cpu_ms"] = round(self._max_gap_cpu * 1000, 1)
        self.report["rss_kib"] = rss_kib()
        self.report["imported_after_settle"] = [m for m in WATCHED if m in sys.modules]
        self._settled_again()

    def _waiting(self) -> bool:
        if self.type_text is not None and "reply" not in self.report:
            return True  # still answering
        if self.wait_idle and self._window is not None:
            if not getattr(self._window, "attached", True):
                return True  # the rest of the window is still being made
            parts = (getattr(self._window, "connections", None),
                     getattr(self._window, "controller", None))
            return any(part is not None and part.tasks.busy for part in parts)
        return False

    def _settled_again(self) -> None:
        if self._waiting() and time.monotonic() - self.report["first_paint"] < 60:
            QTimer.singleShot(100, self._settled_again)
            return
        self.report["imported_at_end"] = [m for m in WATCHED if m in sys.modules]
        self._finish()

    def _finish(self) -> None:
        print(json.dumps(self.report), flush=True)
        if self._window is not None:
            self._window.close()


def run_bare(probe: Probe) -> int:
    """The reference: a bare PySide6 + qasync window of the app's size, shown and idle."""
    import asyncio

    import qasync

    app = QApplication.instance() or QApplication([sys.argv[0]])
    watch_shown_windows(probe.filter)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    window = QMainWindow()
    window.setWindowTitle("bare")
    window.resize(1000, 720)

    class Closing(QObject):
        def __init__(self, done: Callable[[], None]) -> None:
            super().__init__()
            self._done = done

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Close:
                self._done()
            return False

    async def run() -> None:
        closed = asyncio.get_running_loop().create_future()
        closing = Closing(lambda: closed.done() or closed.set_result(None))
        window.installEventFilter(closing)
        window.show()
        await closed

    with loop:
        loop.run_until_complete(run())
    return 0


def run_app(probe: Probe, argv: list[str]) -> int:
    watch_shown_windows(probe.filter)  # the app makes its QApplication, as when installed
    from desktop_chat.launch import main  # as the installed app starts

    return main(argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("app", "bare"))
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds after the first frame to watch the loop (default 3)")
    parser.add_argument("--type", dest="type_text", metavar="TEXT",
                        help="type TEXT into the composer at the first frame and press Enter")
    parser.add_argument("--wait-idle", action="store_true",
                        help="before exiting, wait until the app's start-up work has ended "
                        "(model list, background loading, history check)")
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])  # after "--": the app's own arguments
    app_args = argv[cut + 1:]
    probe = Probe(args.settle, args.type_text, args.wait_idle)
    return run_bare(probe) if args.what == "bare" else run_app(probe, app_args)


if __name__ == "__main__":
    sys.exit(main())
