"""Formulas in a QTextDocument: drawn by ziamath (core/render/math.py), rasterised by QtSvg at
the screen's pixel ratio, in the theme's text colour, added to the document as image resources.

Drawing a formula takes 3-30 ms of Python, so it never happens while the document is laid out
or painted, nor in the frame that shows it: a formula not drawn yet is shown at once as its
source (an image of the text, in a code style) and drawn in a helper process (math_host.py),
waited for on a worker thread; when the drawing arrives the resource is replaced and only the
lines holding it are laid out again. Drawn formulas are cached by (LaTeX, display, size,
colour) and images by that and the pixel ratio, so a formula is drawn once per look, however
often the streaming tail is re-rendered.

Each image keeps the formula's source as its alt text and tooltip: a selection copy, the
accessible description and an HTML export read it from there.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import logging
import re
from collections import OrderedDict
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QRectF, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontInfo,
    QFontMetricsF,
    QImage,
    QPainter,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtSvg import QSvgRenderer

from desktop_chat.core.render.markdown import math_source_html
from desktop_chat.core.render.math import DrawnCache, DrawnMath, Formula
from desktop_chat.core.render.math_host import MathHost
from desktop_chat.core.render.theme import Theme
from desktop_chat.ui.tasks import Tasks

log = logging.getLogger("desktop_chat.math")

SCHEME = "dc-math:"  # resource names of formula images; never fetched from anywhere
# STIX Two Math, ziamath's font, has a smaller x-height than the UI's sans fonts: at the same
# size its letters look a size too small next to the text.
MATH_SCALE = 1.2
KEPT_IMAGES = 256
PAPER_INK = Theme(dark=False).colors.text  # formulas on the clipboard
_IMG = re.compile(rf'<img src="({SCHEME}[0-9a-f]+)"[^>]*>')
_ALT = re.compile(r'alt="([^"]*)"')
_Key = tuple[str, bool, float, str]


class MathImages(QObject):
    """The formulas of one document. `look` tells the current (font, colour, pixel ratio)."""

    def __init__(self, document: QTextDocument, look: Callable[[], tuple[QFont, str, float]],
                 parent: QObject | None = None, cache: DrawnCache | None = None) -> None:
        super().__init__(parent)
        self._doc = document
        self._look = look
        host = MathHost()  # drawing happens there: a thread would stall the window (GIL)
        self.destroyed.connect(lambda *_: host.close())
        self.drawn = cache or DrawnCache(drawer=host.draw)
        # resource name -> image at its ratio, the most recent kept (the document holds its own)
        self._images: OrderedDict[str, QImage] = OrderedDict()
        self._formulas: dict[str, Formula] = {}  # resource name -> what it shows
        self._in_document: set[str] = set()        # names of images the document was given
        self._drawing: dict[_Key, list[str]] = {}  # being drawn -> names waiting for it
        self._waiting: dict[str, list[QTextCursor]] = {}  # name -> where it stands as source
        self._tasks = Tasks(self)
        self._tasks.failed.connect(lambda text: log.warning("%s", text))

    # -- the view: the markdown renderer's `math` hook -----------------------------------

    def html(self, formula: Formula) -> str:
        """An <img> of the formula, from the cache; while it is being drawn, an image of its
        source; its source as code if it cannot be drawn."""
        font, color, ratio = self._look()
        key = _key(formula, font, color)
        name = _name(key, ratio)
        known, drawn = self.drawn.get(key)
        if not known and not _loop_running():  # a one-off render: nothing streams, draw now
            known, drawn = True, self.drawn.draw(key, here=True)
        if known and drawn is None:
            return math_source_html(formula)
        if not self._holds(name):
            if drawn is not None:
                self._add(name, self._image(name, drawn, font, ratio))
            else:
                self._add(name, _source_image(formula.source, font, color, ratio))
                self._draw_later(key, name, font, ratio)
        self._formulas[name] = formula
        source = html.escape(formula.source, quote=True)
        return f'<img src="{name}" alt="{source}" title="{source}" style="vertical-align:middle">'

    @property
    def busy(self) -> bool:
        """Whether formulas are being drawn."""
        return bool(self._drawing)

    def inserted(self, start: int, end: int) -> None:
        """Note where formulas still being drawn stand between `start` and `end`, to lay out
        just those lines again once they are drawn."""
        if not self._drawing:
            return
        waiting = {name for names in self._drawing.values() for name in names}
        for position, name, _alt in _images_in(self._doc, start, end):
            if name in waiting:
                cursor = QTextCursor(self._doc)
                cursor.setPosition(position)
                self._waiting.setdefault(name, []).append(cursor)

    # -- copies ----------------------------------------------------------------------------

    def clipboard_html(self, formula: Formula) -> str:
        """A formula for text/html on the clipboard: a PNG (data: URL) with its LaTeX as alt
        text, which rich editors, word processors and mail paste as a picture; its source as
        code when it cannot be drawn. In dark ink whatever the theme (pasted text takes the
        page's colour, and pages are light), at 2x at least, so it stays sharp when zoomed.
        Drawn here if need be: copying is a user's action."""
        font, _color, ratio = self._look()
        key = _key(formula, font, PAPER_INK)
        drawn = self.drawn.draw(key)
        if drawn is None:
            return math_source_html(formula)
        image = self._image(_name(key, max(ratio, 2.0)), drawn, font, max(ratio, 2.0))
        return _img_tag(image, formula.source)

    def with_pictures(self, markup: str) -> str:
        """HTML from `QTextDocument.toHtml` with the view's formula images made pictures for
        the clipboard (`clipboard_html`); one of unknown origin becomes its alt text."""
        def picture(match: re.Match[str]) -> str:
            formula = self._formulas.get(match.group(1))
            if formula is None:
                alt = _ALT.search(match.group(0))
                return alt.group(1) if alt else ""
            return self.clipboard_html(formula)

        return _IMG.sub(picture, markup) if SCHEME in markup else markup

    @staticmethod
    def to_source(document: QTextDocument) -> None:
        """Replace each formula image in `document` (a copy of a selection) by its LaTeX."""
        cursor = QTextCursor(document)
        for position, _name, alt in reversed(list(_images_in(document, 0,
                                                              document.characterCount()))):
            cursor.setPosition(position)
            cursor.setPosition(position + 1, QTextCursor.MoveMode.KeepAnchor)
            cursor.insertText(alt)

    # -- drawing ---------------------------------------------------------------------------

    def _draw_later(self, key: _Key, name: str, font: QFont, ratio: float) -> None:
        waiting = self._drawing.setdefault(key, [])
        if name in waiting:
            return
        waiting.append(name)
        if len(waiting) == 1:
            self._tasks.start(self._draw(key, font, ratio), what="Drawing a formula")

    async def _draw(self, key: _Key, font: QFont, ratio: float) -> None:
        drawn = await asyncio.to_thread(self.drawn.draw, key)
        self._drawn(key, drawn, font, ratio)

    def _drawn(self, key: _Key, drawn: DrawnMath | None, font: QFont, ratio: float) -> None:
        if not shiboken6.isValid(self._doc):  # the view closed while it was drawn
            return
        for name in self._drawing.pop(key, []):
            if drawn is not None:
                self._add(name, self._image(name, drawn, font, ratio))
            for cursor in self._waiting.pop(name, []):
                alt = _image_at(cursor, name)
                if alt is None:
                    continue  # re-rendered meanwhile (the streaming tail): gone from there
                if drawn is not None:  # lay out the line again for the drawing's size
                    self._doc.markContentsDirty(cursor.position(), 1)
                else:  # cannot be drawn: its source as code, as a render now would show
                    cursor.setPosition(cursor.position() + 1, QTextCursor.MoveMode.KeepAnchor)
                    cursor.insertHtml(f"<code>{html.escape(alt)}</code>")

    def _holds(self, name: str) -> bool:
        """Whether the document has an image (drawn, or source while drawing) by that name;
        `QTextDocument.clear` drops them all."""
        if name not in self._in_document:
            return False
        if self._doc.resource(QTextDocument.ResourceType.ImageResource, QUrl(name)) is None:
            self._in_document.clear()  # the document was cleared
            self._formulas.clear()
            return False
        return True

    def _add(self, name: str, image: QImage) -> None:
        self._doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), image)
        self._in_document.add(name)

    def _image(self, name: str, drawn: DrawnMath, font: QFont, ratio: float) -> QImage:
        image = self._images.get(name)
        if image is None:
            image = self._images[name] = _raster(drawn, font, ratio)
            while len(self._images) > KEPT_IMAGES:
                self._images.popitem(last=False)
        else:
            self._images.move_to_end(name)
        return image


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _key(formula: Formula, font: QFont, color: str) -> _Key:
    size = round(QFontInfo(font).pixelSize() * MATH_SCALE, 1)
    return (formula.latex, formula.display, size, color)


