"""Drive the real window through `create_main_window` on a qasync loop.

Waiting happens *inside* the qasync loop (`wait_until` runs a polling coroutine with
`run_until_complete`). pytest-qt's waitUntil/waitSignal spin a nested Qt loop, under which the
SDK fails with AsyncLibraryNotFoundError while a reply streams.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import keyring
import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest

from desktop_chat.app import (
    close_window_services,
    create_main_window,
)
from desktop_chat.ui.main_window import MainWindow
from tests.conftest import TEST_KEY
from tests.support.openai_server import LoopbackServer

if TYPE_CHECKING:
    from tests.ui.app_support import Launcher


async def until(
    loop: asyncio.AbstractEventLoop, predicate: Callable[[], bool], timeout: float = 15.0
) -> None:
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


def wait_until(
    loop: asyncio.AbstractEventLoop, predicate: Callable[[], bool], timeout: float = 15.0
) -> None:
    """Wait inside the qasync loop. Only for conditions reached when nothing streams any more:
    when `run_until_complete` returns, qasync processes pending Qt events once more *outside*
    the loop, and a reply streaming then fails with AsyncLibraryNotFoundError. To act in the
    middle of a reply use `ChatDriver.when(...)`, which keeps the loop running throughout."""
    loop.run_until_complete(until(loop, predicate, timeout))


def run_for(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    loop.run_until_complete(asyncio.sleep(seconds))


class ChatDriver:
    """What a person does with the window, as calls."""

    def __init__(self, window: MainWindow, loop: qasync.QEventLoop) -> None:
        self.window = window
        self.loop = loop

    def type(self, text: str) -> None:
        self.window.composer.insertPlainText(text)

    def press_enter(self) -> None:
        QTest.keyClick(self.window.composer, Qt.Key.Key_Return)

    def send(self, text: str) -> None:
        self.type(text)
        self.press_enter()

    def wait_until_streaming(self) -> None:
        wait_until(self.loop, self.window.stopButton.isEnabled)

    def wait_for_reply(self, timeout: float = 15.0) -> None:
        """The reply has ended, and the view has caught up with it (a long paint's text goes
        into the view in slices of a few ms; the last ones may follow the reply's end)."""
        window = self.window
        wait_until(self.loop, lambda: not window.stopButton.isEnabled()
                   and not window.transcript.backlog.busy, timeout)

    def when(
        self, predicate: Callable[[], bool], action: Callable[[], object], timeout: float = 15.0
    ) -> None:
        """Mid-reply: once `predicate` holds, do `action`; return when the reply has ended."""

        async def scenario() -> None:
            await until(self.loop, predicate, timeout)
            action()
            await until(self.loop, lambda: not self.window.stopButton.isEnabled(), timeout)

        self.loop.run_until_complete(scenario())
        self.wait_for_reply()

    def copy_last_reply(self) -> None:
        QTest.keyClick(
            self.window, Qt.Key.Key_C,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )

    def clipboard(self, mime_type: str = "text/plain") -> str:
        data = QGuiApplication.clipboard().mimeData()
        return bytes(data.data(mime_type).data()).decode("utf-8")

    def transcript_text(self) -> str:
        return self.window.transcript.toPlainText()


@pytest.fixture
def make_window(
    qloop: qasync.QEventLoop, qtbot, tmp_path: Path, server: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., ChatDriver]]:
    windows: list[MainWindow] = []

    def make(
        *extra: str,
        key: str | None = TEST_KEY,
        base_url: str | None = None,
        settings: dict[str, object] | None = None,
    ) -> ChatDriver:
        if key is not None:
            monkeypatch.setenv("OPENAI_API_KEY", key)
        data_dir = tmp_path / "data"
        if settings is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            (data_dir / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
        argv = ["--data-dir", str(data_dir), "--model", "test-model"]
        argv += ["--base-url", base_url or server.base_url, *extra]
        window = create_main_window(argv)
        qtbot.addWidget(window)
        window.show()
        window.activateWindow()
        windows.append(window)
        if window.connections is not None:  # the model list asked for at start-up
            qloop.run_until_complete(window.connections.idle())
            server.requests.clear()  # tests count the requests they cause themselves
        return ChatDriver(window, qloop)

    yield make
    for window in windows:
        window.controller.stop()
        qloop.run_until_complete(close_window_services(window))


@pytest.fixture
def chat(make_window: Callable[..., ChatDriver]) -> ChatDriver:
    return make_window()


@pytest.fixture
def app(qloop: qasync.QEventLoop, qtbot, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Launcher]:
    """The app as a new user starts it (see tests/ui/app_support.py); keyring's "no keychain"
    backend unless the test picks another with `app.use_keychain`."""
    from tests.ui.app_support import Launcher

    previous = keyring.get_keyring()
    launcher = Launcher(qloop, qtbot, monkeypatch, tmp_path / "data")
    yield launcher
    launcher.close_all()
    keyring.set_keyring(previous)
