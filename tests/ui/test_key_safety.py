"""Keys never reach logs, the history database, exports, the settings file or crash dialogs:
two sessions that use a key for real (one kept in the keychain, one in the plain-text file
the user consented to) chat with it, meet a server that echoes it back in an auth error,
test the connection, export, and hit the crash handler; then every file the app wrote and
every message it showed is searched for the keys."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from keyring.backends import fail
from PySide6.QtWidgets import QMessageBox

from desktop_chat.core import logs
from desktop_chat.core.config.secrets import PLAINTEXT_FILE, SERVICE
from desktop_chat.ui.crash import install_excepthook
from tests.support.keyrings import MemoryKeyring
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.app_support import Launcher, accept, open_settings, press, send_and_wait, settle
from tests.ui.conftest import ChatDriver, until

# Shaped unlike the "sk-..." keys the log filter also catches by pattern: these can only be
# kept out by knowing them.
KEYCHAIN_KEY = "gsk_live_A1b2C3d4E5f6G7h8KEYCHAIN"
PLAINTEXT_KEY = "or-v1-Z9y8X7w6V5u4T3s2PLAINTEXT"


def echoing_401(key: str) -> Scenario:
    """What OpenAI does with a wrong key: it quotes (part of) it back."""
    return Scenario(status=401, error_body={"error": {
        "message": f"Incorrect API key provided: {key}. You can find your API key at "
                   "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})


class Session:
    """Uses one key every way the app can, keeping every text it showed."""

    def __init__(self, app: Launcher, server: LoopbackServer, exports: Path) -> None:
        self.app = app
        self.server = server
        self.exports = exports
        self.shown: list[str] = []

    def run(self, chat: ChatDriver, key: str, name: str,
            monkeypatch: pytest.MonkeyPatch) -> None:
        window = chat.window
        send_and_wait(chat, f"hello from {name}")
        assert self.server.replies_asked[-1].headers["authorization"] == f"Bearer {key}"
        assert "Hello world" in chat.transcript_text()

        self.server.push(echoing_401(key))
        send_and_wait(chat, "and again")
        shown = window.shown_error()  # a reply's error: in its card in the transcript
        self.shown.append(shown)
        assert "rejected the API key" in shown

        self.server.models_scenario = echoing_401(key)
        dialog = open_settings(chat)
        (form,) = dialog.providers.forms()

        async def test_connection() -> None:
            form.testButton.click()
            await until(chat.loop, form.testButton.isEnabled)

        chat.loop.run_until_complete(test_connection())
        self.shown.append(form.testResult.text())
        assert form.testResult.text().startswith("✗")
        dialog.reject()
        self.server.models_scenario = Scenario()

        self.exports.mkdir(exist_ok=True)
        assert window.fileMenu.export_to(self.exports / f"{name}.json", "json")
        assert window.fileMenu.export_to(self.exports / f"{name}.md", "markdown")
        assert window.fileMenu.export_to(self.exports / f"{name}-all.json", "all")

        monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
        install_excepthook(window, self.app.data_dir / "logs" / logs.LOG_FILE)
        try:
            raise RuntimeError(f"failed while using {key}")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
        box = window.findChild(QMessageBox, "errorDialog")
        assert box is not None and box.isVisible()
        self.shown += [box.windowTitle(), box.text(), box.informativeText(), box.detailedText()]
        box.close()
        self.shown.append(window.statusBar().currentMessage())
        self.shown.append(window.tokensLabel.text())


def files_holding(root: Path, secrets: list[str], skip: set[str] = frozenset()) -> list[str]:
    """Every file under `root` (binary included: SQLite, its -wal) that holds a secret."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in skip):
        data = path.read_bytes()
        found += [f"{path.relative_to(root)}: {secret}" for secret in secrets
                  if secret.encode() in data or secret.encode("utf-16-le") in data]
    return found


