"""What the transcript paints behind its document: user bubbles, code cards, quote bars and
error cards. The document stays one QTextDocument (the streaming pipeline is unchanged); the
look comes from marks on block formats and from the layout's own rectangles.

Only the blocks in the exposed rectangle are visited (plus, upwards, the rest of a shape that
starts above it), so the cost of a paint does not grow with the conversation.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import (
    QPainter,
    QPainterPath,
    QTextBlock,
    QTextBlockFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
    QTextTable,
)

from desktop_chat.core.render.actions import Action, parse
from desktop_chat.core.render.theme import Theme
from desktop_chat.ui import icons
from desktop_chat.ui.theme import qcolor

# Marks on block formats (QTextFormat user properties): what shape a block belongs to.
SHAPE = QTextFormat.Property.UserProperty.value + 1
BUBBLE, CARD_ERROR, CARD_NOTICE, ACTIONS = 1, 2, 3, 4
CARD_PAD = 12  # px around an error card's text
ICON_ROOM = 28  # px left of an error card's text for its icon
_QUOTE = QTextFormat.Property.BlockQuoteLevel


def shape_of(block: QTextBlock) -> int:
    value = block.blockFormat().property(SHAPE)
    return int(value) if value else 0


def mark(fmt: QTextBlockFormat, shape: int) -> QTextBlockFormat:
    fmt.setProperty(SHAPE, shape)
    return fmt


def code_index(table: QTextTable) -> int | None:
    """The code block number of a code card (its header links to Copy), None for a table."""
    if table.rows() < 2 or table.columns() != 2:
        return None
    cell = table.cellAt(0, 0)
    it = cell.firstCursorPosition().block().begin()
    while not it.atEnd():
        found = parse(it.fragment().charFormat().anchorHref())
        if found is not None and found.action is Action.COPY_CODE:
            return found.number
        it += 1
    return None


def first_block_at(doc: QTextDocument, y: float) -> QTextBlock:
    """The first block reaching down to document y, by binary search over block numbers
    (O(log n) rectangles; a fuzzy hitTest answers the document's end for points in the gaps
    between blocks). Hidden blocks have no rectangle: the next shown one stands for them."""
    layout = doc.documentLayout()
    lo, hi = 0, doc.blockCount() - 1
    while lo < hi:
        mid = (lo + hi) // 2
        probe = doc.findBlockByNumber(mid)
        for _ in range(64):
            if probe.isVisible() or not probe.next().isValid():
                break
            probe = probe.next()
        if layout.blockBoundingRect(probe).bottom() < y:
            lo = max(mid, probe.blockNumber()) + 1
        else:
            hi = mid
    return doc.findBlockByNumber(lo)


class Painter:
    def __init__(self, doc: QTextDocument, theme: Theme) -> None:
        self._doc = doc
        self.theme = theme
        self._codes: dict[int, int | None] = {}  # table objectIndex -> code index (or None)
        self.column = (0.0, 0.0)  # the reading column's left edge and width, document px

    def forget(self) -> None:
        self._codes.clear()

    def code_of(self, table: QTextTable) -> int | None:
        key = table.objectIndex()
        if key not in self._codes:
            self._codes[key] = code_index(table)
        return self._codes[key]

    def paint(self, painter: QPainter, exposed: QRectF, dx: float, dy: float) -> None:
        """Paint behind the blocks intersecting `exposed` (document coordinates); the
        document is drawn at (-dx, -dy) in the viewport."""
        layout = self._doc.documentLayout()
        block = first_block_at(self._doc, exposed.top())
        if not block.isValid():
            return
        # a shape that starts above the exposed area: start from its first block
        shape = shape_of(block)
        while shape and block.previous().isValid() and shape_of(block.previous()) == shape:
            block = block.previous()
        painter.save()
        painter.translate(-dx, -dy)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        colors = self.theme.colors
        tables_done: set[int] = set()
        run: tuple[int, QRectF, QTextBlockFormat] | None = None
        while block.isValid():
            rect = layout.blockBoundingRect(block)
            if rect.top() > exposed.bottom() and run is None:
                break
            fmt = block.blockFormat()
            shape = int(fmt.property(SHAPE) or 0)
            if run is not None and shape != run[0]:
                self._shape(painter, *run)
                run = None
                if rect.top() > exposed.bottom():
                    break
            if shape in (BUBBLE, CARD_ERROR, CARD_NOTICE):
                run = (shape, rect, fmt) if run is None else (shape, run[1].united(rect), run[2])
            elif fmt.hasProperty(_QUOTE) and rect.height() > 0:
                painter.setBrush(qcolor(colors.quote_bar))
                left = rect.left() + fmt.leftMargin() - self.theme.space.m
                painter.drawRoundedRect(QRectF(left, rect.top() - 2, 3, rect.height() + 4), 1.5,
                                        1.5)
            table = QTextCursor(block).currentTable()
            if table is not None and table.objectIndex() not in tables_done:
                tables_done.add(table.objectIndex())
                if self.code_of(table) is not None:
                    self._code_card(painter, layout.frameBoundingRect(table), table)
                    block = table.lastCursorPosition().block()  # skip the code's lines
            block = block.next()
        if run is not None:
            self._shape(painter, *run)
        painter.restore()

    def _shape(self, painter: QPainter, shape: int, rect: QRectF,
               fmt: QTextBlockFormat) -> None:
        colors, radius = self.theme.colors, self.theme.radius
        pad_y = self.theme.space.s
        if shape == BUBBLE:
            # a block's rect starts at the column's left and is as wide as its text
            left = rect.left() + fmt.leftMargin() - self.theme.space.l
            right = rect.left() + fmt.leftMargin() + rect.width() + fmt.rightMargin()
            box = QRectF(left, rect.top() - pad_y, right - left, rect.height() + 2 * pad_y)
            painter.setBrush(qcolor(colors.bubble))
            painter.drawRoundedRect(box, radius.bubble, radius.bubble)
            return
        error = shape == CARD_ERROR
        left, width = self.column
        box = QRectF(left, rect.top() - CARD_PAD + 4, width, rect.height() + 2 * CARD_PAD - 8)
        painter.setBrush(qcolor(colors.danger_surface if error else colors.notice_surface))
        painter.setPen(qcolor(colors.danger_border if error else colors.notice_border))
        painter.drawRoundedRect(box.adjusted(0.5, 0.5, -0.5, -0.5), radius.card, radius.card)
        painter.setPen(Qt.PenStyle.NoPen)
        size = 18
        icon = icons.icon("error" if error else "warning",
                          colors.danger if error else colors.notice)
        icon.paint(painter, int(box.left() + CARD_PAD - 2), int(rect.top() + 1), size, size)

    def _code_card(self, painter: QPainter, frame: QRectF, table: QTextTable) -> None:
        colors, radius = self.theme.colors, self.theme.radius.card
        left, width = self.column
        box = QRectF(left, frame.top() + 6, width, frame.height() - 6)  # 6: the table's margin
        path = QPainterPath()
        path.addRoundedRect(box.adjusted(0.5, 0.5, -0.5, -0.5), radius, radius)
        painter.setBrush(qcolor(colors.code_background))
        painter.setPen(qcolor(colors.faint))
        painter.drawPath(path)
        painter.setPen(Qt.PenStyle.NoPen)
        code_top = self._doc.documentLayout().blockBoundingRect(
            table.cellAt(1, 0).firstCursorPosition().block()).top() - 8
        header = QRectF(box.left(), box.top(), box.width(), code_top - box.top())
        painter.save()
        painter.setClipPath(path)
        painter.fillRect(header, qcolor(colors.code_header))
        painter.restore()
