"""The sidebar: New chat, search across all messages, and the conversations as one-line titles
grouped by date (Today / Yesterday / Previous 7 days / Older). Each row has a "⋯" button on
hover and a right-click menu (Rename, Export, Delete) acting on THAT row; neither opens nor
selects it. The open conversation is the selected row. Search hits show the matched words
highlighted and open at the match; Esc clears the search."""

from __future__ import annotations

import html
import time
from datetime import date, datetime, timedelta

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QContextMenuEvent,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.history.records import HIGHLIGHT_END, HIGHLIGHT_START
from desktop_chat.core.history.store import ConversationSummary, SearchHit
from desktop_chat.ui import icons
from desktop_chat.ui.labels import PlainLabel, plain_tooltip
from desktop_chat.ui.theme import current, point_size, qcolor

ID_ROLE = Qt.ItemDataRole.UserRole
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1
GROUP_ROLE = Qt.ItemDataRole.UserRole + 2  # the date group's heading, on its first row only
SNIPPET_ROLE = Qt.ItemDataRole.UserRole + 3  # a search hit's snippet, matches marked
MATCH_ROLE = Qt.ItemDataRole.UserRole + 4  # the first matched words of a hit
STREAMING_ROLE = Qt.ItemDataRole.UserRole + 5  # a reply is being written in this chat

TODAY, YESTERDAY, WEEK, OLDER = "Today", "Yesterday", "Previous 7 days", "Older"
MORE_PX = 24  # the "⋯" button at the end of a hovered row


def date_group(timestamp: float, today: date | None = None) -> str:
    """The heading a conversation last active at `timestamp` is listed under."""
    today = today or date.today()
    day = datetime.fromtimestamp(timestamp).date()
    if day >= today:
        return TODAY
    if day == today - timedelta(days=1):
        return YESTERDAY
    if day >= today - timedelta(days=7):
        return WEEK
    return OLDER


class SearchBox(QLineEdit):
    """Esc clears the search (and only then leaves the key to the window: stop)."""

    def event(self, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent)
                and event.key() == Qt.Key.Key_Escape and self.text()):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.text():
            self.clear()
            event.accept()
            return
        super().keyPressEvent(event)


class ConversationList(QListWidget):
    delete_pressed = Signal(int)
    menu_requested = Signal(QListWidgetItem, QPoint)  # the row, where (global)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.setMouseTracking(True)
        self.hovered: QListWidgetItem | None = None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        item = self.currentItem()
        if event.key() == Qt.Key.Key_Delete and item is not None:
            self.delete_pressed.emit(item.data(ID_ROLE))
        elif event.key() == Qt.Key.Key_F2 and item is not None:
            self.editItem(item)
        elif event.key() == Qt.Key.Key_Menu and item is not None:
            rect = self.visualItemRect(item)
            self.menu_requested.emit(item, self.viewport().mapToGlobal(rect.bottomLeft()))
        else:
            super().keyPressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A right click only opens the menu (contextMenuEvent); a click on "⋯" opens it too.
        Neither selects the row: the selected row is the conversation on screen."""
        item = self.itemAt(event.position().toPoint())
        if event.button() == Qt.MouseButton.RightButton:
            event.accept()
            return
        if item is not None and event.button() == Qt.MouseButton.LeftButton and (
                self.more_rect(item).contains(event.position().toPoint())):
            event.accept()
            self.menu_requested.emit(item, event.globalPosition().toPoint())
            return
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        item = self.itemAt(event.position().toPoint())
        if item is not None and self.more_rect(item).contains(event.position().toPoint()):
            event.accept()  # not a click on the row
            return
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        item = self.itemAt(event.pos())
        if item is not None:
            self.menu_requested.emit(item, event.globalPos())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._hover(self.itemAt(event.position().toPoint()))
        super().mouseMoveEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self._hover(None)
        super().leaveEvent(event)

    def _hover(self, item: QListWidgetItem | None) -> None:
        if item is not self.hovered:
            self.hovered = item
            self.viewport().update()

    def more_rect(self, item: QListWidgetItem) -> QRect:
        """Where the row's "⋯" button is (also when not shown)."""
        if item.data(SNIPPET_ROLE):
            return QRect()  # search hits have no menu
        row = _row_rect(self.visualItemRect(item), item, self.fontMetrics().height())
        return QRect(row.right() - MORE_PX - 2, row.top() + (row.height() - MORE_PX) // 2,
                     MORE_PX, MORE_PX)


def _row_rect(rect: QRect, item_or_index: object, line: int) -> QRect:
    """The clickable row inside an item's rect (its date heading, if any, above it)."""
    heading = _data(item_or_index, GROUP_ROLE)
    top = rect.top() + (_heading_height(line) if heading else 0)
    return QRect(rect.left() + 4, top, rect.width() - 8, rect.bottom() - top + 1)


