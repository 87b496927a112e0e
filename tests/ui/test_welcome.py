"""The first-run panel: each way in (OpenAI key, local server, any compatible server, the
offline engine) ends in its signal, checked against a real loopback server with the real
client; failures are shown inline and nothing is modal."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication, QLabel, QPushButton, QWidget

from desktop_chat.core.config.providers import PRESETS
from desktop_chat.core.config.secrets import KeychainStatus
from desktop_chat.core.llm.discovery import Found, probe_local
from desktop_chat.ui.welcome import WelcomePanel
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import until
from tests.ui.test_errors import free_port
from tests.ui.test_settings_dialog import KEYCHAIN, NO_KEYCHAIN, list_models, unnamed_controls

KEY = "sk-welcome-0123456789SECRET"


class Panel:
    """The panel, what it emitted, and how a person uses it."""

    def __init__(self, panel: WelcomePanel, loop: qasync.QEventLoop) -> None:
        self.panel = panel
        self.loop = loop
        self.emitted: list[tuple[str, tuple[Any, ...]]] = []
        for signal in ("openai_key_accepted", "local_server_chosen", "custom_chosen",
                       "offline_chosen", "rescan_requested"):
            getattr(panel, signal).connect(
                lambda *args, s=signal: self.emitted.append((s, args)))

    def press(self, button: QPushButton) -> None:
        """Click, then wait (inside the loop) until the check it started has ended."""

        async def scenario() -> None:
            button.click()
            await until(self.loop, button.isEnabled)

        self.loop.run_until_complete(scenario())
        assert QApplication.activeModalWidget() is None


def check_openai(server: LoopbackServer) -> Callable[[str], Any]:
    async def check(key: str) -> list[str]:
        profile = dataclasses.replace(PRESETS["openai"].new_profile("openai"),
                                      base_url=server.base_url)
        return await list_models(profile, key)

    return check


async def check_server(base_url: str, key: str | None) -> list[str]:
    profile = dataclasses.replace(PRESETS["custom"].new_profile("custom"), base_url=base_url,
                                  needs_key=key is not None)
    return await list_models(profile, key)


async def _unused(*args: object) -> list[str]:
    raise AssertionError("no check expected")


@pytest.fixture
def make_panel(qtbot, qloop: qasync.QEventLoop) -> Iterator[Callable[..., Panel]]:
    panels: list[Panel] = []

    def make(check_key: Callable[..., Any] = _unused, check: Callable[..., Any] = _unused,
             keychain: KeychainStatus = KEYCHAIN, offline: bool = False) -> Panel:
        panel = WelcomePanel(check_key, check, keychain, offline_available=offline)
        qtbot.addWidget(panel)
        panel.show()
        panels.append(Panel(panel, qloop))
        return panels[-1]

    yield make
    for panel in panels:
        panel.panel.cancel_checks()


# -- (a) an OpenAI key -----------------------------------------------------------------------

def test_a_working_key_is_accepted_with_its_models(make_panel, server: LoopbackServer) -> None:
    server.models = ["gpt-4o-mini", "gpt-4o"]
    p = make_panel(check_key=check_openai(server))
    assert p.panel.objectName() == "welcomePanel"
    p.panel.openaiKey.setText(f" {KEY} ")
    p.press(p.panel.checkKeyButton)
    assert p.emitted == [("openai_key_accepted", (KEY, ["gpt-4o-mini", "gpt-4o"]))]  # as listed
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert p.panel.openaiStatus.text() == "✓ The key works (2 models available)."


def test_a_rejected_key_is_explained_inline(make_panel, server: LoopbackServer) -> None:
    server.models_scenario = Scenario(status=401)
    p = make_panel(check_key=check_openai(server))
    p.panel.openaiKey.setText(KEY)
    p.press(p.panel.checkKeyButton)
    assert p.emitted == []
    assert p.panel.openaiStatus.isVisible()
    assert p.panel.openaiStatus.text() == (
        "✗ The server rejected the API key. Open Settings to check it.")
    p.panel.openaiKey.setText("")
    p.panel.checkKeyButton.click()  # nothing to check: said at once, nothing sent
    assert p.panel.openaiStatus.text() == "✗ Paste your key first."
    assert len(server.requests) == 1


@pytest.mark.parametrize(("keychain", "expected"), [
    (KEYCHAIN, "Your key will be kept in the system keychain, never in a file."),
    (NO_KEYCHAIN, "No keychain here: a pasted key is kept until you quit."),
])
def test_the_panel_says_where_the_key_will_be_kept(make_panel, keychain, expected) -> None:
    label = make_panel(keychain=keychain).panel.keychainStatus
    assert label.isVisible() and label.text().startswith(expected)
    assert keychain.reason in label.toolTip()  # the details on demand


# -- (b) local servers -------------------------------------------------------------------------

def test_local_servers_found_on_loopback_can_be_used(
        make_panel, server: LoopbackServer, qloop: qasync.QEventLoop) -> None:
    p = make_panel()
    p.panel.show_probing(True)
    assert p.panel.localStatus.text() == "Looking for local servers…"
    assert not p.panel.rescanButton.isEnabled()
    closed = free_port()
    found = qloop.run_until_complete(probe_local(
        port_of=lambda preset: server.port if preset.key == "ollama" else closed))
    p.panel.show_probing(False)
    p.panel.show_found(found)
    rows = p.panel.serverList.findChildren(QPushButton, "useLocalServer")
    assert len(rows) == 1 and rows[0].accessibleName() == "Use Ollama"
    text = " ".join(label.text() for label in p.panel.serverList.findChildren(QLabel))
    assert "Ollama" in text and server.base_url in text and "2 models" in text
    assert p.panel.localStatus.isHidden()
    rows[0].click()
    assert p.emitted == [("local_server_chosen", (found[0],))]


def test_no_local_server_says_what_to_do(make_panel) -> None:
    p = make_panel()
    p.panel.show_found([Found(PRESETS["vllm"], "http://127.0.0.1:8000/v1", [])])
    p.panel.show_found([])  # a second look found nothing: the old rows go
    assert not [b for b in p.panel.serverList.findChildren(QPushButton) if b.isVisible()]
    assert p.panel.localStatus.text() == "None found. Start one of them, then press Look again."
    p.panel.rescanButton.click()
    assert p.emitted == [("rescan_requested", ())]


# -- (c) any OpenAI-compatible server --------------------------------------------------------------

def test_a_custom_server_connects_with_an_optional_key(
        make_panel, server: LoopbackServer) -> None:
    p = make_panel(check=check_server)
    p.panel.customUrl.setText(server.base_url)
    p.press(p.panel.connectButton)
    p.panel.customKey.setText(KEY)
    p.press(p.panel.connectButton)
    models = ["test-model", "other-model"]
    assert p.emitted == [("custom_chosen", (server.base_url, None, models)),
                         ("custom_chosen", (server.base_url, KEY, models))]
    assert KEY not in server.requests[0].headers.get("authorization", "")
    assert server.requests[1].headers["authorization"] == f"Bearer {KEY}"


def test_a_custom_server_problem_is_shown_inline(make_panel) -> None:
    p = make_panel(check=check_server)
    p.panel.customUrl.setText("ftp://localhost:8080")
    p.panel.connectButton.click()
    assert "must start with http:// or https://" in p.panel.customStatus.text()
    url = f"http://127.0.0.1:{free_port()}/v1"
    p.panel.customUrl.setText(url)
    p.press(p.panel.connectButton)
    text = p.panel.customStatus.text()
    assert text.startswith(f"✗ Could not connect to {url}") and p.emitted == []


# -- (d) the offline engine ------------------------------------------------------------------

def test_offline_entry_only_when_available_and_listed_first(make_panel) -> None:
    assert not make_panel().panel.offlineCard.isVisible()
    p = make_panel(offline=True)
    cards = [c for c in p.panel.findChildren(QWidget, "welcomeCard") if c.isVisible()]
    assert min(cards, key=lambda c: c.mapTo(p.panel, c.rect().topLeft()).y()) is (
        p.panel.offlineCard)
    p.panel.offlineButton.click()
    assert p.emitted == [("offline_chosen", ())]


def test_every_control_is_named_and_tab_follows_the_page(make_panel) -> None:
    p = make_panel(offline=True)
    p.panel.show_found([Found(PRESETS["ollama"], "http://127.0.0.1:11434/v1", ["llama3"])])
    assert unnamed_controls(p.panel) == []
    order, widget = [], p.panel.offlineButton
    for _ in range(40):
        if widget.isVisible() and widget.objectName():
            order.append(widget.objectName())
        widget = widget.nextInFocusChain()
    expected = ["useOfflineButton", "welcomeOpenaiKey", "checkKeyButton", "useLocalServer",
                "rescanButton", "customBaseUrl", "customKey", "connectButton"]
    assert [n for n in order if n in expected][:len(expected)] == expected
