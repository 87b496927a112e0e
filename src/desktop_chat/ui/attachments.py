"""Images waiting to be sent with the next message: thumbnails above the composer, each with
a remove button. Pasted images arrive as QImage and are encoded as PNG in memory."""

from __future__ import annotations

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt, QUrl, Signal
from PySide6.QtGui import QImage, QPixmap, QTextCursor, QTextDocument, QTextImageFormat
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from desktop_chat.core.model.message import Attachment
from desktop_chat.core.render.actions import Action, link
from desktop_chat.ui.labels import plain_tooltip

THUMB_PX = 64
SENT_THUMB_PX = 160


def image_to_attachment(image: QImage, name: str = "pasted image.png") -> Attachment:
    """A pasted image as PNG bytes (lossless; the server scales it as it needs)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return Attachment("image/png", bytes(data.data()), name)


def thumbnail(attachment: Attachment, size: int = THUMB_PX) -> QPixmap | None:
    pixmap = QPixmap()
    if not pixmap.loadFromData(attachment.data):
        return None
    return pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)


def insert_images(cursor: QTextCursor, attachments: list[Attachment], counter: int) -> int:
    """Thumbnails of the images sent with a message, from the message's own bytes, added to
    the document as resources: nothing is ever loaded from anywhere. Returns the new count of
    images in the document (for unique resource names)."""
    for attachment in attachments:
        image = QImage.fromData(attachment.data)
        if image.isNull():
            cursor.insertText(f"[image: {attachment.name or attachment.mime}]")
            continue
        if image.width() > SENT_THUMB_PX or image.height() > SENT_THUMB_PX:
            image = image.scaled(SENT_THUMB_PX, SENT_THUMB_PX,
                                 Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        counter += 1
        name = link(Action.IMAGE, counter)  # chrome: left out when a selection is copied
        cursor.document().addResource(QTextDocument.ResourceType.ImageResource, QUrl(name),
                                      image)
        fmt = QTextImageFormat()
        fmt.setName(name)
        fmt.setAnchor(True)
        fmt.setAnchorHref(name)
        fmt.setToolTip(plain_tooltip(attachment.name or "image"))  # a name may be imported
        if cursor.block().length() > 1:
            cursor.insertBlock()
        cursor.insertImage(fmt)
    return counter


class AttachmentStrip(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attachmentStrip")
        self.setAccessibleName("Attached images")
        self._items: list[Attachment] = []
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 4)
        self._row.addStretch(1)
        self.hide()

    @property
    def attachments(self) -> list[Attachment]:
        return list(self._items)

    def add(self, attachment: Attachment) -> None:
        self._items.append(attachment)
        self._rebuild()

    def remove(self, index: int) -> None:
        if 0 <= index < len(self._items):
            del self._items[index]
            self._rebuild()

    def set_attachments(self, attachments: list[Attachment]) -> None:
        self._items = list(attachments)
        self._rebuild()

    def take(self) -> list[Attachment]:
        items, self._items = self._items, []
        self._rebuild()
        return items

    def _rebuild(self) -> None:
        while self._row.count() > 1:
            item = self._row.takeAt(0)
            if item is not None and item.widget() is not None:
                item.widget().deleteLater()
        for index, attachment in enumerate(self._items):
            self._row.insertWidget(index, self._tile(index, attachment))
        self.setVisible(bool(self._items))
        self.changed.emit()

    def _tile(self, index: int, attachment: Attachment) -> QWidget:
        tile = QWidget(self)
        column = QVBoxLayout(tile)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        picture = QLabel(tile)
        pixmap = thumbnail(attachment)
        if pixmap is not None:
            picture.setPixmap(pixmap)
        else:
            picture.setText("image")
        picture.setToolTip(plain_tooltip(
            f"{attachment.name or 'image'} ({len(attachment.data) // 1024} KB)"))
        picture.setAccessibleName(f"Attached image {attachment.name}".strip())
        remove = QToolButton(tile)
        remove.setText("Remove")
        remove.setAccessibleName(f"Remove image {index + 1}")
        remove.setToolTip("Do not send this image")
        remove.clicked.connect(lambda _checked=False, i=index: self.remove(i))
        column.addWidget(picture, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(remove, 0, Qt.AlignmentFlag.AlignHCenter)
        return tile
