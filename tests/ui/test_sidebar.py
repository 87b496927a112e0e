"""The sidebar: the row menu acts on its own row (issue #14, defect 4), date groups, search
highlight and Esc, collapsing; Export names the file after the chat (defect 12)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QStandardPaths, Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMenu

from desktop_chat.core.history.records import ConversationSummary
from desktop_chat.ui.file_menu import export_name
from desktop_chat.ui.sidebar import (
    GROUP_ROLE,
    ID_ROLE,
    OLDER,
    TODAY,
    WEEK,
    YESTERDAY,
    Sidebar,
    date_group,
)
from tests.support.openai_server import LoopbackServer
from tests.ui.conftest import ChatDriver, wait_until
from tests.ui.test_switching import exchange


def row_of(chat: ChatDriver, title: str) -> int:
    view = chat.window.conversationList
    return next(i for i in range(view.count()) if view.item(i).text() == title)


POPUP = pytest.mark.qt_log_ignore("This plugin does not support (raise|grabbing)")


def right_click(chat: ChatDriver, row: int) -> QMenu:
    view = chat.window.conversationList
    center = view.visualItemRect(view.item(row)).center()
    QTest.mousePress(view.viewport(), Qt.MouseButton.RightButton, pos=center)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.RightButton, pos=center)
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, center,
                              view.viewport().mapToGlobal(center))
    QApplication.sendEvent(view.viewport(), event)
    menu = chat.window.sidebar.menu
    assert menu is not None and menu.isVisible(), "no menu shown"
    return menu


def action(menu: QMenu, text: str):
    return next(a for a in menu.actions() if a.text() == text)


@POPUP
def test_right_click_menu_acts_on_that_chat(chat: ChatDriver, server: LoopbackServer) -> None:
    exchange(chat, server, "keep me", "kept answer")
    chat.window.newChatButton.click()
    exchange(chat, server, "on screen", "shown answer")
    view = chat.window.conversationList
    menu = right_click(chat, row_of(chat, "keep me"))
    assert [a.text() for a in menu.actions() if a.text()] == ["Rename", "Export", "Delete"]
    assert view.currentItem().text() == "on screen"  # not highlighted, not opened
    assert "shown answer" in chat.transcript_text()
    action(menu, "Delete").trigger()
    titles = [view.item(i).text() for i in range(view.count())]
    assert titles == ["on screen"]
    assert "shown answer" in chat.transcript_text()


@POPUP
def test_right_click_then_delete_key_deletes_the_chat_on_screen(
        chat: ChatDriver, server: LoopbackServer) -> None:
    exchange(chat, server, "other", "other answer")
    chat.window.newChatButton.click()
    exchange(chat, server, "on screen", "shown answer")
    right_click(chat, row_of(chat, "other")).close()
    view = chat.window.conversationList
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert [view.item(i).text() for i in range(view.count())] == ["other"]


@POPUP
def test_rename_from_the_menu_edits_that_row(chat: ChatDriver, server: LoopbackServer) -> None:
    exchange(chat, server, "first", "a1")
    chat.window.newChatButton.click()
    exchange(chat, server, "second", "a2")
    action(right_click(chat, row_of(chat, "first")), "Rename").trigger()
    view = chat.window.conversationList
    assert view.isPersistentEditorOpen(view.item(row_of(chat, "first"))) or (
        view.state() == view.State.EditingState)


def test_titles_are_grouped_by_date() -> None:
    today = date(2026, 12, 7)
    at = lambda d: datetime.combine(d, datetime.min.time()).timestamp() + 3600  # noqa: E731
    assert date_group(at(today), today) == TODAY
    assert date_group(at(today - timedelta(days=1)), today) == YESTERDAY
    assert date_group(at(today - timedelta(days=5)), today) == WEEK
    assert date_group(at(today - timedelta(days=30)), today) == OLDER
    sidebar = Sidebar()
    items = [ConversationSummary(i, f"chat {i}", at(today - timedelta(days=d)), 2)
             for i, d in enumerate([0, 0, 1, 3, 40])]
    sidebar.show_conversations(items, 1, now=at(today))
    view = sidebar.conversationList
    assert [view.item(i).data(GROUP_ROLE) for i in range(view.count())] == [
        TODAY, None, YESTERDAY, WEEK, OLDER]
    assert view.currentItem().data(ID_ROLE) == 1  # the open chat is marked
    assert view.count() == 5  # headings are drawn, not rows


def test_search_highlights_opens_at_the_match_and_esc_clears(
        chat: ChatDriver, server: LoopbackServer) -> None:
    long_answer = "\n\n".join(["filler paragraph"] * 200 + ["the capybara is here"])
    exchange(chat, server, "tell me", long_answer)
    chat.window.newChatButton.click()
    box = chat.window.searchBox
    box.setFocus()
    QTest.keyClicks(box, "capybara")
    view = chat.window.conversationList
    assert view.count() == 1
    rect = view.visualItemRect(view.item(0))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    wait_until(chat.loop, lambda: "capybara" in chat.window.transcript.textCursor().selectedText())
    bar = chat.window.transcript.verticalScrollBar()
    assert bar.value() > 0  # shown at the match, not at the top
    box.setFocus()
    QTest.keyClick(box, Qt.Key.Key_Escape)
    assert box.text() == ""
    assert view.count() == 1 and view.item(0).text() == "tell me"


def test_sidebar_collapses_and_comes_back(chat: ChatDriver) -> None:
    window = chat.window
    window.sidebar.collapseButton.click()
    assert not window.sidebar.isVisible() and window.expandSidebarButton.isVisible()
    QTest.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert window.sidebar.isVisible() and not window.expandSidebarButton.isVisible()


def test_export_suggests_the_title_in_documents_with_filters(
        chat: ChatDriver, server: LoopbackServer) -> None:
    exchange(chat, server, "Trip to Lisbon: what/where?", "Plan.")
    dialog = chat.window.fileMenu.ask_export("markdown")
    assert dialog is not None
    chosen = Path(dialog.selectedFiles()[0])
    assert chosen.name == "Trip to Lisbon what where.md"
    documents = QStandardPaths.writableLocation(
        QStandardPaths.StandardLocation.DocumentsLocation)
    expected = Path(documents) if Path(documents).is_dir() else Path.home()
    assert chosen.parent == expected
    assert dialog.nameFilters()[0] == "Markdown (*.md)"
    dialog.close()
    everything = chat.window.fileMenu.ask_export("all")
    assert everything is not None
    assert Path(everything.selectedFiles()[0]).name.startswith("desktop-chat conversations ")
    assert everything.nameFilters()[0] == "JSON (*.json)"
    everything.close()


def test_export_remembers_the_folder(chat: ChatDriver, server: LoopbackServer,
                                     tmp_path: Path) -> None:
    exchange(chat, server, "a chat", "answer")
    folder = tmp_path / "exports"
    folder.mkdir()
    assert chat.window.fileMenu.export_to(folder / "x.md", "markdown")
    dialog = chat.window.fileMenu.ask_export("json")
    assert dialog is not None and Path(dialog.selectedFiles()[0]) == folder / "a chat.json"
    dialog.close()


def test_export_name() -> None:
    assert export_name("json", "  ") == "conversation.json"
    assert export_name("markdown", 'a<b>:c"d|e?*') == "a b c d e.md"
    assert export_name("all", None, 0).startswith("desktop-chat conversations 19")


@POPUP
def test_hover_shows_the_more_button(chat: ChatDriver, server: LoopbackServer) -> None:
    exchange(chat, server, "hover me", "x")
    view = chat.window.conversationList
    rect = view.visualItemRect(view.item(0))
    QTest.mouseMove(view.viewport(), rect.center())
    view.hovered = view.item(0)  # offscreen mouse moves do not always arrive
    more = view.more_rect(view.item(0))
    assert rect.contains(more)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=more.center())
    menu = chat.window.sidebar.menu
    assert menu is not None and menu.isVisible()
    menu.close()
