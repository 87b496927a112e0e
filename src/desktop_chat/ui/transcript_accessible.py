"""What screen readers get from the transcript: its text with each formula as its LaTeX.

A formula is an image in the document (`math_images`); Qt's own accessible text for a
QTextEdit gives every image as U+FFFC, which a screen reader reads as nothing. The interface
here is Qt's (a QAccessibleWidget with a QAccessibleTextInterface), installed through
`QAccessible.installFactory` for the transcript only, with the same role, state and name as
Qt's; its text is the document's with each formula image replaced by its source (the image's
alt text). Offsets are the accessible text's: `AccessibleText` maps them to document positions
and back, so the caret, character boxes and hit tests still line up.

PySide6 cannot bind the text-interface calls with out-parameters (`selection`,
`textAtOffset`, `attributes`): the word/line/sentence calls use Qt's default implementations,
which work on `text()` and so see the LaTeX; selections are not reported (`selectionCount` is
0) but can be set.
"""

from __future__ import annotations

import bisect

from PySide6.QtCore import QObject, QPoint, QRect
from PySide6.QtGui import (
    QAccessible,
    QAccessibleInterface,
    QAccessibleTextInterface,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import QAccessibleWidget, QTextEdit

from desktop_chat.ui.math_images import SCHEME

CLASS_NAME = "Transcript"  # the widget class whose accessible text this gives
_BREAKS = str.maketrans({"\u2029": "\n", "\u2028": "\n"})  # as Qt's text accessibility does
_installed = False


class AccessibleText:
    """A document's text as read aloud: each formula image (one character) is its LaTeX."""

    def __init__(self, document: QTextDocument) -> None:
        raw = document.toRawText().translate(_BREAKS)
        self.doc_starts: list[int] = []  # document position of each formula
        self.acc_starts: list[int] = []  # its offset in `text`
        self.acc_ends: list[int] = []
        parts: list[str] = []
        done = 0  # document positions copied so far
        shift = 0  # len(text) - document positions, so far
        for position, latex in _formulas(document):
            parts.append(raw[done:position])
            parts.append(latex)
            self.doc_starts.append(position)
            self.acc_starts.append(position + shift)
            shift += len(latex) - 1
            self.acc_ends.append(position + shift + 1)
            done = position + 1
        parts.append(raw[done:])
        self.text = "".join(parts)

    def offset(self, position: int) -> int:
        """The offset in `text` of document `position`."""
        i = bisect.bisect_right(self.doc_starts, position) - 1
        if i < 0:
            return position
        if position == self.doc_starts[i]:
            return self.acc_starts[i]
        return self.acc_ends[i] + position - self.doc_starts[i] - 1

    def position(self, offset: int) -> int:
        """The document position of `offset` in `text` (a formula's start for any offset
        inside its LaTeX)."""
        i = bisect.bisect_right(self.acc_starts, offset) - 1
        if i < 0:
            return offset
        if offset < self.acc_ends[i]:
            return self.doc_starts[i]
        return self.doc_starts[i] + 1 + offset - self.acc_ends[i]


def _formulas(document: QTextDocument) -> list[tuple[int, str]]:
    """(position, LaTeX) of each formula image in the document, in order."""
    found: list[tuple[int, str]] = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            fmt = fragment.charFormat()
            if fmt.isImageFormat() and fmt.toImageFormat().name().startswith(SCHEME):
                alt = str(fmt.property(QTextFormat.Property.ImageAltText) or "")
                if alt:  # adjacent equal images share one fragment: one entry per character
                    found += [(fragment.position() + i, alt) for i in range(fragment.length())]
            it += 1
        block = block.next()
    return found


class _Text(QAccessibleTextInterface):
    """The text interface of a transcript, in offsets of its accessible text."""

    def __init__(self, edit: QTextEdit) -> None:
        super().__init__()
        self._edit = edit
        self._cached: tuple[int, int, AccessibleText] | None = None

    def mapped(self) -> AccessibleText:
        document = self._edit.document()
        key = (document.revision(), document.characterCount())
        if self._cached is None or self._cached[:2] != key:
            self._cached = (*key, AccessibleText(document))
        return self._cached[2]

    def _cursor(self, offset: int) -> QTextCursor:
        cursor = QTextCursor(self._edit.document())
        last = self._edit.document().characterCount() - 1
        cursor.setPosition(max(0, min(self.mapped().position(offset), last)))
        return cursor

    def text(self, start: int, end: int) -> str:
        return self.mapped().text[max(0, start):max(0, end)]

    def characterCount(self) -> int:
        return len(self.mapped().text)

    def cursorPosition(self) -> int:
        return self.mapped().offset(self._edit.textCursor().position())

    def setCursorPosition(self, position: int) -> None:
        self._edit.setTextCursor(self._cursor(position))

    def selectionCount(self) -> int:
        return 0  # `selection` (out-parameters) cannot be implemented from Python

    def addSelection(self, start: int, end: int) -> None:
        self.setSelection(0, start, end)

    def removeSelection(self, _index: int) -> None:
        cursor = self._edit.textCursor()
        cursor.clearSelection()
        self._edit.setTextCursor(cursor)

    def setSelection(self, _index: int, start: int, end: int) -> None:
        cursor = self._cursor(start)
        cursor.setPosition(self._cursor(end).position(), QTextCursor.MoveMode.KeepAnchor)
        self._edit.setTextCursor(cursor)

    def characterRect(self, offset: int) -> QRect:
        rect = self._edit.cursorRect(self._cursor(offset))
        viewport = self._edit.viewport()
        return QRect(viewport.mapToGlobal(rect.topLeft()), rect.size())

    def offsetAtPoint(self, point: QPoint) -> int:
        viewport = self._edit.viewport()
        local = viewport.mapFromGlobal(point)
        if not viewport.rect().contains(local):
            return -1
        return self.mapped().offset(self._edit.cursorForPosition(local).position())

    def scrollToSubstring(self, start: int, _end: int) -> None:
        rect = self._edit.cursorRect(self._cursor(start))
        bar = self._edit.verticalScrollBar()
        if rect.top() < 0 or rect.bottom() > self._edit.viewport().height():
            bar.setValue(bar.value() + rect.top() - self._edit.viewport().height() // 3)


class TranscriptAccessible(QAccessibleWidget):
    """Qt's accessible transcript (read-only multi-line text, the widget's name), whose text
    and value give formulas as LaTeX."""

    def __init__(self, edit: QTextEdit) -> None:
        super().__init__(edit, QAccessible.Role.StaticText)
        self.text_part = _Text(edit)  # kept here: Qt holds it through `interface_cast`

    def state(self) -> QAccessible.State:
        state = super().state()
        state.readOnly = True
        state.multiLine = True
        state.selectableText = True
        return state

    def text(self, kind: QAccessible.Text) -> str:
        if kind == QAccessible.Text.Value:
            return self.text_part.mapped().text
        return super().text(kind)

    def interface_cast(self, kind: QAccessible.InterfaceType) -> object:
        if kind == QAccessible.InterfaceType.TextInterface:
            return self.text_part
        return super().interface_cast(kind)


def _factory(key: str, target: QObject) -> QAccessibleInterface | None:
    if key == CLASS_NAME and isinstance(target, QTextEdit):
        return TranscriptAccessible(target)
    return None


def install() -> None:
    """Let Qt build the transcript's accessible interface here: called by the composition
    root (app.finish_window) before the first transcript is asked for its interface. Qt's
    factories are per process, so a second window (tests, embedding) installs nothing more."""
    global _installed
    if not _installed:
        QAccessible.installFactory(_factory)
        _installed = True