def _heading_height(line: int) -> int:
    return line + current().space.l


def _data(item_or_index: object, role: int) -> object:
    if isinstance(item_or_index, QListWidgetItem):
        return item_or_index.data(role)
    assert isinstance(item_or_index, QModelIndex)
    return item_or_index.data(role)


class RowDelegate(QStyledItemDelegate):
    """Paints a row: its date heading, the rounded row (hovered / open), the title elided on
    one line, a hit's snippet with the matches highlighted, and "⋯" on hover."""

    def __init__(self, view: ConversationList) -> None:
        super().__init__(view)
        self._view = view

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        line = option.fontMetrics.height()
        space = current().space
        lines = 2 if index.data(SNIPPET_ROLE) else 1
        height = lines * line + (lines - 1) * space.xs + 2 * space.s
        if index.data(GROUP_ROLE):
            height += _heading_height(line)
        return QSize(option.rect.width(), height)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex) -> None:
        theme = current()
        c, space = theme.colors, theme.space
        line = option.fontMetrics.height()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if heading := index.data(GROUP_ROLE):
            font = QFont(option.font)
            font.setPointSizeF(point_size(theme.type.small))
            font.setWeight(QFont.Weight.DemiBold)
            painter.setFont(font)
            painter.setPen(qcolor(c.muted))
            head = QRect(option.rect.left() + space.m, option.rect.top() + space.s,
                         option.rect.width() - space.l, line)
            painter.drawText(head, Qt.AlignmentFlag.AlignVCenter, str(heading))
        row = _row_rect(option.rect, index, line)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        item = self._view.itemFromIndex(index)
        hovered = item is not None and item is self._view.hovered
        if selected or hovered:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(qcolor(c.selected if selected else c.hover))
            painter.drawRoundedRect(row, theme.radius.button, theme.radius.button)
        font = QFont(option.font)
        font.setWeight(QFont.Weight.DemiBold if selected else QFont.Weight.Normal)
        painter.setFont(font)
        painter.setPen(qcolor(c.text))
        text_left = row.left() + space.s
        right_room = MORE_PX + space.xs if hovered and not index.data(SNIPPET_ROLE) else 0
        if index.data(STREAMING_ROLE) and not right_room:  # a reply is being written here
            dot = 6
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(qcolor(c.accent))
            painter.drawEllipse(row.right() - space.m - dot,
                                row.top() + (row.height() - dot) // 2, dot, dot)
            right_room = space.m + dot
        width = row.right() - text_left - space.s - right_room
        title = str(index.data(Qt.ItemDataRole.DisplayRole) or "").split("\n", 1)[0]
        title_rect = QRect(text_left, row.top() + space.s, width, line)
        painter.drawText(title_rect, Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(title, Qt.TextElideMode.ElideRight,
                                                          width))
        if snippet := index.data(SNIPPET_ROLE):
            self._paint_snippet(painter, str(snippet), QRect(
                text_left, title_rect.bottom() + space.xs, width, line), option.font)
        if right_room and item is not None:
            more = self._view.more_rect(item)
            icons.icon("more", c.muted).paint(painter, more.adjusted(3, 3, -3, -3))
        painter.restore()

    def _paint_snippet(self, painter: QPainter, snippet: str, rect: QRect,
                       font: QFont) -> None:
        c = current().colors
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        small = QFont(font)
        small.setPointSizeF(point_size(current().type.small))
        doc.setDefaultFont(small)
        doc.setDefaultStyleSheet(f"body {{ color: {c.muted}; }}"
                                 f" span.m {{ background-color: {c.match}; color: {c.text}; }}")
        marked = _rich(snippet, 'span class="m"', "span")
        doc.setHtml(f"<body>{marked}</body>")
        doc.setTextWidth(-1)
        painter.save()
        painter.translate(rect.topLeft())
        painter.setClipRect(QRect(0, 0, rect.width(), rect.height()))
        doc.drawContents(painter)
        painter.restore()

    def updateEditorGeometry(self, editor: QWidget, option: QStyleOptionViewItem,
                             index: QModelIndex) -> None:
        editor.setGeometry(_row_rect(option.rect, index, option.fontMetrics.height()))


class Sidebar(QWidget):
    open_requested = Signal(int, object)  # conversation id, message id or None
    match_opened = Signal(str)  # a search hit is being opened: the words it matched
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    export_requested = Signal(int, str, str)  # conversation id, its title, "markdown"/"json"
    search_changed = Signal(str)
    collapse_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sidebar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.collapseButton = _tool_button("collapseSidebarButton", "Hide the sidebar",
                                           "Hide the sidebar (Ctrl+B)")
        self.newChatButton = _tool_button("newChatButton", "New chat",
                                          "Start a new conversation (Ctrl+N)")
        self.searchBox = SearchBox(objectName="searchBox")
        self.searchBox.setPlaceholderText("Search all chats (Ctrl+F)")
        self.searchBox.setAccessibleName("Search conversations")
        self.searchBox.setClearButtonEnabled(True)
        self._searchIcon = QAction(self.searchBox)
        self.searchBox.addAction(self._searchIcon, QLineEdit.ActionPosition.LeadingPosition)
        self.conversationList = ConversationList(objectName="conversationList")
        self._shown: object = None  # what the list shows: rebuilt only when it changes
        self.conversationList.setAccessibleName("Conversations")
        self.conversationList.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.conversationList.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.conversationList.setWordWrap(False)
        self.conversationList.setFrameShape(QListWidget.Shape.NoFrame)
        self.conversationList.setItemDelegate(RowDelegate(self.conversationList))
        self.conversationList.setEditTriggers(QListWidget.EditTrigger.NoEditTriggers)
        # Rows are measured by the delegate (in Python): with 1,000 chats, laying them all
        # out at once held the window ~30 ms. In batches, between which input is handled.
        self.conversationList.setLayoutMode(QListWidget.LayoutMode.Batched)
        self.conversationList.setBatchSize(100)
        self.hint = PlainLabel(objectName="sidebarHint")
        self.hint.setWordWrap(True)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self.collapseButton)
        header.addStretch(1)
        header.addWidget(self.newChatButton)
        space = current().space
        layout = QVBoxLayout(self)
        layout.setContentsMargins(space.s, space.s, space.s, space.s)
        layout.setSpacing(space.s)
        layout.addLayout(header)
        for widget in (self.searchBox, self.hint, self.conversationList):
            layout.addWidget(widget)
        self.hint.hide()
        self.searchBox.textChanged.connect(self.search_changed)
        self.collapseButton.clicked.connect(self.collapse_requested)
        self.conversationList.itemActivated.connect(self._activated)
        self.conversationList.itemClicked.connect(self._activated)
        self.conversationList.itemChanged.connect(self._renamed)
        self.conversationList.delete_pressed.connect(self.delete_requested)
        self.conversationList.menu_requested.connect(self._show_menu)
        self.menu: QMenu | None = None  # the row menu last shown (tests look at it)
        self.restyle()

    def restyle(self) -> None:
        theme = current()
        c = theme.colors
        self.setStyleSheet(
            f"QWidget#sidebar {{ background: {c.sidebar}; }}"
            f" QListWidget#conversationList {{ background: {c.sidebar}; border: none;"
            " outline: none; }"
            f" QLineEdit#searchBox {{ background: {c.window}; color: {c.text};"
            f" border: 1px solid {c.faint}; border-radius: {theme.radius.button}px;"
            " padding: 4px 6px; }"
            f" QToolButton {{ border: none; border-radius: {theme.radius.button}px;"
            " padding: 5px; }"
            f" QToolButton:hover {{ background: {c.hover}; }}"
            f" QLabel#sidebarHint {{ color: {c.muted}; padding: 8px; }}")
        self.collapseButton.setIcon(icons.icon("sidebar", c.muted))
        self.newChatButton.setIcon(icons.icon("new-chat", c.text))
        self._searchIcon.setIcon(icons.icon("search", c.muted))

    def show_conversations(self, items: list[ConversationSummary], current_id: int | None,
                           now: float | None = None, streaming: int | None = None) -> None:
        """`streaming`: the chat a reply is being written in (marked with a dot)."""
        today = datetime.fromtimestamp(now if now is not None else time.time()).date()
        rows = []
        previous = None
        for c in items:
            group = date_group(c.updated_at, today)
            # A title may come from an import or a prompt: the tooltip shows it as it is.
            rows.append((c.id, None, c.title or "New conversation", plain_tooltip(c.title),
                         group if group != previous else None, None))
            previous = group
        self._fill(rows, current_id, editable=True, streaming=streaming)
        self.hint.setVisible(not items)
        self.hint.setText("Your conversations will appear here.")

    def show_hits(self, hits: list[SearchHit], current_id: int | None = None) -> None:
        rows = [(h.conversation_id, h.message_id, f"{h.title}\n{_plain(h.snippet)}",
                 _rich(h.snippet), None, h.snippet) for h in hits]
        self._fill(rows, current_id, editable=False)
        self.hint.setVisible(not hits)
        self.hint.setText("No message matches.")

    def _fill(self, rows: list[tuple[int, int | None, str, str, str | None, str | None]],
              current_id: int | None, *, editable: bool,
              streaming: int | None = None) -> None:
        view = self.conversationList
        shown = (rows, editable, streaming)
        if isinstance(self._shown, tuple) and self._shown[:2] == shown[:2]:
            # The same rows (another chat opened, a reply started or ended): the selection
            # and the streaming mark move; 500 rows are not made again (~20 ms).
            if streaming != self._shown[2]:
                self._mark_streaming(rows, self._shown[2], streaming)
            self._shown = shown
            self._select(current_id)
            return
        self._shown = shown
        view.blockSignals(True)
        view.clear()
        view.hovered = None
        for conversation_id, message_id, text, tip, group, snippet in rows:
            item = QListWidgetItem(text)
            item.setData(ID_ROLE, conversation_id)
            item.setData(MESSAGE_ROLE, message_id)
            item.setData(GROUP_ROLE, group)
            item.setData(SNIPPET_ROLE, snippet)
            item.setData(MATCH_ROLE, _first_match(snippet) if snippet else None)
            item.setToolTip(tip)
            if conversation_id == streaming:
                item.setData(STREAMING_ROLE, True)
                item.setToolTip("A reply is being written here")
            if editable:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            view.addItem(item)
            if conversation_id == current_id and view.currentItem() is None:
                view.setCurrentItem(item)
        view.blockSignals(False)

    def _mark_streaming(self, rows: list[tuple[int, int | None, str, str, str | None,
                                                str | None]],
                        before: int | None, now: int | None) -> None:
        view = self.conversationList
        tips = {row[0]: row[3] for row in rows}
        view.blockSignals(True)  # a changed item would read as an edit (a rename)
        try:
            for index in range(view.count()):
                item = view.item(index)
                conversation_id = item.data(ID_ROLE)
                if conversation_id == now:
                    item.setData(STREAMING_ROLE, True)
                    item.setToolTip("A reply is being written here")
                elif conversation_id == before:
                    item.setData(STREAMING_ROLE, None)
                    item.setToolTip(tips.get(conversation_id, ""))
        finally:
            view.blockSignals(False)
        view.viewport().update()

    def _select(self, conversation_id: int | None) -> None:
        view = self.conversationList
        view.blockSignals(True)
        try:
            for row in range(view.count()):
                if view.item(row).data(ID_ROLE) == conversation_id:
                    view.setCurrentRow(row)
                    return
            view.setCurrentRow(-1)
        finally:
            view.blockSignals(False)

    def _activated(self, item: QListWidgetItem) -> None:
        if match := item.data(MATCH_ROLE):
            self.match_opened.emit(match)
        self.open_requested.emit(item.data(ID_ROLE), item.data(MESSAGE_ROLE))

    def _renamed(self, item: QListWidgetItem) -> None:
        self._shown = None  # the row was edited in place: the next refresh rebuilds it
        self.rename_requested.emit(item.data(ID_ROLE), item.text())

    def _show_menu(self, item: QListWidgetItem, where: QPoint) -> None:
        """Rename, Export, Delete for THIS row (popup, not exec: a reply may stream)."""
        conversation_id = item.data(ID_ROLE)
        title = item.text().split("\n", 1)[0]
        c = current().colors
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction(icons.icon("rename", c.text), "Rename",
                       lambda: self._rename(conversation_id))
        export = menu.addMenu(icons.icon("export", c.text), "Export")
        export.addAction("As Markdown…",
                         lambda: self.export_requested.emit(conversation_id, title, "markdown"))
        export.addAction("As JSON…",
                         lambda: self.export_requested.emit(conversation_id, title, "json"))
        menu.addSeparator()
        menu.addAction(icons.icon("delete", c.danger), "Delete",
                       lambda: self.delete_requested.emit(conversation_id))
        if item.data(SNIPPET_ROLE):  # a search hit: no rename in place
            menu.actions()[0].setEnabled(False)
        self.menu = menu
        menu.popup(where)

    def _rename(self, conversation_id: int) -> None:
        view = self.conversationList
        for row in range(view.count()):
            item = view.item(row)
            if item.data(ID_ROLE) == conversation_id:
                view.editItem(item)
                return


def _tool_button(name: str, text: str, tip: str) -> QToolButton:
    return icons.icon_button(name, text, tip, size=20)


def _plain(snippet: str) -> str:
    return " ".join(snippet.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "").split())


def _first_match(snippet: str) -> str | None:
    start = snippet.find(HIGHLIGHT_START)
    end = snippet.find(HIGHLIGHT_END, start + 1)
    if start < 0 or end < 0:
        return None
    return snippet[start + len(HIGHLIGHT_START):end].strip() or None


def _rich(snippet: str, open_tag: str = "b", close_tag: str = "b") -> str:
    """The snippet escaped, its matches marked; always rich text (a snippet with no tag in it
    would otherwise be shown with its escapes)."""
    escaped = html.escape(" ".join(snippet.split()))
    marked = escaped.replace(HIGHLIGHT_START, f"<{open_tag}>").replace(
        HIGHLIGHT_END, f"</{close_tag}>")
    return f"<p>{marked}</p>"
