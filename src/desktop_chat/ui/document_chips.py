"""Documents in the window: reading attached files in the background (`DocumentReader`), the
chips above the composer (`DocumentStrip`), the document lines in the transcript, and the
viewer that shows a source passage or the exact context a reply was sent (`TextViewer`).

Reading happens in a worker thread of its own: extracting a 300-page
PDF takes a fraction of a second in PDFium's C code, indexing it a little more; the window's
loop keeps running and the chip shows the pages read so far.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, Qt, Signal
from PySide6.QtGui import QColor, QImage, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.chat.documents import (
    context_text,
    fits_whole,
    read_data,
    read_document,
    snippet,
    with_context,
)
from desktop_chat.core.documents import extract
from desktop_chat.core.documents.extract import (
    KIND_LABELS,
    ScannedDocument,
    size_text,
    whole_text,
)
from desktop_chat.core.documents.pages import MAX_PAGES, render_pages
from desktop_chat.core.history.store import Store, StoreError
from desktop_chat.core.model.message import Attachment, DocumentRef, Passage, sniff_image
from desktop_chat.core.render.actions import Action, link
from desktop_chat.ui.labels import plain_tooltip
from desktop_chat.ui.reply_view import chrome_format
from desktop_chat.ui.tasks import Tasks

log = logging.getLogger("desktop_chat.documents")

ATTACH_FILTER = ("Documents and images (*.pdf *.docx *.txt *.md *.markdown *.html *.htm *.csv "
                 "*.tsv *.json *.py *.js *.ts *.c *.h *.cpp *.java *.go *.rs *.png *.jpg *.jpeg "
                 "*.gif *.webp)")
PROGRESS_STEP = 5  # percent
JPEG_QUALITY = 85
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
NO_HISTORY = ("Documents are kept in the history, which could not be opened, so they cannot "
              "be attached in this session. The notice at the top says why.")


class _Cancelled(Exception):
    pass


class DocumentReader(QObject):
    """Reads attached files into the history in the background, one task per file."""

    progressed = Signal(int, int, int)  # key, pages (or steps) done, total
    finished = Signal(int, object)  # key, DocumentRef
    failed = Signal(int, str)  # key, what went wrong in words
    scanned = Signal(int, str, int)  # key, path, pages: a PDF with no text layer
    pages_ready = Signal(int, object)  # key, list[Attachment]: a scanned PDF's pages

    def __init__(self, store: Store | None, tasks: Tasks, parent: QObject | None = None
                 ) -> None:
        super().__init__(parent)
        self.store = store
        self.tasks = tasks
        self._keys = itertools.count(1)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._cancelled: set[int] = set()
        # One plain reading thread: qasync's default executor (QThreads) cost the window's
        # loop 20-29 ms per read against 13-18 ms with this (measured around the same work).
        # Not at a lower OS priority: the GUI thread waits for the GIL this thread holds, and
        # a descheduled holder would make it wait longer (priority inversion).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents")
        executor = self._executor  # not `self`: its wrapper is gone once destroyed
        self.destroyed.connect(lambda: executor.shutdown(wait=False, cancel_futures=True))

    def warm_up(self) -> asyncio.Future[None]:
        """Load, in the reading thread, what the first file in a legacy text encoding needs
        (`extract.warm_up`), so that reading one later does not stall the window; for
        start-up's background loading (app.py), while nothing else happens."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, _warm_up)

    @staticmethod
    def split(paths: Sequence[str]) -> tuple[list[str], list[str]]:
        """(images, documents): an image by its first bytes or its name (a file named as an
        image that is none is refused as an image, saying so); the rest are documents, whose
        reading says why one cannot be used (a folder, a file gone)."""
        images, documents = [], []
        for path in paths:
            try:
                with open(path, "rb") as file:
                    head = file.read(16)
            except OSError:
                head = b""
            image = sniff_image(head) or Path(path).suffix.lower() in IMAGE_SUFFIXES
            (images if image else documents).append(path)
        return images, documents

    def read(self, path: str) -> int:
        """Start reading `path`; returns the key its signals carry."""
        key = next(self._keys)
        self._tasks[key] = self.tasks.start(self._read(key, path), what="Reading a document")
        return key

    def read_data(self, data: bytes, name: str) -> int:
        """Like `read`, for a document that is no file (an MCP resource's text)."""
        key = next(self._keys)
        self._tasks[key] = self.tasks.start(self._read(key, name, data),
                                            what="Reading a document")
        return key

    def cancel(self, key: int) -> None:
        self._cancelled.add(key)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    def passage_text(self, passage: Passage) -> str:
        """A source's text: the passage, or the whole document's text read back."""
        if not passage.whole:
            return passage.text
        try:
            sections = self.store.document_sections(passage.sha256) if self.store else []
        except StoreError as exc:
            return str(exc)
        return whole_text(sections) or "This document is no longer in the history."

    def sent_context(self, passages: Sequence[Passage], prompt: str) -> str:
        """The message a reply answered, as the model received it."""
        if self.store is None:
            return prompt
        try:
            context = context_text(self.store, passages)
        except StoreError as exc:
            return str(exc)
        return with_context({"role": "user", "content": prompt}, context)["content"]

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def _read(self, key: int, path: str, data: bytes | None = None) -> None:
        loop = asyncio.get_running_loop()
        shown = [-PROGRESS_STEP]

        def progress(done: int, total: int) -> None:  # in the worker thread
            if key in self._cancelled:
                raise _Cancelled
            percent = done * 100 // max(total, 1)
            if percent >= shown[0] + PROGRESS_STEP or done == total:  # a repaint each
                shown[0] = percent
                loop.call_soon_threadsafe(self._progress, key, done, total)

        try:
            if self.store is None:
                raise ValueError(NO_HISTORY)
            if data is None:
                ref = await loop.run_in_executor(self._executor, read_document, self.store,
                                                 Path(path), progress)
            else:
                ref = await loop.run_in_executor(self._executor, read_data, self.store, data,
                                                 path, progress)
        except _Cancelled:
            return
        except ScannedDocument as exc:
            log.info("document %s has no text layer (%d pages)", Path(path).name, exc.pages)
            if key not in self._cancelled:
                self.scanned.emit(key, path, exc.pages)
            return
        except (ValueError, StoreError) as exc:  # DocumentError is a ValueError: user text
            log.info("document %s not attached: %s", Path(path).name, exc)
            if key not in self._cancelled:
                self.failed.emit(key, str(exc))
            return
        except Exception as exc:  # a library's bug on an odd file: said, and the chip goes
            log.exception("reading %s failed", Path(path).name)
            if key not in self._cancelled:
                self.failed.emit(key, f"'{Path(path).name}' could not be read "
                                      f"({type(exc).__name__}). The log has the details.")
            return
        finally:
            self._tasks.pop(key, None)
        if key not in self._cancelled:
            self.finished.emit(key, ref)

    def read_pages(self, key: int, path: str) -> None:
        """Draw the pages of the scanned PDF at `path` as JPEG images, in the reading
        thread; `pages_ready` (or `failed`) says when they are there."""
        self._cancelled.discard(key)
        self._tasks[key] = self.tasks.start(self._read_pages(key, path),
                                            what="Drawing a scanned PDF's pages")

    async def _read_pages(self, key: int, path: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            images = await loop.run_in_executor(
                self._executor, page_images, Path(path), lambda: key in self._cancelled)
        except ValueError as exc:  # DocumentError, or an image too large: user text
            log.info("pages of %s not drawn: %s", Path(path).name, exc)
            if key not in self._cancelled:
                self.failed.emit(key, str(exc))
            return
        finally:
            self._tasks.pop(key, None)
        if key not in self._cancelled:
            self.pages_ready.emit(key, images)

    def _progress(self, key: int, done: int, total: int) -> None:
        if key not in self._cancelled:
            self.progressed.emit(key, done, total)


def page_images(path: Path, stop: Callable[[], bool] | None = None) -> list[Attachment]:
    """A scanned PDF's first pages as JPEG attachments (for the reading thread: QImage, unlike
    QPixmap, may be used off the GUI thread). JPEG at quality 85: a page of print is ~200-400
    KB instead of megabytes as PNG, and as legible."""
    images = []
    for page in render_pages(path, stop=stop):
        image = QImage(page.pixels, page.width, page.height, page.stride,
                       QImage.Format.Format_RGBX8888)
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        saved = image.save(buffer, "JPEG", JPEG_QUALITY)
        buffer.close()
        if not saved:  # Qt's JPEG plugin missing from a build
            raise ValueError(f"The pages of '{path.name}' could not be turned into images "
                             "(no JPEG support in this build). The log has the details.")
        images.append(Attachment.image(bytes(data.data()), f"{path.stem} page {page.page}.jpg"))
    return images


def _warm_up() -> None:
    started = time.perf_counter()
    try:
        extract.warm_up()
    except Exception:  # loaded on first use instead, which says what is wrong
        log.exception("warming up text encoding detection failed")
        return
    log.info("text encoding detection ready (%.0f ms)", (time.perf_counter() - started) * 1000)


# -- chips -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    key: int
    name: str
    ref: DocumentRef | None = None
    done: int = 0
    total: int = 0
    scan: str = ""  # the path of a scanned PDF whose pages can be sent as images
    scan_pages: int = 0
    drawing: bool = False  # its pages are being drawn


def describe(ref: DocumentRef) -> str:
    """"300 pages · ≈66k tokens"."""
    size = (f"{ref.pages} page{'s' if ref.pages != 1 else ''}" if ref.pages
            else size_text(ref.size))
    return f"{size} · ≈{_count(ref.tokens)} tokens"


def _count(tokens: int) -> str:
    return f"{tokens / 1000:.0f}k" if tokens >= 10_000 else (
        f"{tokens / 1000:.1f}k" if tokens >= 1000 else str(tokens))


class DocumentStrip(QWidget):
    """The documents to send with the next message, as chips: name, pages or size, tokens
    (or reading progress), and a remove button."""

    changed = Signal()
    removed = Signal(int)  # key of a chip the user removed (its reading is cancelled)
    pages_requested = Signal(int, str)  # key, path: send a scanned PDF's pages as images

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("documentStrip")
        self.setAccessibleName("Attached documents")
        self._items: list[_Item] = []
        self._chips: dict[int, QFrame] = {}
        self._keys = itertools.count(1_000_000)  # for documents given back (no reading)
        self.budget = 0  # tokens the documents may take per prompt (0: unknown)
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 4)
        self._row.setSpacing(6)
        self._row.addStretch(1)
        self.hide()

    # -- what the window asks --

    @property
    def documents(self) -> list[DocumentRef]:
        return [item.ref for item in self._items if item.ref is not None]

    @property
    def reading(self) -> list[str]:
        """Names of the documents still being read (a scan's pages being drawn too)."""
        return [item.name for item in self._items
                if item.ref is None and (not item.scan or item.drawing)]

    @property
    def scans(self) -> list[str]:
        """Names of the scanned PDFs offered as page images (not sent as documents)."""
        return [item.name for item in self._items if item.scan]

    def text_of(self, key: int) -> str:
        chip = self._chips.get(key)
        label = chip.findChild(QLabel) if chip is not None else None
        return label.text() if label is not None else ""

    # -- changes --

    def add_reading(self, key: int, name: str) -> None:
        self._items.append(_Item(key, name))
        self._rebuild()

    def set_progress(self, key: int, done: int, total: int) -> None:
        for item in self._items:
            if item.key == key:
                item.done, item.total = done, total
                self._relabel(item)

    def set_ready(self, key: int, ref: DocumentRef) -> None:
        for item in self._items:
            if item.key == key:
                item.ref = ref
                item.name = ref.name
        self._rebuild()

    def set_scanned(self, key: int, path: str, pages: int) -> None:
        """A PDF without text: its chip offers to send its pages as images."""
        for item in self._items:
            if item.key == key:
                item.scan, item.scan_pages = path, pages
        self._rebuild()

    def set_drawing(self, key: int) -> None:
        for item in self._items:
            if item.key == key:
                item.drawing = True
        self._rebuild()

    def drop(self, key: int) -> None:
        self._items = [item for item in self._items if item.key != key]
        self._rebuild()

    def set_documents(self, refs: Sequence[DocumentRef]) -> None:
        """Show these (read already), e.g. a prompt given back after a failed send."""
        self._items = [_Item(next(self._keys), r.name, r) for r in refs]
        self._rebuild()

    def take(self) -> list[DocumentRef]:
        refs = self.documents
        self._items = []
        self._rebuild()
        return refs

    # -- drawing --

    def _rebuild(self) -> None:
        while self._row.count() > 1:
            item = self._row.takeAt(0)
            if item is not None and item.widget() is not None:
                item.widget().deleteLater()
        self._chips = {}
        for index, item in enumerate(self._items):
            chip = self._chip(item)
            self._chips[item.key] = chip
            self._row.insertWidget(index, chip)
        self.setVisible(bool(self._items))
        self.changed.emit()

    def _chip(self, item: _Item) -> QFrame:
        chip = QFrame(self, objectName="documentChip")
        chip.setFrameShape(QFrame.Shape.StyledPanel)
        base = self.palette().color(self.palette().ColorRole.Base)
        border = self.palette().color(self.palette().ColorRole.Mid)
        chip.setStyleSheet(f"QFrame#documentChip {{ background: {base.name()}; border: 1px "
                           f"solid {border.name()}; border-radius: 10px; }}")
        row = QHBoxLayout(chip)
        row.setContentsMargins(10, 4, 4, 4)
        row.setSpacing(4)
        label = QLabel(chip)
        label.setTextFormat(Qt.TextFormat.PlainText)
        row.addWidget(label)
        if item.scan and not item.drawing:
            send = QToolButton(chip, objectName="sendPagesButton")
            send.setText("Send pages as images")
            accent = self.palette().color(self.palette().ColorRole.Link).name()
            send.setStyleSheet(f"QToolButton#sendPagesButton {{ color: {accent}; border: 1px "
                               f"solid {accent}; border-radius: 8px; padding: 1px 8px; }}")
            send.setCursor(Qt.CursorShape.PointingHandCursor)
            send.setAccessibleName(f"Send the pages of {item.name} as images")
            shown = min(item.scan_pages, MAX_PAGES)
            send.setToolTip(plain_tooltip(
                f"Attach {'its page' if shown == 1 else f'its first {shown} pages'} to your "
                "message as pictures, for the model to read."))
            send.clicked.connect(
                lambda _checked=False, key=item.key, path=item.scan:
                self.pages_requested.emit(key, path))
            row.addWidget(send)
        remove = QToolButton(chip, objectName="removeDocumentButton")
        remove.setText("✕")
        remove.setAutoRaise(True)
        remove.setAccessibleName(f"Remove document {item.name}")
        remove.setToolTip(plain_tooltip(f"Do not send {item.name}"))
        remove.clicked.connect(lambda _checked=False, key=item.key: self._remove(key))
        row.addWidget(remove)
        chip.setAccessibleName(f"Document {item.name}")
        self._label(item, label, chip)
        return chip

    def _relabel(self, item: _Item) -> None:
        chip = self._chips.get(item.key)
        label = chip.findChild(QLabel) if chip is not None else None
        if chip is not None and label is not None:
            self._label(item, label, chip)

    def _label(self, item: _Item, label: QLabel, chip: QFrame) -> None:
        ref = item.ref
        if item.scan:
            pages = f"{item.scan_pages} page{'s' if item.scan_pages != 1 else ''}"
            label.setText(f"{item.name} · drawing pages…" if item.drawing else
                          f"{item.name} · {pages}, scanned: no text")
            chip.setToolTip(plain_tooltip(f"{item.name} has no text layer: its pages are "
                                          "pictures."))
            return
        if ref is None:
            done = f" {item.done * 100 // item.total} %" if item.total else ""
            label.setText(f"{item.name} · reading…{done}")
            chip.setToolTip(plain_tooltip(f"Reading {item.name}: its text is extracted and "
                                          "indexed on this computer."))
            return
        label.setText(f"{ref.name} · {describe(ref)}")
        kind = KIND_LABELS.get(ref.kind, ref.kind)
        how = ("It fits: it is sent whole with each message." if not self.budget
               or fits_whole(ref, self.budget) else
               "Too long to send whole: each message gets the passages of it that best match "
               "what you ask, with their page numbers.")
        chip.setToolTip(plain_tooltip(f"{ref.name} ({kind}). {how}"))

    def _remove(self, key: int) -> None:
        self.drop(key)
        self.removed.emit(key)


