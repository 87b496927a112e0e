"""Text for people and for screen readers: hints under fields, the outcome of a check,
message boxes for errors and notices, and the accessible name every control gets."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QLabel, QWidget

from desktop_chat.ui.theme import is_dark

# (light, dark) colours: background, text, border
ERROR_COLORS = (("#fdecea", "#8a1c12", "#f5c2bd"), ("#3b1f1d", "#f8b4ae", "#6e2b26"))
NOTICE_COLORS = (("#fff8e1", "#5d4300", "#f0d98c"), ("#3a3220", "#f3e2a9", "#6b5a2a"))


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
