"""Editing a sent message in place: the bubble becomes an editor with Save & send and Cancel.
Esc cancels and nothing changes; Enter (or Save & send) sends the edited text as a new branch.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from desktop_chat.core.render.theme import Theme


class _Box(QPlainTextEdit):
    submitted = Signal()
    cancelled = Signal()

    def event(self, event: QEvent) -> bool:
        # Esc belongs to the editor while it has focus (the window's Esc stops replies)
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and event.key() == Qt.Key.Key_Escape:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.cancelled.emit()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class MessageEditor(QFrame):
    """Over the bubble of the message being edited (a child of the transcript's viewport)."""

    save_requested = Signal(object, str)  # message index, new text
    cancelled = Signal()

    def __init__(self, parent: QWidget, theme: Theme) -> None:
        super().__init__(parent)
        self.setObjectName("messageEditor")
        self.index: int | None = None
        self.box = _Box(self)
        self.box.setObjectName("messageEditorText")
        self.box.setAccessibleName("Edit message")
        self.cancelButton = QPushButton("Cancel", self, objectName="editCancelButton")
        self.saveButton = QPushButton("Save && send", self, objectName="editSaveButton")
        self.saveButton.setAccessibleName("Save and send")
        self.saveButton.setDefault(True)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancelButton)
        buttons.addWidget(self.saveButton)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addWidget(self.box, 1)
        layout.addLayout(buttons)
        self.cancelButton.clicked.connect(self.cancel)
        self.saveButton.clicked.connect(self._save)
        self.box.cancelled.connect(self.cancel)
        self.box.submitted.connect(self._save)
        self.restyle(theme)
        self.hide()

    def restyle(self, theme: Theme) -> None:
        c, r = theme.colors, theme.radius
        self.setStyleSheet(
            f"QFrame#messageEditor {{ background: {c.bubble}; border: 1px solid {c.accent}; "
            f"border-radius: {r.bubble}px; }} QPlainTextEdit {{ background: transparent; "
            f"border: none; color: {c.text}; }}")

    def start(self, index: int, text: str) -> None:
        self.index = index
        self.box.setPlainText(text)
        self.box.moveCursor(self.box.textCursor().MoveOperation.End)
        self.show()
        self.raise_()
        self.box.setFocus()

    @property
    def editing(self) -> bool:
        return self.index is not None

    def cancel(self) -> None:
        self.index = None
        self.hide()
        self.cancelled.emit()

    def _save(self) -> None:
        text = self.box.toPlainText()
        if self.index is not None and text.strip():
            self.save_requested.emit(self.index, text)

    def finish(self) -> None:
        """The edit was sent."""
        self.index = None
        self.hide()

