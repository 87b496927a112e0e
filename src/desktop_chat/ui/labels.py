"""Text for people and for screen readers: hints under fields, the outcome of a check,
message boxes for errors and notices, and the accessible name every control gets.

Text a server, a model or a file wrote is data: it is shown as plain text (a label never
guesses "this looks like HTML" for it, so an error page cannot pose as the app's own
message) and with secrets redacted exactly as in the log (a server that quotes the API key
does not put it on screen). `PlainLabel` does both; `plain_tooltip` does it for tooltips,
which Qt otherwise renders as rich text whenever they look like HTML.
"""

from __future__ import annotations

import html
from typing import TypeVar

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from desktop_chat.core.logs import redact_secrets
from desktop_chat.core.render.theme import DARK, LIGHT
from desktop_chat.ui.theme import is_dark

# (light, dark) colours: background, text, border -- the theme's tokens
ERROR_COLORS = tuple((c.danger_surface, c.danger, c.danger_border) for c in (LIGHT, DARK))
NOTICE_COLORS = tuple((c.notice_surface, c.notice, c.notice_border) for c in (LIGHT, DARK))


def shown(text: str) -> str:
    """What the window may show of `text`: secrets redacted, the same way as in the log."""
    return redact_secrets(text)


class PlainLabel(QLabel):
    """A label for text that may come from a server, a model or a file: always plain text
    (never rich-text auto-detection), with secrets redacted."""

    def __init__(self, text: str = "", parent: QWidget | None = None, **kwargs: object) -> None:
        super().__init__(parent, **kwargs)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)

    def setText(self, text: str) -> None:
        super().setText(shown(text))

    def setToolTip(self, text: str) -> None:
        super().setToolTip(plain_tooltip(text))


class PlainStatusBar(QStatusBar):
    """The window's status bar: its messages (a refused link, an import's summary) are drawn
    as plain text by Qt; secrets are redacted from them here."""

    def showMessage(self, text: str, timeout: int = 0) -> None:
        super().showMessage(shown(text), timeout)


def plain_tooltip(text: str) -> str:
    """A tooltip that shows `text` as it is: Qt renders a tooltip as rich text whenever it
    looks like HTML, so the text is escaped and given as rich text on purpose (newlines
    kept). Secrets are redacted. Empty stays empty (no tooltip)."""
    if not text:
        return ""
    return f'<p style="white-space:pre-wrap">{html.escape(shown(text))}</p>'


def hint_label(text: str = "") -> QLabel:
    """Small grey text under a field."""
    label = PlainLabel(text)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    font = label.font()
    font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
    label.setFont(font)
    return label


def outcome_label(name: str) -> QLabel:
    """Where the result of a check goes: normal-sized, wrapped, selectable (to copy an error).
    Plain text: it often quotes a server."""
    label = PlainLabel(objectName=name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    # a wrapped label may get more height than its lines need: keep the text at the top
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    label.hide()
    return label


def show_outcome(label: QLabel, text: str, ok: bool) -> None:
    """A result in the label: failures marked ✗ in a red that reads on light and dark."""
    label.setText(text if ok else f"✗ {text}")
    red = (DARK if is_dark(label.palette()) else LIGHT).danger
    label.setStyleSheet("" if ok else f"color: {red};")
    label.show()


def message_label(name: str, colors: tuple[tuple[str, str, str], ...] = ERROR_COLORS) -> QLabel:
    """A selectable, word-wrapped message box (errors, notices); hidden until it has text.
    Plain text: an error may quote a server or a file."""
    label = PlainLabel(objectName=name)
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
