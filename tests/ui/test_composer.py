"""The composer box (issue #14): it grows with its text up to ~40 % of the window, then
scrolls; Send becomes Stop while a reply streams (both keep their automation names); the
placeholder names the model; the paperclip opens a file dialog without blocking the loop."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog

from desktop_chat.ui.composer import MAX_WINDOW_SHARE
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, run_for


def test_the_composer_grows_then_scrolls(chat: ChatDriver) -> None:
    window = chat.window
    window.resize(900, 700)
    run_for(chat.loop, 0.05)
    one_line = window.composer.height()
    chat.type("line\n" * 3)
    run_for(chat.loop, 0.05)
    three_lines = window.composer.height()
    assert three_lines > one_line
    chat.type("more\n" * 80)
    run_for(chat.loop, 0.05)
    assert window.composer.height() <= window.height() * MAX_WINDOW_SHARE + 1
    assert window.composer.verticalScrollBar().maximum() > 0  # the rest scrolls
    window.composer.clear()
    run_for(chat.loop, 0.05)
    assert window.composer.height() == one_line


def test_send_becomes_stop_while_a_reply_streams(chat: ChatDriver,
                                                 server: LoopbackServer) -> None:
    window = chat.window
    assert window.sendButton.isVisible() and not window.stopButton.isVisible()
    assert not window.stopButton.isEnabled()
    server.push(Scenario(deltas=["tick "] * 40, pace=0.01))
    seen: list[tuple[bool, bool, bool]] = []
    chat.send("go")
    chat.when(window.stopButton.isEnabled,
              lambda: seen.append((window.stopButton.isVisible(), window.sendButton.isVisible(),
                                   window.sendButton.isEnabled())))
    assert seen == [(True, False, False)]
    assert window.sendButton.isVisible() and not window.stopButton.isVisible()
    assert window.composerBox.isAncestorOf(window.sendButton)
    assert window.composerBox.isAncestorOf(window.stopButton)


def test_placeholder_names_the_model(chat: ChatDriver) -> None:
    assert chat.window.composer.placeholderText() == "Message test-model"


def test_the_paperclip_opens_a_file_dialog(chat: ChatDriver) -> None:
    chat.window.composerBox.attachButton.click()
    dialogs = [d for d in chat.window.findChildren(QFileDialog) if d.isVisible()]
    assert len(dialogs) == 1  # open(), not exec(): the loop goes on (a reply may stream)
    dialogs[0].close()
