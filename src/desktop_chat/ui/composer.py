"""Where the user types: Enter sends, Shift+Enter inserts a newline.

`ComposerBox` is the rounded box at the bottom of the reading column: the attachment chips
above the text, the text (growing with what is typed up to ~40 % of the window, then
scrolling), attach on the left and Send/Stop on the right. `Drafts` keeps each
conversation's unsent text and attachments while another one is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QPlainTextEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.model.message import Attachment, DocumentRef
from desktop_chat.ui import icons
from desktop_chat.ui.attachments import AttachmentStrip
from desktop_chat.ui.theme import current, point_size

MAX_WINDOW_SHARE = 0.4  # the composer grows up to this share of the window, then scrolls
MIN_VISIBLE_LINES = 1
SEND_PX = 32  # the round Send/Stop button


class Composer(QPlainTextEdit):
    submitted = Signal()
    image_pasted = Signal(QImage)  # pasted or dropped image data
    files_dropped = Signal(list)  # local paths of dropped/pasted files (images, or refused)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.setAccessibleName("Message")
        self.setAccessibleDescription("Type a message. Enter sends, Shift+Enter adds a new line.")
        self.show_model("")
        self.setTabChangesFocus(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        font = self.font()
        font.setPointSizeF(point_size(current().type.body))
        self.setFont(font)
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self._fit_height()

    def show_model(self, model: str) -> None:
        self.setPlaceholderText(f"Message {model}" if model else "Message")

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
        self.setPlainText(joined(prompt, self.toPlainText()))
        self.moveCursor(self.textCursor().MoveOperation.End)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_height()  # wrapping changed

    def _fit_height(self) -> None:
        # A plain-text document measures its height in lines (wrapped lines included).
        lines = max(MIN_VISIBLE_LINES, int(self.document().documentLayout().documentSize()
                                          .height()))
        line_height = self.fontMetrics().lineSpacing()
        frame = int(self.document().documentMargin() * 2) + self.frameWidth() * 2
        wanted = lines * line_height + frame + 6  # the viewport's own margins
        window = self.window()
        limit = int(window.height() * MAX_WINDOW_SHARE) if window is not self else wanted
        height = max(line_height + frame, min(wanted, max(limit, 3 * line_height)))
        if height != self.height():
            self.setFixedHeight(height)


def joined(prompt: str, typed: str) -> str:
    """A prompt given back, before anything typed since."""
    return prompt if not typed.strip() else f"{prompt}\n\n{typed}"


class ComposerBox(QFrame):
    """The rounded box around the composer: chips, text, attach, Send/Stop."""

    attach_requested = Signal()

    def __init__(self, composer: Composer, strip: AttachmentStrip,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composerBox")
        self.composer = composer
        self.attachmentStrip = strip
        self.attachButton = _icon_button("attachButton", "Attach files",
                                         "Attach documents or images (or paste or drop them)")
        self.sendButton = _icon_button("sendButton", "Send", "Send the message (Enter)")
        self.stopButton = _icon_button("stopButton", "Stop", "Stop the reply (Esc)")
        for button in (self.sendButton, self.stopButton):
            button.setFixedSize(SEND_PX, SEND_PX)
        self.attachButton.clicked.connect(self.attach_requested)
        theme = current()
        space = theme.space
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.attachButton)
        row.addStretch(1)
        row.addWidget(self.sendButton)
        row.addWidget(self.stopButton)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(space.m, space.s, space.s, space.s)
        layout.setSpacing(space.xs)
        layout.addWidget(strip)
        layout.addWidget(composer)
        layout.addLayout(row)
        self.restyle()

    def add_strip(self, strip: QWidget) -> None:
        """Another row of chips above the text (documents, next to the images)."""
        layout = self.layout()
        layout.insertWidget(layout.indexOf(self.attachmentStrip), strip)

    def set_streaming(self, streaming: bool) -> None:
        """Send becomes Stop while a reply streams (both keep their names for automation)."""
        self.stopButton.setEnabled(streaming)
        self.sendButton.setEnabled(not streaming)
        self.stopButton.setVisible(streaming)
        self.sendButton.setVisible(not streaming)

    def restyle(self) -> None:
        theme = current()
        c, r = theme.colors, theme.radius
        self.setStyleSheet(
            f"QFrame#composerBox {{ background: {c.window}; border: 1px solid {c.faint};"
            f" border-radius: {r.composer}px; }}"
            f" QPlainTextEdit#composer {{ background: transparent; color: {c.text};"
            " border: none; }"
            f" QToolButton {{ border: none; border-radius: {r.button}px; padding: 4px; }}"
            f" QToolButton:hover {{ background: {c.hover}; }}"
            f" QToolButton#sendButton, QToolButton#stopButton {{ background: {c.send};"
            f" border-radius: {SEND_PX // 2}px; }}"
            f" QToolButton#sendButton:disabled {{ background: {c.faint}; }}"
        )
        self.attachButton.setIcon(icons.icon("attach", c.muted))
        self.sendButton.setIcon(icons.icon("send", c.on_send))
        self.stopButton.setIcon(icons.icon("stop", c.on_send))


def _icon_button(name: str, text: str, tip: str) -> QToolButton:
    button = icons.icon_button(name, text, tip)
    button.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # a click keeps the focus in the text
    return button


@dataclass
class Draft:
    text: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    documents: list[DocumentRef] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.text.strip() or self.attachments or self.documents)


class Drafts:
    """Each conversation's unsent text and attachments (key: its id; None: a new chat), so
    that switching chats never carries one chat's draft into another."""

    def __init__(self) -> None:
        self._drafts: dict[int | None, Draft] = {}

    def keep(self, key: int | None, draft: Draft) -> None:
        if draft.is_empty:
            self._drafts.pop(key, None)
        else:
            self._drafts[key] = draft

    def take(self, key: int | None) -> Draft:
        return self._drafts.pop(key, None) or Draft()

    def give_back(self, key: int | None, text: str, attachments: list[Attachment],
                  documents: list[DocumentRef] | None = None) -> None:
        """A prompt that could not be sent in a conversation not shown: into its draft."""
        old = self._drafts.get(key, Draft())
        self._drafts[key] = Draft(joined(text, old.text), attachments + old.attachments,
                                  (documents or []) + old.documents)


def _local_files(source: QMimeData) -> list[str]:
    """Local files dropped or pasted: each becomes an attachment, or a message saying why it
    cannot be one (only images can be sent). Their contents are checked, not their names."""
    if not source.hasUrls():
        return []
    return [url.toLocalFile() for url in source.urls() if url.isLocalFile()]
