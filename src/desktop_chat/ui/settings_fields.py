"""What the settings pages share about their fields: `Invalid`, a value the user must fix
(the dialog shows the first one and puts the cursor in the field, so a bad value never
reaches the settings file), numbers that survive opening and closing the dialog, and the
background tasks of a form.

The checks themselves are pure and live next to what they check (`core/config`)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from PySide6.QtWidgets import QDoubleSpinBox, QWidget


class Invalid(Exception):
    """A value the user must fix; `widget` is where the cursor goes."""

    def __init__(self, message: str, widget: QWidget) -> None:
        super().__init__(message)
        self.message = message
        self.widget = widget


def kept_value(box: QDoubleSpinBox, original: float) -> float:
    """The stored value while the box still shows it (the box rounds to its decimals), so
    opening and closing the dialog never changes a number."""
    return original if abs(box.value() - original) < 0.5 * 10 ** -box.decimals() else box.value()


class Tasks:
    """Async work a widget started on the running (qasync) loop; cancelled when it goes away,
    so a late result never touches deleted widgets."""

    def __init__(self) -> None:
        self._running: set[asyncio.Future[Any]] = set()

    def start(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()

    @property
    def busy(self) -> bool:
        return bool(self._running)
