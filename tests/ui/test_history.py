"""Conversations last: restart, branches (regenerate, edit & resend), search, rename, delete
with undo, long conversations opening with their latest messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolButton

from desktop_chat.core.history.store import HISTORY_FILE, Store
from desktop_chat.core.model.message import ReplyState, Role
from desktop_chat.core.render.actions import Action
from tests.support.history import add, begin_reply, progress
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, wait_until
from tests.ui.test_rendering import click_anchor


def sidebar_titles(chat: ChatDriver) -> list[str]:
    view = chat.window.conversationList
    return [view.item(i).text() for i in range(view.count())]


def click_row(chat: ChatDriver, row: int) -> None:
    view = chat.window.conversationList
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualItemRect(view.item(row)).center())


def test_conversation_survives_restart(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    chat = make_window()
    server.push(Scenario(deltas=["Remembered ", "answer."]))
    chat.send("Remember this")
    chat.wait_for_reply()
    chat.window.close()
    again = make_window()
    wait_until(again.loop, lambda: "Remembered answer." in again.transcript_text())
    assert "Remember this" in again.transcript_text()
    assert sidebar_titles(again) == ["Remember this"]
    server.push(Scenario(deltas=["Still here."]))
    again.send("And now?")
    again.wait_for_reply()
    roles = [m["role"] for m in server.requests[-1].body["messages"]]
    assert roles == ["user", "assistant", "user"]  # the old turn is context again


def test_a_prompt_sent_while_the_last_chat_is_still_being_restored_stays_on_screen(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    """At start the last conversation opens off-thread; a prompt sent before it arrives is
    the newer choice: its reply streams on screen (it used to be switched away from, and
    finished unseen in a chat not shown)."""
    chat = make_window()
    server.push(Scenario(deltas=["Old answer."]))
    chat.send("Old question")
    chat.wait_for_reply()
    chat.window.close()
    again = make_window()
    controller = again.window.controller
    old = controller.conversation_id
    assert old is not None  # restored
    controller.new_chat()
    controller.open_chat(old)  # as at start-up: the last chat, loading off-thread
    assert controller._opening is not None
    server.push(Scenario(deltas=["New ", "answer."]))
    again.send("A new question at once")
    again.wait_for_reply()
    text = again.transcript_text()
    assert "New answer." in text and "Old answer." not in text
    assert controller.last_reply_text() == "New answer."
    assert controller.conversation_id != old
    assert sorted(sidebar_titles(again)) == ["A new question at once", "Old question"]


def versions(chat: ChatDriver) -> list[str]:
    """The "n / m" of every message that has alternatives (its branch switcher)."""
    view = chat.window.transcript
    shown = []
    for row in view._rows:
        branch = view._specs(row, row is view.lastBar.row)[1]
        if branch is not None:
            shown.append(f"{branch.here} / {branch.count}")
    return shown


def offered(chat: ChatDriver, name: str) -> bool:
    """Whether the last reply's buttons (always shown) include `name`."""
    bar = chat.window.transcript.lastBar
    return not bar.isHidden() and bar.findChild(QToolButton, name) is not None


def test_regenerate_keeps_both_and_the_navigator_switches(
    chat: ChatDriver, server: LoopbackServer
) -> None:
    server.push(Scenario(deltas=["First version."]), Scenario(deltas=["Second version."]))
    chat.send("Write a line")
    chat.wait_for_reply()
    click_anchor(chat, Action.REGENERATE)
    chat.wait_for_reply()
    text = chat.transcript_text()
    assert "Second version." in text and "First version." not in text
    assert versions(chat) == ["2 / 2"]
    assert server.requests[-1].body["messages"] == [{"role": "user", "content": "Write a line"}]
    click_anchor(chat, Action.PREVIOUS)
    wait_until(chat.loop, lambda: "First version." in chat.transcript_text())
    assert versions(chat) == ["1 / 2"]
    chat.copy_last_reply()
    assert chat.clipboard() == "First version."


def test_edit_and_resend_makes_a_branch(chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["About cats."]), Scenario(deltas=["About dogs."]))
    chat.send("Tell me about cats")
    chat.wait_for_reply()
    click_anchor(chat, Action.EDIT, 0)
    editor = chat.window.transcript.editor
    assert editor.isVisible() and editor.box.toPlainText() == "Tell me about cats"
    editor.box.setPlainText("Tell me about dogs")
    editor.saveButton.click()
    chat.wait_for_reply()
    assert server.requests[-1].body["messages"] == [
        {"role": "user", "content": "Tell me about dogs"}]
    text = chat.transcript_text()
    assert "About dogs." in text and "About cats." not in text
    assert versions(chat) == ["2 / 2"]  # on the edited prompt
    click_anchor(chat, Action.PREVIOUS)
    wait_until(chat.loop, lambda: "About cats." in chat.transcript_text())


