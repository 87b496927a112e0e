"""Pieces the settings pages share: input checks, background tasks and small widget helpers.

The checks return plain user text (what is wrong and how to fix it); the dialog shows the first
one and puts the cursor in the field, so a bad value never reaches the settings file.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QWidget

from desktop_chat.ui.theme import is_dark

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# (light, dark) colours: background, text, border
ERROR_COLORS = (("#fdecea", "#8a1c12", "#f5c2bd"), ("#3b1f1d", "#f8b4ae", "#6e2b26"))
NOTICE_COLORS = (("#fff8e1", "#5d4300", "#f0d98c"), ("#3a3220", "#f3e2a9", "#6b5a2a"))


class Invalid(Exception):
    """A value the user must fix; `widget` is where the cursor goes."""

    def __init__(self, message: str, widget: QWidget) -> None:
        super().__init__(message)
        self.message = message
        self.widget = widget


def base_url_problem(url: str) -> str | None:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The base URL must start with http:// or https:// and name a host."
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "The port in the base URL is not a number between 0 and 65535."
    return None


def proxy_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        port = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port:
        return "The proxy must look like http://host:port (or https://host:port)."
    return None


def parse_headers(text: str) -> dict[str, str]:
    """One "Name: value" per line; blank lines are ignored. Raises ValueError with user text."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _HEADER_NAME.match(name) or not value:
            raise ValueError(f"Extra headers, line {number}: write it as \"Name: value\" "
                             f"(got \"{line.strip()[:40]}\").")
        headers[name] = value
    return headers


def format_headers(headers: dict[str, str] | Any) -> str:
    return "\n".join(f"{name}: {value}" for name, value in headers.items())


def env_name_problem(name: str) -> str | None:
    if name and not _ENV_NAME.match(name):
        return "The key's environment variable may hold only letters, digits and _ ."
    return None


def kept_value(box: QDoubleSpinBox, original: float) -> float:
    """The stored value while the box still shows it (the box rounds to its decimals), so
    opening and closing the dialog never changes a number."""
    return original if abs(box.value() - original) < 0.5 * 10 ** -box.decimals() else box.value()


def hint_label(text: str = "") -> QLabel:
    """Small grey text under a field."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    font = label.font()
    font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
    label.setFont(font)
    return label


def outcome_label(name: str) -> QLabel:
    """Where the result of a check goes: normal-sized, wrapped, selectable (to copy an error)."""
    label = QLabel(objectName=name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    # a wrapped label may get more height than its lines need: keep the text at the top
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    label.hide()
    return label


def show_outcome(label: QLabel, text: str, ok: bool) -> None:
    """A result in the label: failures marked ✗ in a red that reads on light and dark."""
    label.setText(text if ok else f"✗ {text}")
    red = "#f28b82" if is_dark(label.palette()) else "#b3261e"
    label.setStyleSheet("" if ok else f"color: {red};")
    label.show()


def message_label(name: str, colors: tuple[tuple[str, str, str], ...] = ERROR_COLORS) -> QLabel:
    """A selectable, word-wrapped message box (errors, notices); hidden until it has text."""
    label = QLabel(objectName=name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    background, text, border = colors[is_dark(QGuiApplication.palette())]
    label.setStyleSheet(f"QLabel#{name} {{ background: {background}; color: {text}; "
                        f"border: 1px solid {border}; border-radius: 4px; padding: 6px 10px; }}")
    label.hide()
    return label


W = TypeVar("W", bound=QWidget)


def name(widget: W, accessible: str, object_name: str = "", description: str = "") -> W:
    """Every control gets an accessible name (and optionally an objectName for tests)."""
    widget.setAccessibleName(accessible)
    if object_name:
        widget.setObjectName(object_name)
    if description:
        widget.setAccessibleDescription(description)
        widget.setToolTip(description)
    return widget


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
