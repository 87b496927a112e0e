"""Switching chats: while a reply streams (it goes on in the background and is live when the
user comes back), and each chat keeps its own draft (issue #14, defects 5 and 9)."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from desktop_chat.ui.sidebar import STREAMING_ROLE
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, until, wait_until


def click_title(chat: ChatDriver, title: str) -> None:
    view = chat.window.conversationList
    rows = [i for i in range(view.count()) if view.item(i).text() == title]
    assert rows, f"no chat titled {title!r} in the sidebar"
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualItemRect(view.item(rows[0])).center())


def exchange(chat: ChatDriver, server: LoopbackServer, prompt: str, answer: str) -> None:
    server.push(Scenario(deltas=[answer]))
    chat.send(prompt)
    chat.wait_for_reply()


def test_switching_chats_while_a_reply_streams(chat: ChatDriver,
                                               server: LoopbackServer) -> None:
    exchange(chat, server, "old question", "old answer")
    chat.window.newChatButton.click()
    words = [f"w{i} " for i in range(120)]
    server.push(Scenario(deltas=words, pace=0.02))
    chat.send("streaming question")
    window, loop = chat.window, chat.loop
    view = window.conversationList

    async def scenario() -> None:
        await until(loop, lambda: "w3" in chat.transcript_text())
        assert window.newChatButton.isEnabled() and window.conversationList.isEnabled()
        click_title(chat, "old question")
        await until(loop, lambda: "old answer" in chat.transcript_text())
        assert window.stopButton.isEnabled()  # the reply goes on elsewhere
        await asyncio.sleep(0.15)
        assert "w" not in chat.transcript_text().replace("old answer", "")
        marked = [view.item(i).text() for i in range(view.count())
                  if view.item(i).data(STREAMING_ROLE)]
        assert marked == ["streaming question"]  # the chat being written in has a dot
        chat.type("for later")
        chat.press_enter()  # one reply at a time: refused in words, the draft kept
        assert "another chat" in window.statusBar().currentMessage()
        assert window.composer.toPlainText() == "for later"
        click_title(chat, "streaming question")
        await until(loop, lambda: "streaming question" in chat.transcript_text()
                    and "w1 " in chat.transcript_text())
        await until(loop, lambda: not window.stopButton.isEnabled())

    loop.run_until_complete(scenario())
    chat.wait_for_reply()
    assert "".join(words).strip() in chat.transcript_text()
    assert chat.transcript_text().count("w119") == 1
    assert "old answer" not in chat.transcript_text()
    store = window.controller.store
    assert store is not None
    conversation_id = window.controller.conversation_id
    assert conversation_id is not None
    reply = store.active_path(conversation_id)[-1]
    assert reply.content == "".join(words) and reply.state.value == "complete"


def test_a_reply_that_ends_in_another_chat_is_saved_there(chat: ChatDriver,
                                                          server: LoopbackServer) -> None:
    exchange(chat, server, "first", "first answer")
    chat.window.newChatButton.click()
    server.push(Scenario(deltas=["tail "] * 30, pace=0.01))
    chat.send("background")
    loop = chat.loop

    async def leave() -> None:
        await until(loop, lambda: "tail" in chat.transcript_text())
        click_title(chat, "first")
        await until(loop, lambda: not chat.window.stopButton.isEnabled())

    loop.run_until_complete(leave())
    assert "first answer" in chat.transcript_text() and "tail" not in chat.transcript_text()
    assert "background" in chat.window.statusBar().currentMessage()
    click_title(chat, "background")
    wait_until(loop, lambda: ("tail " * 30).strip() in chat.transcript_text())


def test_each_chat_keeps_its_own_draft(chat: ChatDriver, server: LoopbackServer) -> None:
    exchange(chat, server, "chat one", "answer one")
    chat.type("draft for one")
    chat.window.newChatButton.click()
    assert chat.window.composer.toPlainText() == ""
    chat.type("draft for a new chat")
    click_title(chat, "chat one")
    wait_until(chat.loop, lambda: "answer one" in chat.transcript_text())
    assert chat.window.composer.toPlainText() == "draft for one"
    chat.window.newChatButton.click()
    assert chat.window.composer.toPlainText() == "draft for a new chat"


def test_a_prompt_given_back_stays_with_its_chat(chat: ChatDriver,
                                                 server: LoopbackServer) -> None:
    exchange(chat, server, "chat one", "answer one")
    server.push(Scenario(status=400))
    chat.send("this one fails")
    chat.wait_for_reply()
    wait_until(chat.loop, lambda: chat.window.composer.toPlainText() == "this one fails")
    chat.window.newChatButton.click()
    assert chat.window.composer.toPlainText() == ""
    click_title(chat, "chat one")
    wait_until(chat.loop, lambda: "answer one" in chat.transcript_text())
    assert chat.window.composer.toPlainText() == "this one fails"


def test_the_streaming_mark_moves_without_rebuilding_the_list(chat: ChatDriver,
                                                              server: LoopbackServer) -> None:
    """A reply in the newest chat changes only its row's mark: the rows stay the same
    objects (a list of hundreds of chats is not made again at each start and end)."""
    exchange(chat, server, "older", "older answer")
    chat.window.newChatButton.click()
    exchange(chat, server, "newest", "newest answer")
    view = chat.window.conversationList
    items = [view.item(i) for i in range(view.count())]
    assert [i.text() for i in items] == ["newest", "older"]
    server.push(Scenario(deltas=[f"w{i} " for i in range(60)], pace=0.01))
    chat.send("again")
    loop = chat.loop
    loop.run_until_complete(until(loop, lambda: "w3" in chat.transcript_text()))
    assert [view.item(i) for i in range(view.count())] == items
    assert items[0].data(STREAMING_ROLE) and not items[1].data(STREAMING_ROLE)
    assert items[0].toolTip() == "A reply is being written here"
    chat.wait_for_reply()
    assert [view.item(i) for i in range(view.count())] == items
    assert not items[0].data(STREAMING_ROLE)
    assert "newest" in items[0].toolTip() and "being written" not in items[0].toolTip()
    assert chat.window.controller.store.conversation(  # no rename was written by the mark
        items[0].data(Qt.ItemDataRole.UserRole)).title == "newest"
