"""Where the user types: Enter sends, Shift+Enter inserts a newline."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit, QSizePolicy, QWidget

MAX_VISIBLE_LINES = 10


class Composer(QPlainTextEdit):
    submitted = Signal()
    image_pasted = Signal(QImage)  # pasted or dropped image data
    files_dropped = Signal(list)  # local paths of dropped/pasted files (images, or refused)


    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.setAccessibleName("Message")
        self.setAccessibleDescription("Type a message. Enter sends, Shift+Enter adds a new line.")
        self.setPlaceholderText("Message  (Enter to send, Shift+Enter for a new line)")
        self.setTabChangesFocus(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().contentsChanged.connect(self._fit_height)
        self._fit_height()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        is_enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        plain = not event.modifiers() & (
            Qt.KeyboardModifier.ShiftModifier
            | Qt.KeyboardModifier.ControlModifier
            | Qt.KeyboardModifier.AltModifier
            | Qt.KeyboardModifier.MetaModifier
        )
        if is_enter and plain:
            event.accept()
            self.submitted.emit()
            return
        if is_enter and event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.insertPlainText("\n")  # a plain newline, never a soft line break
            event.accept()
            return
        super().keyPressEvent(event)

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        return bool(_local_files(source)) or source.hasImage() or super().canInsertFromMimeData(
            source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        """Images (pasted from another app, or image files dropped/pasted) become attachments;
        everything else is inserted as plain text."""
        if files := _local_files(source):
            self.files_dropped.emit(files)
        elif source.hasImage() and isinstance(image := source.imageData(), QImage) and (
            not image.isNull()
        ):
            self.image_pasted.emit(image)
        else:
            super().insertFromMimeData(source)

    def give_back(self, prompt: str) -> None:
        """Put a prompt that could not be sent back, keeping anything typed since."""
        typed = self.toPlainText()
        self.setPlainText(prompt if not typed.strip() else f"{prompt}\n\n{typed}")
        self.moveCursor(self.textCursor().MoveOperation.End)

    def _fit_height(self) -> None:
        lines = max(1, min(MAX_VISIBLE_LINES, self.document().blockCount()))
        line_height = self.fontMetrics().lineSpacing()
        margins = self.contentsMargins().top() + self.contentsMargins().bottom()
        frame = int(self.document().documentMargin() * 2) + margins
        self.setFixedHeight(max(2, lines) * line_height + frame + 4)


def _local_files(source: QMimeData) -> list[str]:
    """Local files dropped or pasted: each becomes an attachment, or a message saying why it
    cannot be one (only images can be sent). Their contents are checked, not their names."""
    if not source.hasUrls():
        return []
    return [url.toLocalFile() for url in source.urls() if url.isLocalFile()]
