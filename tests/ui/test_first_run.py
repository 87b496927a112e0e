"""First launch through the real window: the welcome panel in place of the transcript, each
way in (any server, a local server found on loopback, an OpenAI key) ending in a chat, and a
restart that goes straight to chatting. The loopback server stands in for every server,
OpenAI included (its preset's URL is pointed at it)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import socket
from collections.abc import Iterator
from types import MappingProxyType

import pytest
from keyring.backends import fail
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton

from desktop_chat.core.config import providers, settings
from desktop_chat.core.config.secrets import SERVICE
from tests.conftest import TEST_KEY
from tests.support.keyrings import MemoryKeyring
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.app_support import Launcher, press, send_and_wait, settle, snapshot
from tests.ui.conftest import ChatDriver
from tests.ui.test_errors import free_port

WELCOME_KEY = "sk-proj-welcomeKEY0123456789abcdefSECRET"


def shows_welcome(chat: ChatDriver) -> bool:
    welcome = chat.window.setup.welcome if chat.window.setup else None
    return (welcome is not None and welcome.objectName() == "welcomePanel"
            and chat.window.chatStack.currentWidget() is welcome and welcome.isVisible()
            and not chat.window.transcript.isVisible())


def shows_transcript(chat: ChatDriver) -> bool:
    return (chat.window.chatStack.currentWidget() is chat.window.transcript
            and chat.window.transcript.isVisible())


@pytest.fixture
def openai_is(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> LoopbackServer:
    """The OpenAI preset's base URL is the loopback server: the welcome panel's key path
    (check, profile, chat) runs for real without the network."""
    fake = dataclasses.replace(providers.PRESETS[providers.OPENAI], base_url=server.base_url)
    presets = MappingProxyType({**providers.PRESETS, providers.OPENAI: fake})
    for module in (providers, settings):
        monkeypatch.setattr(module, "PRESETS", presets)
    server.models = ["gpt-4o-mini", "gpt-4o"]
    return server


# -- the panel, and another server by URL -------------------------------------------------------

def test_first_run_shows_welcome_and_blocks_sending_keeping_the_text(
        app: Launcher, server: LoopbackServer) -> None:
    chat = app.start()
    assert shows_welcome(chat)
    assert not chat.window.modelPicker.isEnabled()  # nothing to pick from yet
    assert chat.window.modelLabel.text() == "Not connected"
    chat.send("hello there")
    assert chat.window.errorBanner.isVisible()
    assert "Choose how to connect first" in chat.window.errorBanner.text()
    assert chat.window.composer.toPlainText() == "hello there"
    assert chat.window.stopButton.isEnabled() is False
    assert server.requests == []
    snapshot(chat, "welcome")


def test_another_server_by_url_then_chat_then_restart_goes_straight_to_chatting(
        app: Launcher, server: LoopbackServer) -> None:
    chat = app.start()
    welcome = chat.window.setup.welcome
    chat.send("hello there")  # refused: nothing set up yet; the text stays
    welcome.customUrl.setText(server.base_url)
    press(chat, welcome.connectButton)
    assert shows_transcript(chat)
    assert chat.window.errorBanner.isHidden()
    stored = app.stored_settings()
    profile = next(p for p in stored["profiles"] if p["id"] == stored["active_profile"])
    assert profile["base_url"] == server.base_url
    assert chat.window.composer.toPlainText() == "hello there"
    chat.press_enter()
    chat.wait_for_reply()
    assert "Hello world" in chat.transcript_text()
    assert server.replies_asked[-1].body["messages"][-1]["content"] == "hello there"

    again = app.restart(chat)
    assert shows_transcript(again) and again.window.setup.welcome is None
    send_and_wait(again, "and again")
    assert again.window.errorBanner.isHidden()
    assert len(server.replies_asked) == 2
    assert again.window.conversationList.count() == 1  # the first chat is in the sidebar


def test_a_bad_url_in_the_panel_is_explained_and_nothing_is_saved(app: Launcher) -> None:
    chat = app.start()
    welcome = chat.window.setup.welcome
    url = f"http://127.0.0.1:{free_port()}/v1"
    welcome.customUrl.setText(url)
    press(chat, welcome.connectButton)
    assert shows_welcome(chat)
    assert welcome.customStatus.text().startswith(f"✗ Could not connect to {url}")
    assert not app.settings_path.exists()


def test_a_server_without_a_model_list_can_still_be_used(
        app: Launcher, server: LoopbackServer) -> None:
    server.models_scenario = Scenario(status=404)
    chat = app.start()
    welcome = chat.window.setup.welcome
    welcome.customUrl.setText(server.base_url)
    press(chat, welcome.connectButton)
    assert "gave no model list (HTTP 404)" in welcome.customStatus.text()
    assert shows_welcome(chat) and welcome.connectAnyway.isVisible()
    welcome.connectAnyway.click()
    settle(chat)
    assert shows_transcript(chat)
    assert "type the model name in the model box" in chat.window.errorBanner.text().lower()
    assert chat.window.modelLabel.text().startswith("Model: none chosen")
    picker = chat.window.modelPicker
    picker.setFocus()
    QTest.keyClicks(picker.lineEdit(), "my-model")
    send_and_wait(chat, "hi")
    assert server.replies_asked[-1].body["model"] == "my-model"
    assert app.stored_settings()["profiles"][0]["model"] == "my-model"


def test_key_and_base_url_from_the_environment_just_work(
        app: Launcher, server: LoopbackServer) -> None:
    chat = app.start(env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": server.base_url})
    assert shows_transcript(chat) and chat.window.setup.welcome is None
    assert chat.window.errorBanner.isHidden()
    send_and_wait(chat, "hi")
    asked = server.replies_asked[-1]
    assert asked.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert asked.body["model"] in server.models  # none was named: the server's first
    assert "Hello world" in chat.transcript_text()
    if app.settings_path.exists():  # this run's profile is never written, nor the key
        text = app.settings_path.read_text(encoding="utf-8")
        assert TEST_KEY not in text and server.base_url not in text


# -- a local server found on loopback -----------------------------------------------------------

def test_a_local_server_found_on_loopback_is_used_in_one_click(
        app: Launcher, server: LoopbackServer) -> None:
    chat = app.start()
    closed = free_port()
    chat.window.connections.port_of = (
        lambda preset: server.port if preset.key == "lmstudio" else closed)
    welcome = chat.window.setup.welcome
    press(chat, welcome.rescanButton)
    rows = [b for b in welcome.findChildren(QPushButton, "useLocalServer") if b.isVisible()]
    assert [b.accessibleName() for b in rows] == ["Use LM Studio"]
    rows[0].click()
    settle(chat)
    assert shows_transcript(chat)
    stored = app.stored_settings()
    (profile,) = stored["profiles"]
    assert (profile["preset"], profile["base_url"]) == ("lmstudio", server.base_url)
    assert profile["model"] in server.models
    send_and_wait(chat, "hello local")
    assert "Hello world" in chat.transcript_text()
    assert server.replies_asked[-1].body["model"] == profile["model"]


def _free(port: int) -> bool:
    with contextlib.closing(socket.socket()) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def on_a_real_port() -> Iterator[LoopbackServer]:
    port = next((p for p in (11434, 1234, 8080, 8000) if _free(p)), None)
    if port is None:
        pytest.skip("every local server port is taken on this machine")
    with LoopbackServer(port=port) as srv:
        yield srv


def test_discovery_at_start_finds_a_server_on_its_real_port(
        app: Launcher, on_a_real_port: LoopbackServer) -> None:
    chat = app.start()  # the probe runs in the background; start() waited for it
    welcome = chat.window.setup.welcome
    rows = [b for b in welcome.findChildren(QPushButton, "useLocalServer") if b.isVisible()]
    expected = next(p.label for p in providers.LOCAL_PRESETS
                    if p.local_port == on_a_real_port.port)
    assert f"Use {expected}" in [b.accessibleName() for b in rows]
    next(b for b in rows if b.accessibleName() == f"Use {expected}").click()
    settle(chat)
    send_and_wait(chat, "hello")
    assert on_a_real_port.replies_asked and "Hello world" in chat.transcript_text()


# -- an OpenAI key ------------------------------------------------------------------------------

def test_an_openai_key_in_the_environment_just_works(
        app: Launcher, openai_is: LoopbackServer) -> None:
    chat = app.start(env={"OPENAI_API_KEY": TEST_KEY})
    assert shows_transcript(chat) and chat.window.setup.welcome is None
    assert chat.window.errorBanner.isHidden()
    send_and_wait(chat, "hi")
    asked = openai_is.replies_asked[-1]
    assert asked.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert asked.body["model"] == "gpt-4o-mini"
    assert "Hello world" in chat.transcript_text()
    if app.settings_path.exists():
        assert TEST_KEY not in app.settings_path.read_text(encoding="utf-8")


def test_openai_key_without_a_keychain_is_kept_for_the_session_and_the_user_is_told(
        app: Launcher, openai_is: LoopbackServer) -> None:
    app.use_keychain(fail.Keyring())
    chat = app.start()
    welcome = chat.window.setup.welcome
    assert "kept until you quit" in welcome.keychainStatus.text()
    welcome.openaiKey.setText(WELCOME_KEY)
    press(chat, welcome.checkKeyButton)
    assert openai_is.requests[0].headers["authorization"] == f"Bearer {WELCOME_KEY}"
    assert shows_transcript(chat)
    assert chat.window.errorBanner.isVisible()  # told where the key is (not) kept
    assert "for this session only" in chat.window.errorBanner.text()
    send_and_wait(chat, "hi")
    assert openai_is.replies_asked[-1].headers["authorization"] == f"Bearer {WELCOME_KEY}"
    assert "Hello world" in chat.transcript_text()
    assert WELCOME_KEY not in app.settings_path.read_text(encoding="utf-8")
    assert (app.stored_settings()["profiles"][0]["preset"]) == "openai"

    again = app.restart(chat)  # the session is over: the key is gone, and the user is told
    assert again.window.errorBanner.isVisible()
    assert "key" in again.window.errorBanner.text().lower()
    asked = len(openai_is.replies_asked)
    again.send("still there?")
    again.wait_for_reply()
    assert len(openai_is.replies_asked) == asked  # nothing sent without a key
    assert again.window.composer.toPlainText() == "still there?"


def test_openai_key_goes_to_the_keychain_and_is_used_after_a_restart(
        app: Launcher, openai_is: LoopbackServer) -> None:
    keychain = app.use_keychain(MemoryKeyring())
    chat = app.start()
    welcome = chat.window.setup.welcome
    assert "system keychain" in welcome.keychainStatus.text()
    welcome.openaiKey.setText(WELCOME_KEY)
    press(chat, welcome.checkKeyButton)
    assert shows_transcript(chat) and chat.window.errorBanner.isHidden()
    assert isinstance(keychain, MemoryKeyring)
    assert keychain.entries == {(SERVICE, "openai"): WELCOME_KEY}
    assert WELCOME_KEY not in app.settings_path.read_text(encoding="utf-8")
    assert base64.b64encode(WELCOME_KEY.encode()).decode() not in (
        app.settings_path.read_text(encoding="utf-8"))
    assert chat.window.modelPicker.findText("gpt-4o") >= 0

    again = app.restart(chat)
    assert shows_transcript(again) and again.window.errorBanner.isHidden()
    send_and_wait(again, "hi")
    assert openai_is.replies_asked[-1].headers["authorization"] == f"Bearer {WELCOME_KEY}"
    assert "Hello world" in again.transcript_text()


class CountingKeyring(MemoryKeyring):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.reads.append(username)
        return super().get_password(service, username)


def test_start_up_reads_the_key_from_the_keychain_once(
        app: Launcher, openai_is: LoopbackServer) -> None:
    keychain = app.use_keychain(CountingKeyring())
    assert isinstance(keychain, CountingKeyring)
    keychain.set_password(SERVICE, "openai", WELCOME_KEY)
    app.write_settings({"profiles": [{"id": "openai", "name": "OpenAI", "preset": "openai",
                                      "base_url": openai_is.base_url, "model": "gpt-4o"}]})
    chat = app.start()
    assert keychain.reads.count("openai") == 1
    send_and_wait(chat, "hi")
    assert openai_is.replies_asked[-1].headers["authorization"] == f"Bearer {WELCOME_KEY}"
