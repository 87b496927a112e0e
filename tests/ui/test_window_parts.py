"""The window in two parts (issue #18): `open_window` makes what the first frame shows from a
few modules; `finish_window` makes the rest, one step at a time in the app's own start, after
that frame. What the user does in between is kept: a prompt sent then is sent once the
window is whole, and a window that cannot be finished says so without losing the prompt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from desktop_chat import app as app_module
from tests.conftest import TEST_KEY
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def first_part(make_window: Callable[..., ChatDriver], qloop: qasync.QEventLoop, qtbot: object,
               tmp_path: Path, server: LoopbackServer,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., app_module.Opening]]:
    """`first_part(after_a_session=False)`: the app's first part, shown (after a session
    that left a conversation open, if asked); a window made whole is closed as the app
    closes it."""
    openings: list[app_module.Opening] = []

    def open_it(after_a_session: bool = False) -> app_module.Opening:
        if after_a_session:
            left_open(make_window, server)
        monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
        args = app_module.parse_args(["--data-dir", str(tmp_path / "data"), "--base-url",
                                      server.base_url, "--model", "test-model"])
        opening = app_module.open_window(args, os.environ)
        qtbot.addWidget(opening.window)  # type: ignore[attr-defined]
        opening.window.show()
        opening.window.activateWindow()
        openings.append(opening)
        return opening

    yield open_it
    for opening in openings:
        if opening.window.attached:
            qloop.run_until_complete(app_module.close_window_services(opening.window))


def left_open(make_window: Callable[..., ChatDriver], server: LoopbackServer) -> None:
    """A session that ends with a conversation open (the window remembers it on closing)."""
    chat = make_window()
    server.push(Scenario(deltas=["Old answer."]))
    chat.send("Old question")
    chat.wait_for_reply()
    chat.window.close()


def test_a_prompt_sent_before_the_window_is_whole_is_sent_once_it_is(
        first_part: Callable[..., app_module.Opening], qloop: qasync.QEventLoop,
        server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.push(Scenario(deltas=["Sent ", "once ", "it was whole."]))
    opening = first_part()
    window = opening.window
    assert window.composer.placeholderText() == "Message test-model"
    QTest.keyClicks(window.composer, "Hello early")
    QTest.keyClick(window.composer, Qt.Key.Key_Return)
    seen: list[tuple[bool, str]] = []  # at each step: whole yet, what the box holds
    finish = app_module.finish_window

    def watched(opening: app_module.Opening) -> Iterator[None]:
        for _ in finish(opening):
            seen.append((window.attached, window.composer.toPlainText()))
            yield

    monkeypatch.setattr(app_module, "finish_window", watched)

    async def start_and_answer() -> bool:  # as `main` does, within the running loop
        finished = await app_module.finish_in_turns(opening)
        await until(qloop, lambda: not window.controller.is_streaming
                    and "it was whole." in window.transcript.toPlainText())
        return finished

    assert qloop.run_until_complete(start_and_answer())
    steps_before = [text for attached, text in seen if not attached]
    assert len(steps_before) > len(app_module.WINDOW_MODULES)
    assert set(steps_before) == {"Hello early"}  # kept in the box meanwhile
    assert window.composer.toPlainText() == ""
    assert window.focusWidget() is window.composer  # typing goes on where it was
    asked = server.replies_asked
    assert len(asked) == 1 and asked[0].body["messages"][-1]["content"] == "Hello early"
    assert "Hello early" in window.transcript.toPlainText()
    # the rest of the window is there and wired: the sidebar lists the new chat
    assert window.conversationList.count() == 1
    assert [a.text() for a in window.menuBar().actions() if a.isVisible()] == [
        "&File", "&Settings", "&Tools"]


def test_a_window_that_cannot_be_finished_says_so_and_keeps_the_prompt(
        first_part: Callable[..., app_module.Opening], qloop: qasync.QEventLoop,
        server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_chat.ui import library

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug of ours")

    opening = first_part()
    monkeypatch.setattr(library.Library, "__init__", broken)
    window = opening.window
    QTest.keyClicks(window.composer, "Do not lose me")
    QTest.keyClick(window.composer, Qt.Key.Key_Return)
    assert qloop.run_until_complete(app_module.finish_in_turns(opening)) is False
    assert window.errorBanner.isVisibleTo(window)
    assert window.errorBanner.text() == (
        "⚠ Desktop Chat could not finish starting (RuntimeError: a bug of ours). The log has "
        "the details; please report it.")
    assert window.composer.toPlainText() == "Do not lose me"
    assert not window.attached
    assert not server.replies_asked


PROBE = r"""
import json, os, sys, tempfile
from desktop_chat.ui import import_hook
from PySide6.QtWidgets import QApplication
import_hook.take_out()
from desktop_chat import app