def _name(key: _Key, ratio: float) -> str:
    latex, display, size, color = key
    digest = hashlib.sha1(f"{display}|{size}|{color}|{ratio}|{latex}".encode()).hexdigest()
    return f"{SCHEME}{digest[:24]}"


def _raster(drawn: DrawnMath, font: QFont, ratio: float) -> QImage:
    """The SVG at `ratio`, padded so that Qt's vertical-align:middle (the image's middle at
    half the x-height above the baseline) puts the formula's baseline on the text's."""
    x_height = QFontMetricsF(font).xHeight()
    above, below = drawn.height - drawn.depth, drawn.depth
    shift = above - below - x_height / 2  # bottom padding minus top padding
    top, bottom = max(0.0, -shift), max(0.0, shift)
    width, height = drawn.width, drawn.height + top + bottom
    image = QImage(max(1, round(width * ratio)), max(1, round(height * ratio)),
                   QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    image.setDevicePixelRatio(ratio)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(QByteArray(drawn.svg.encode())).render(painter, QRectF(0, top, width,
                                                                         drawn.height))
    painter.end()
    return image


def _source_image(source: str, font: QFont, color: str, ratio: float) -> QImage:
    """The formula's source as a picture, while it is being drawn (a few ms)."""
    mono = QFont(font)
    mono.setStyleHint(QFont.StyleHint.Monospace)
    mono.setFamilies(["monospace"])
    metrics = QFontMetricsF(mono)
    shown = source if len(source) <= 200 else source[:199] + "…"
    width, height = metrics.horizontalAdvance(shown) + 2, metrics.height()
    image = QImage(max(1, round(width * ratio)), max(1, round(height * ratio)),
                   QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    image.setDevicePixelRatio(ratio)
    painter = QPainter(image)
    faded = QColor(color)
    faded.setAlphaF(0.6)
    painter.setPen(faded)
    painter.setFont(mono)
    painter.drawText(QRectF(1, 0, width, height), Qt.AlignmentFlag.AlignVCenter, shown)
    painter.end()
    return image


def _images_in(document: QTextDocument, start: int, end: int) -> list[tuple[int, str, str]]:
    """(position, name, alt text) of each formula image between `start` and `end`."""
    found: list[tuple[int, str, str]] = []
    block = document.findBlock(start)
    while block.isValid() and block.position() <= end:
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            fmt = fragment.charFormat()
            if fmt.isImageFormat() and start <= fragment.position() <= end:
                image = fmt.toImageFormat()
                if image.name().startswith(SCHEME):
                    alt = str(image.property(QTextFormat.Property.ImageAltText) or "")
                    # adjacent equal images share one fragment: one entry per character
                    found += [(fragment.position() + i, image.name(), alt)
                              for i in range(fragment.length())]
            it += 1
        block = block.next()
    return found


def _image_at(cursor: QTextCursor, name: str) -> str | None:
    """The alt text of the formula image `name` right after `cursor`, if it stands there."""
    if cursor.position() + 1 >= cursor.document().characterCount():
        return None
    probe = QTextCursor(cursor)
    probe.setPosition(cursor.position() + 1)  # the format of the character before it
    fmt = probe.charFormat()
    if not fmt.isImageFormat() or fmt.toImageFormat().name() != name:
        return None
    return str(fmt.toImageFormat().property(QTextFormat.Property.ImageAltText) or "")


def _data_url(image: QImage) -> str:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return "data:image/png;base64," + base64.b64encode(bytes(data.data())).decode("ascii")


def _img_tag(image: QImage, source: str) -> str:
    ratio = image.devicePixelRatio()
    width, height = round(image.width() / ratio), round(image.height() / ratio)
    alt = html.escape(source, quote=True)
    return (f'<img src="{_data_url(image)}" width="{width}" height="{height}" alt="{alt}" '
            f'title="{alt}" style="vertical-align:middle">')