def test_search_finds_an_old_message_and_opens_it(chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["The capybara is the largest rodent."]),
                Scenario(deltas=["Unrelated."]))
    chat.send("Largest rodent?")
    chat.wait_for_reply()
    chat.window.controller.new_chat()
    chat.send("Something else")
    chat.wait_for_reply()
    QTest.keyClick(chat.window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert chat.window.searchBox.hasFocus()
    QTest.keyClicks(chat.window.searchBox, "capybara")
    assert chat.window.conversationList.count() == 1
    assert "capybara" in chat.window.conversationList.item(0).text()
    click_row(chat, 0)
    wait_until(chat.loop, lambda: "largest rodent" in chat.transcript_text())


def test_rename_and_delete_with_undo(chat: ChatDriver, server: LoopbackServer,
                                     tmp_path: Path) -> None:
    chat.send("Original title")
    chat.wait_for_reply()
    view = chat.window.conversationList
    view.item(0).setText("Renamed")  # what an in-place edit (F2) commits
    assert sidebar_titles(chat) == ["Renamed"]
    with Store(tmp_path / "data" / HISTORY_FILE) as store:
        assert [c.title for c in store.list_conversations()] == ["Renamed"]
    view.setCurrentRow(0)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert sidebar_titles(chat) == []
    assert chat.transcript_text().strip() == ""
    assert chat.window.undoButton.isVisible()
    chat.window.undoButton.click()
    assert sidebar_titles(chat) == ["Renamed"]
    wait_until(chat.loop, lambda: "Original title" in chat.transcript_text())


def test_failed_first_prompt_leaves_no_conversation(chat: ChatDriver, server, tmp_path) -> None:
    server.push(Scenario(status=500))
    chat.send("doomed")
    chat.wait_for_reply()
    assert sidebar_titles(chat) == []
    with Store(tmp_path / "data" / HISTORY_FILE) as store:
        assert store.list_conversations() == []


def test_long_conversation_opens_with_latest_and_loads_earlier(
    make_window: Callable[..., ChatDriver], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with Store(data / HISTORY_FILE) as store:
        cid = store.create_conversation("Long one")
        parent = None
        for i in range(120):
            role = Role.USER if i % 2 == 0 else Role.ASSISTANT
            parent = add(store, cid, parent, role, f"message number {i}")
    chat = make_window()
    click_row(chat, 0)
    wait_until(chat.loop, lambda: "message number 119" in chat.transcript_text())
    text = chat.transcript_text()
    assert "Show 80 earlier messages" in text
    assert "message number 79\n" not in text and "message number 80" in text
    assert len(chat.window.controller.session.messages) == 120  # all of it is context
    click_anchor(chat, Action.EARLIER)
    assert "message number 0\n" in chat.transcript_text()
    view = chat.window.transcript  # kept at the message that was first, not at the end
    bar = view.verticalScrollBar()
    assert not view.following and view.jumpButton.isVisibleTo(view)
    assert 0 < bar.value() < bar.maximum()


def test_a_conversation_of_long_messages_opens_with_a_few_screens_of_them(
    make_window: Callable[..., ChatDriver], tmp_path: Path
) -> None:
    """Opening renders the latest ~16,000 characters (at least two messages), not 40 long
    messages, and each "Show earlier" ~48,000 more; nothing is lost from the context."""
    data = tmp_path / "data"
    data.mkdir()
    with Store(data / HISTORY_FILE) as store:
        cid = store.create_conversation("Long messages")
        other = store.create_conversation("Short one")
        add(store, other, None, Role.USER, "hello")
        parent = None
        for i in range(40):
            role = Role.USER if i % 2 == 0 else Role.ASSISTANT
            parent = add(store, cid, parent, role, f"message number {i} " + "word " * 400)
    chat = make_window()
    click_row(chat, sidebar_titles(chat).index("Long messages"))
    wait_until(chat.loop, lambda: "message number 39" in chat.transcript_text())
    text = chat.transcript_text()
    assert "Show 33 earlier messages" in text  # 7 of ~2,000 characters each
    assert "message number 32 " not in text and "message number 33 " in text
    assert len(chat.window.controller.session.messages) == 40
    click_anchor(chat, Action.EARLIER)
    text = chat.transcript_text()
    assert "Show 10 earlier messages" in text  # 23 more
    assert "message number 9 " not in text and "message number 10 " in text
    click_anchor(chat, Action.EARLIER)
    assert "message number 0 " in chat.transcript_text()
    assert "earlier messages" not in chat.transcript_text()


def test_opening_a_chat_moves_the_selection_without_rebuilding_the_list(
    make_window: Callable[..., ChatDriver], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with Store(data / HISTORY_FILE) as store:
        for n in range(3):
            add(store, store.create_conversation(f"Chat {n}"), None, Role.USER, f"hello {n}")
    chat = make_window()
    view = chat.window.conversationList
    items = [view.item(row) for row in range(view.count())]
    for row in (2, 0, 1):
        click_row(chat, row)
        wanted = items[row].data(Qt.ItemDataRole.UserRole)
        wait_until(chat.loop, lambda wanted=wanted: chat.window.controller.conversation_id
                   == wanted)
        assert [view.item(r) for r in range(view.count())] == items  # the same rows
        assert view.currentRow() == row
    chat.window.library.rename(items[0].data(Qt.ItemDataRole.UserRole), "Renamed")
    wait_until(chat.loop, lambda: sidebar_titles(chat)[0] == "Renamed")  # changes still show


def test_interrupted_reply_from_a_crash_shows_as_interrupted(
    make_window: Callable[..., ChatDriver], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with Store(data / HISTORY_FILE) as store:
        cid = store.create_conversation("Crashed")
        prompt = add(store, cid, None, Role.USER, "question")
        reply = begin_reply(store, cid, prompt, "m")
        progress(store, reply, "half an answ")
    chat = make_window()  # a start after a crash
    click_row(chat, 0)
    wait_until(chat.loop, lambda: "half an answ" in chat.transcript_text())
    assert chat.window.controller.session.messages[-1].state is ReplyState.INTERRUPTED
    assert "The reply was interrupted: the app closed" in chat.transcript_text()
    assert offered(chat, "retryButton") and offered(chat, "continueButton")


def test_continue_and_retry_after_a_cut(chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["Part one, ", "part two"], disconnect_after_bytes=350),
                Scenario(deltas=[" and the rest."]), Scenario(deltas=["A fresh full answer."]))
    chat.send("Long answer please")
    chat.wait_for_reply()
    assert offered(chat, "continueButton")
    click_anchor(chat, Action.CONTINUE)
    chat.wait_for_reply()
    sent = server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"].startswith("Part one")  # the partial reply is context
    assert "and the rest." in chat.transcript_text()
    click_anchor(chat, Action.REGENERATE)  # now offered on the last (complete) reply
    chat.wait_for_reply()
    assert "A fresh full answer." in chat.transcript_text()


def test_export_then_import_round_trip(
    make_window: Callable[..., ChatDriver], server: LoopbackServer, tmp_path: Path
) -> None:
    chat = make_window()
    server.push(Scenario(deltas=["**Bold** answer."]))
    chat.send("Export me")
    chat.wait_for_reply()
    md_path, json_path = tmp_path / "chat.md", tmp_path / "all.json"
    assert chat.window.fileMenu.export_to(md_path, "markdown")
    assert "Export me" in md_path.read_text() and "**Bold** answer." in md_path.read_text()
    assert chat.window.fileMenu.export_to(json_path, "all")
    chat.window.library.delete(chat.window.library.conversations()[0].id)
    with Store(tmp_path / "data" / HISTORY_FILE) as store:
        store.purge_deleted()
    chat.window.fileMenu.import_from(json_path)
    wait_until(chat.loop, lambda: sidebar_titles(chat) == ["Export me"])
    assert "Imported 1 conversation(s) with 2 message(s)." in (
        chat.window.statusBar().currentMessage())


def test_bad_import_file_changes_nothing_and_says_why(chat: ChatDriver, tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"not": "an export"')
    chat.window.fileMenu.import_from(bad)
    wait_until(chat.loop, lambda: chat.window.errorBanner.isVisible())
    assert "Nothing was imported" in chat.window.errorBanner.text()
    assert sidebar_titles(chat) == []
    assert not chat.window.fileMenu.progress.isVisible()