def test_keys_never_reach_logs_the_database_exports_or_dialogs(
        app: Launcher, server: LoopbackServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [KEYCHAIN_KEY, PLAINTEXT_KEY]
    session = Session(app, server, tmp_path / "exports")
    app.write_settings({"profiles": [{"id": "one", "name": "One", "preset": "custom",
                                      "base_url": server.base_url, "model": "test-model",
                                      "needs_key": True}]})

    # 1. a keychain: the key typed in Settings goes there
    keychain = app.use_keychain(MemoryKeyring())
    chat = app.start()
    dialog = open_settings(chat)
    dialog.providers.forms()[0].apiKey.setText(KEYCHAIN_KEY)
    accept(chat, dialog)
    session.run(chat, KEYCHAIN_KEY, "keychain", monkeypatch)
    assert isinstance(keychain, MemoryKeyring)
    assert keychain.entries == {(SERVICE, "one"): KEYCHAIN_KEY}
    assert files_holding(app.data_dir, keys) == []  # while running: the -wal file too
    app.stop(chat)

    # 2. no keychain: the user accepts the warning and keeps the key in plain text
    app.use_keychain(fail.Keyring())
    chat = app.start()
    dialog = open_settings(chat)
    dialog.providers.plaintext.setChecked(True)
    dialog.providers.plaintextConfirm.setChecked(True)
    dialog.providers.forms()[0].apiKey.setText(PLAINTEXT_KEY)
    accept(chat, dialog)
    session.run(chat, PLAINTEXT_KEY, "plaintext", monkeypatch)
    assert files_holding(app.data_dir, keys, skip={PLAINTEXT_FILE}) == []
    app.stop(chat)
    settle(chat)

    # what was written, and where
    assert files_holding(app.data_dir, keys, skip={PLAINTEXT_FILE}) == []
    assert files_holding(session.exports, keys) == []
    plaintext = app.data_dir / PLAINTEXT_FILE
    assert files_holding(app.data_dir, keys) == [f"{PLAINTEXT_FILE}: {PLAINTEXT_KEY}"]
    if os.name == "posix":
        assert stat.S_IMODE(plaintext.stat().st_mode) == 0o600
    shown = "\n".join(session.shown)
    assert not [key for key in keys if key in shown], shown
    # the search was not vacuous: the sessions happened and were recorded
    log_text = (app.data_dir / "logs" / logs.LOG_FILE).read_text(encoding="utf-8")
    assert "RuntimeError: failed while using [REDACTED]" in log_text
    assert "hello from plaintext" in (session.exports / "plaintext-all.json").read_text(
        encoding="utf-8")
    assert (app.data_dir / "history.sqlite3").stat().st_size > 0


def test_keys_only_checked_never_reach_the_log(
        app: Launcher, server: LoopbackServer) -> None:
    """A key typed for a check (welcome panel, "Test connection") and rejected is never
    stored, but the server's answer quoting it is logged: it must be redacted all the same."""
    welcome_key, dialog_key = "wrong-Q1w2E3r4T5y6U7i8WELCOME", "wrong-P0o9I8u7Y6t5DIALOG"
    server.models_scenario = echoing_401(welcome_key)
    chat = app.start()
    welcome = chat.window.setup.welcome
    welcome.customUrl.setText(server.base_url)
    welcome.customKey.setText(welcome_key)
    press(chat, welcome.connectButton)
    assert welcome.customStatus.text() == (
        "✗ The server rejected the API key. Open Settings to check it.")

    server.models_scenario = Scenario()
    welcome.customKey.clear()
    press(chat, welcome.connectButton)  # connected without a key
    server.models_scenario = echoing_401(dialog_key)
    dialog = open_settings(chat)
    (form,) = dialog.providers.forms()
    form.apiKey.setText(dialog_key)

    async def test_connection() -> None:
        form.testButton.click()
        await until(chat.loop, form.testButton.isEnabled)

    chat.loop.run_until_complete(test_connection())
    assert form.testResult.text().startswith("✗ The server rejected the API key")
    dialog.reject()  # the key was never kept
    settle(chat)
    log_text = (app.data_dir / "logs" / logs.LOG_FILE).read_text(encoding="utf-8")
    assert "HTTP 401" in log_text  # the answers were logged...
    assert files_holding(app.data_dir, [welcome_key, dialog_key]) == []  # ...without the keys