def ours():
    return {m for m in sys.modules if m.startswith("desktop_chat")}

first_part = ours()
qt_app = QApplication([sys.argv[0]])
loop = app.create_event_loop(qt_app)
args = app.parse_args(["--data-dir", tempfile.mkdtemp(), "--base-url", "http://127.0.0.1:9/v1"])
opening = app.open_window(args, os.environ)
first_frame = ours()
extra = {}
before = ours()
for name in app.load_steps():
    extra[name] = sorted(ours() - before - {name})
    before = ours()
for _ in app.finish_window(opening):
    pass
print(json.dumps({"first_part": sorted(first_frame), "extra": extra,
                  "unlisted": sorted(ours() - before), "attached": opening.window.attached}))
os._exit(0)
"""


def test_the_window_modules_load_after_the_first_frame_one_per_step() -> None:
    """`WINDOW_MODULES` keeps each step to one module of ours: the first part loads none of
    them, each loads no other of ours that is not listed before it, and the rest of the
    window needs none that is not listed (it would load inside a step, as one long pause).
    In a fresh process: the tests before this one have loaded everything."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               QT_QPA_PLATFORM="offscreen", OPENAI_API_KEY="sk-parts-test")
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["attached"]
    assert not set(report["first_part"]) & set(app_module.WINDOW_MODULES)
    assert {name: loaded for name, loaded in report["extra"].items() if loaded} == {}
    assert report["unlisted"] == []


def test_the_conversation_left_open_is_shown_once_the_window_is_whole(
        first_part: Callable[..., app_module.Opening], qloop: qasync.QEventLoop,
        server: LoopbackServer) -> None:
    opening = first_part(after_a_session=True)
    window = opening.window
    assert qloop.run_until_complete(app_module.finish_in_turns(opening))
    assert window.whole and opening.settled.is_set()
    text = window.transcript.toPlainText()
    assert "Old question" in text and "Old answer." in text
    assert window.conversationList.currentItem().text() == "Old question"


def test_a_prompt_sent_at_the_first_frame_starts_a_new_chat_the_old_one_is_not_reopened(
        first_part: Callable[..., app_module.Opening], qloop: qasync.QEventLoop,
        server: LoopbackServer) -> None:
    """The first frame shows an empty chat: a prompt sent then goes there, and the
    conversation left open is not opened over its reply afterwards."""
    opening = first_part(after_a_session=True)
    window = opening.window
    server.push(Scenario(deltas=["New ", "answer."]))
    QTest.keyClicks(window.composer, "A new question at once")
    QTest.keyClick(window.composer, Qt.Key.Key_Return)

    async def start_and_answer() -> None:
        assert await app_module.finish_in_turns(opening)
        await until(qloop, lambda: not window.controller.is_streaming
                    and "New answer." in window.transcript.toPlainText())

    qloop.run_until_complete(start_and_answer())
    text = window.transcript.toPlainText()
    assert "A new question at once" in text and "Old answer." not in text
    assert sorted(window.conversationList.item(i).text()
                  for i in range(window.conversationList.count())) == [
        "A new question at once", "Old question"]


def test_what_is_typed_before_the_conversation_left_open_is_shown_stays_in_the_box(
        first_part: Callable[..., app_module.Opening], qloop: qasync.QEventLoop,
        server: LoopbackServer) -> None:
    opening = first_part(after_a_session=True)
    window = opening.window
    QTest.keyClicks(window.composer, "Typed at once, not sent yet")
    assert qloop.run_until_complete(app_module.finish_in_turns(opening))
    assert "Old answer." in window.transcript.toPlainText()  # the old chat is shown
    assert window.composer.toPlainText() == "Typed at once, not sent yet"
    server.push(Scenario(deltas=["Answered in the old chat."]))
    QTest.keyClick(window.composer, Qt.Key.Key_Return)
    qloop.run_until_complete(until(qloop, lambda: not window.controller.is_streaming
                                   and "in the old chat" in window.transcript.toPlainText()))
    roles = [m["role"] for m in server.replies_asked[-1].body["messages"]]
    assert roles == ["user", "assistant", "user"]  # sent in the conversation shown
