"""Edits of the transcript's document that take their turn, a few milliseconds at a time.

Laying out text in a QTextDocument costs about 1 us a character, and formatting markdown
as much again: a 10 MB reply (or a conversation holding one, when it is opened) is tens of
seconds of work, which must never run in one go. The transcript's edits go through a
`Backlog`: one that arrives while earlier ones still wait is queued behind them (its order
kept), a long text is cut into slices sized to take about `SLICE_MS` each, and the queue
runs a slice or a few edits per turn of the event loop. An ordinary reply never waits: a text
of up to `SYNC_CHARS` (`STREAM_SYNC_CHARS` for a streaming paint) is taken at once when
nothing is queued, and a queue of at most `FLUSH_CHARS` characters is worked off at once when
the next edit comes; a longer one is worked off first, in its turns, and the reply's end
(its buttons, notes and sources) comes after it.
"""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol

from PySide6.QtCore import QObject, QTimer, Signal

SLICE_MS = 6.0  # work per turn of the event loop
# characters, before the cost per character is known: 4,000 characters of a table took
# ~65 ms to format and lay out (a reopened 5 MB table); 2,000 stay near 30
FIRST_SLICE = 2_000
MIN_SLICE, MAX_SLICE = 1_000, 8_000  # 8,000 characters of a table: ~100 ms
FLUSH_CHARS = 3_000  # queued text worked off at once rather than queueing behind it
# A text up to this long is taken in one go when nothing waits (what an ordinary reply sends
# in a paint, or holds when a conversation opens: ~100 ms at most, as it always was).
SYNC_CHARS = 32_000
# A streaming paint's text, though, is cut into slices past this: a fast server (or a fast
# client: ~13,000 deltas/s here) brings 8,000 characters in a 150 ms frame, ~25 ms of work
# in one go; in slices, the loop (and the reply's receiving) gets its turn in between.
STREAM_SYNC_CHARS = 1_500

P = ParamSpec("P")


class Backlog(QObject):
    """A queue of edits run in order, `SLICE_MS` of them per turn of the event loop."""

    idle = Signal()  # everything queued has been done

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: collections.deque[Callable[[], object]] = collections.deque()
        self._inner: list[Callable[[], object]] | None = None  # queued by the edit running
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._run)
        self.chars_per_ms = FIRST_SLICE / SLICE_MS
        self.queued_chars = 0  # text waiting in the queue

    @property
    def busy(self) -> bool:
        """Something is still queued (the view has not caught up yet)."""
        return bool(self._queue) or bool(self._inner)

    def must_wait(self) -> bool:
        """Whether an edit asked for now has to queue: earlier ones are still waiting. An
        edit made by the one running goes first unless that one queued something already.
        A short queue is worked off now instead."""
        if self._inner is not None:
            return bool(self._inner)
        if self._queue and self.queued_chars <= FLUSH_CHARS:
            self.flush()
        return bool(self._queue)

    def flush(self) -> None:
        """Do what is queued, now, unless a long text turns up in it."""
        while self._queue and self._inner is None and self.queued_chars <= FLUSH_CHARS:
            self._run_one()
        if not self._queue:
            self._timer.stop()

    def defer(self, edit: Callable[[], object]) -> None:
        (self._inner if self._inner is not None else self._queue).append(edit)
        if not self._timer.isActive():
            self._timer.start()

    def clear(self) -> None:
        """Forget what is queued (the document is being replaced)."""
        self._queue.clear()
        self.queued_chars = 0
        if self._inner is not None:
            self._inner.clear()
        self._timer.stop()

    def restart(self) -> None:
        """A new reply: its text may cost anything per character; start with small slices."""
        self.chars_per_ms = FIRST_SLICE / SLICE_MS

    def slice(self, text: str) -> tuple[str, str]:
        """The part of `text` to take now and the rest (queued by the caller)."""
        size = int(min(MAX_SLICE, max(MIN_SLICE, self.chars_per_ms * SLICE_MS)))
        if len(text) <= size:
            return text, ""
        return text[:size], text[size:]

    def measured(self, chars: int, ms: float) -> None:
        """How long `chars` characters took: sizes the next slices. The cost per character
        varies with the text (a table costs 10x a paragraph): a dearer slice counts at once,
        a cheaper one only halfway."""
        if chars >= MIN_SLICE:
            rate = chars / max(ms, 0.01)
            self.chars_per_ms = min(rate, (self.chars_per_ms + rate) / 2)

    def _run(self) -> None:
        deadline = time.perf_counter() + SLICE_MS / 1000
        while self._queue and time.perf_counter() < deadline:
            self._run_one()
        if self._queue:
            self._timer.start()
        else:
            self.idle.emit()


    def _run_one(self) -> None:
        edit = self._queue.popleft()
        self._inner = []
        try:
            edit()
        finally:
            inner, self._inner = self._inner, None
            self._queue.extendleft(reversed(inner))


class _HasBacklog(Protocol):
    backlog: Backlog


def in_turn(method: Callable[Concatenate[Any, P], None]) -> Callable[Concatenate[Any, P], None]:
    """A document edit that waits for the ones queued before it."""

    @functools.wraps(method)
    def wrapper(self: _HasBacklog, *args: P.args, **kwargs: P.kwargs) -> None:
        if self.backlog.must_wait():
            self.backlog.defer(lambda: method(self, *args, **kwargs))
        else:
            method(self, *args, **kwargs)

    return wrapper


def timed(backlog: Backlog, text: str, add: Callable[[str], None],
          sync_chars: int = SYNC_CHARS) -> None:
    """`add` the slice of `text` due now; queue the rest (run through `add` again). A text
    of up to `sync_chars` is taken at once when nothing waits."""
    now, rest = (text, "") if len(text) <= sync_chars and not backlog.busy else (
        backlog.slice(text))
    if rest:
        backlog.queued_chars += len(rest)

        def later() -> None:
            backlog.queued_chars -= len(rest)
            timed(backlog, rest, add, sync_chars)

        backlog.defer(later)
    started = time.perf_counter()
    add(now)
    backlog.measured(len(now), (time.perf_counter() - started) * 1000)