# -- transcript lines --------------------------------------------------------------------------


def insert_document_names(cursor: QTextCursor, refs: Sequence[DocumentRef], muted: QColor,
                          ) -> None:
    """A line per attached document under a prompt (chrome: not copied)."""
    for ref in refs:
        cursor.insertBlock()
        cursor.insertText(f"Document: {ref.name} · {describe(ref)}",
                          chrome_format(link(Action.LABEL), muted))


def insert_sources(cursor: QTextCursor, passages: Sequence[Passage], reply_text: str,
                   first: int, index: int, muted: QColor) -> None:
    """"Sources" under a reply: one clickable line per passage (numbered from `first` in the
    transcript), then "What was sent", which shows the exact context."""
    cursor.insertBlock()
    cursor.insertText("Sources", chrome_format(link(Action.LABEL), muted, bold=True))
    for number, passage in enumerate(passages):
        cursor.insertBlock()
        quote = "" if passage.whole else snippet(passage.text, reply_text)
        line = f"[{number + 1}] {passage.where}" + (f" — “{quote}”" if quote else "")
        cursor.insertText(line, chrome_format(link(Action.SOURCE, first + number), muted))
    cursor.insertBlock()
    cursor.insertText("What was sent ›", chrome_format(link(Action.CONTEXT, index), muted))
    cursor.setCharFormat(QTextCharFormat())


# -- viewer ------------------------------------------------------------------------------------


class TextViewer(QDialog):
    """A passage, or the context a reply was sent, as plain text; non-modal (a reply may be
    streaming), closed with Esc or Close."""

    def __init__(self, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("documentViewer")
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(720, 560)
        column = QVBoxLayout(self)
        self.text = QPlainTextEdit(self, objectName="documentViewerText")
        self.text.setReadOnly(True)
        self.text.setPlainText(text)
        self.text.setAccessibleName(title)
        column.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        column.addWidget(buttons)
