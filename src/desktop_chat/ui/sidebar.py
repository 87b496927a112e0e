"""Conversations, newest first; search across all messages; rename and delete."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.history.records import HIGHLIGHT_END, HIGHLIGHT_START
from desktop_chat.core.history.store import ConversationSummary, SearchHit
from desktop_chat.ui.labels import PlainLabel, plain_tooltip

ID_ROLE = Qt.ItemDataRole.UserRole
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1


class ConversationList(QListWidget):
    delete_pressed = Signal(int)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        item = self.currentItem()
        if event.key() == Qt.Key.Key_Delete and item is not None:
            self.delete_pressed.emit(item.data(ID_ROLE))
        elif event.key() == Qt.Key.Key_F2 and item is not None:
            self.editItem(item)
        else:
            super().keyPressEvent(event)


class Sidebar(QWidget):
    open_requested = Signal(int, object)  # conversation id, message id or None
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    search_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.newChatButton = QPushButton("New chat", objectName="newChatButton")
        self.newChatButton.setAccessibleName("New chat")
        self.newChatButton.setToolTip("Start a new conversation (Ctrl+N)")
        self.searchBox = QLineEdit(objectName="searchBox")
        self.searchBox.setPlaceholderText("Search all chats (Ctrl+F)")
        self.searchBox.setAccessibleName("Search conversations")
        self.searchBox.setClearButtonEnabled(True)
        self.conversationList = ConversationList(objectName="conversationList")
        self.conversationList.setAccessibleName("Conversations")
        self.conversationList.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.conversationList.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.conversationList.setWordWrap(True)
        self.hint = PlainLabel(objectName="sidebarHint")
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 0, 8)
        for widget in (self.newChatButton, self.searchBox, self.conversationList, self.hint):
            layout.addWidget(widget)
        self.hint.hide()
        self.searchBox.textChanged.connect(self.search_changed)
        self.conversationList.itemActivated.connect(self._activated)
        self.conversationList.itemClicked.connect(self._activated)
        self.conversationList.itemChanged.connect(self._renamed)
        self.conversationList.delete_pressed.connect(self.delete_requested)

    def show_conversations(self, items: list[ConversationSummary], current: int | None) -> None:
        # A title may come from an import or a prompt: the tooltip shows it as it is.
        self._fill([(c.id, None, c.title or "New conversation", plain_tooltip(c.title))
                    for c in items], current, editable=True)
        self.hint.setVisible(not items)
        self.hint.setText("Your conversations will appear here.")

    def show_hits(self, hits: list[SearchHit]) -> None:
        rows = [(h.conversation_id, h.message_id, f"{h.title}\n{_plain(h.snippet)}",
                 _rich(h.snippet)) for h in hits]
        self._fill(rows, None, editable=False)
        self.hint.setVisible(not hits)
        self.hint.setText("No message matches.")

    def _fill(self, rows: list[tuple[int, int | None, str, str]], current: int | None,
              *, editable: bool) -> None:
        view = self.conversationList
        view.blockSignals(True)
        view.clear()
        for conversation_id, message_id, text, tip in rows:
            item = QListWidgetItem(text)
            item.setData(ID_ROLE, conversation_id)
            item.setData(MESSAGE_ROLE, message_id)
            item.setToolTip(tip)
            if editable:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            view.addItem(item)
            if conversation_id == current:
                view.setCurrentItem(item)
        view.blockSignals(False)

    def _activated(self, item: QListWidgetItem) -> None:
        self.open_requested.emit(item.data(ID_ROLE), item.data(MESSAGE_ROLE))

    def _renamed(self, item: QListWidgetItem) -> None:
        self.rename_requested.emit(item.data(ID_ROLE), item.text())


def _plain(snippet: str) -> str:
    return " ".join(snippet.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "").split())


def _rich(snippet: str) -> str:
    """The snippet escaped, its matches bold; always rich text (a snippet with no tag in it
    would otherwise be shown with its escapes)."""
    escaped = html.escape(snippet)
    marked = escaped.replace(HIGHLIGHT_START, "<b>").replace(HIGHLIGHT_END, "</b>")
    return f"<p>{marked}</p>"
