"""The whole app as a user meets it: a data dir the test owns, no server or key given unless
the test says so, restarts on the same data dir, and a choice of keychain.

`make_window` (conftest) always passes `--base-url` and a key; the first-run, settings and
key tests need the app exactly as a new user starts it, so they use `Launcher` (the `app`
fixture) instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keyring
import pytest
import qasync
from keyring.backend import KeyringBackend
from keyring.backends import fail
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication

from desktop_chat.app import close_window_services, create_main_window
from desktop_chat.core.config.settings import SETTINGS_FILE
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.settings_dialog import SettingsDialog
from tests.ui.conftest import ChatDriver, until, wait_until


class Launcher:
    def __init__(self, loop: qasync.QEventLoop, qtbot: Any, monkeypatch: pytest.MonkeyPatch,
                 data_dir: Path) -> None:
        self.loop = loop
        self._qtbot = qtbot
        self._monkeypatch = monkeypatch
        self.data_dir = data_dir
        self.windows: list[MainWindow] = []
        self.keychain: KeyringBackend = fail.Keyring()  # never the developer's own keychain
        keyring.set_keyring(self.keychain)

    def use_keychain(self, backend: KeyringBackend) -> KeyringBackend:
        """The keychain the app finds from its next start on."""
        self.keychain = backend
        keyring.set_keyring(backend)
        return backend

    @property
    def settings_path(self) -> Path:
        return self.data_dir / SETTINGS_FILE

    def write_settings(self, settings: Mapping[str, Any] | str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        text = settings if isinstance(settings, str) else json.dumps(settings)
        self.settings_path.write_text(text, encoding="utf-8")

    def stored_settings(self) -> dict[str, Any]:
        return json.loads(self.settings_path.read_text(encoding="utf-8"))

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> ChatDriver:
        """The app as `desktop-chat --data-dir D *args` starts it, with `env` added to the
        (cleaned) environment; returns once its start-up work (model list, discovery) ended."""
        for name, value in (env or {}).items():
            self._monkeypatch.setenv(name, value)
        window = create_main_window(["--data-dir", str(self.data_dir), *args])
        self._qtbot.addWidget(window)
        window.show()
        window.activateWindow()
        self.windows.append(window)
        chat = ChatDriver(window, self.loop)
        settle(chat)
        return chat

    def stop(self, chat: ChatDriver) -> None:
        """Quit as the user does: close the window, let the app finish its work."""
        window = chat.window
        window.close()
        self.loop.run_until_complete(close_window_services(window))
        self.windows.remove(window)

    def restart(self, chat: ChatDriver, *args: str) -> ChatDriver:
        self.stop(chat)
        return self.start(*args)

    def close_all(self) -> None:
        for window in list(self.windows):
            window.controller.stop()
            self.loop.run_until_complete(close_window_services(window))
        self.windows.clear()


def settle(chat: ChatDriver) -> None:
    """Wait (inside the loop) for the window's background work: model list, discovery."""
    connections = chat.window.connections
    if connections is not None:
        chat.loop.run_until_complete(connections.idle())


def press(chat: ChatDriver, button: QAbstractButton, timeout: float = 15.0) -> None:
    """Click a button that starts a check (it is disabled meanwhile), wait until it is done
    and the window's own work after it too."""

    async def scenario() -> None:
        button.click()
        await until(chat.loop, button.isEnabled, timeout)
        if chat.window.connections is not None:
            await chat.window.connections.idle()

    chat.loop.run_until_complete(scenario())
    assert QApplication.activeModalWidget() is None


def send_and_wait(chat: ChatDriver, text: str, timeout: float = 15.0) -> None:
    chat.send(text)
    chat.wait_for_reply(timeout)


def profile(pid: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": pid, "name": pid.capitalize(), "preset": "custom", "base_url": url,
            "model": "test-model", **extra}


def activate(chat: ChatDriver) -> None:
    """Offscreen, a closed dialog leaves no window active (a desktop gives it back)."""
    chat.window.activateWindow()
    wait_until(chat.loop, chat.window.isActiveWindow, 5)


def open_settings(chat: ChatDriver) -> SettingsDialog:
    activate(chat)
    QTest.keyClick(chat.window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    dialog = chat.window.setup.settingsDialog
    assert dialog is not None and dialog.isVisible()
    assert QApplication.activeModalWidget() in (None, dialog)  # open(), not a blocking exec()
    return dialog


def accept(chat: ChatDriver, dialog: SettingsDialog) -> None:
    dialog.okButton.click()
    assert dialog.errorLabel.isHidden(), dialog.errorLabel.text()
    assert not dialog.isVisible()
    settle(chat)


def snapshot(chat: ChatDriver, name: str) -> None:
    """Save a picture of the window for a person to look at, when SHOTS_DIR names a folder
    (e.g. SHOTS_DIR=/tmp/shots); otherwise nothing."""
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        chat.window.grab().save(str(Path(folder) / f"{name}.png"))
