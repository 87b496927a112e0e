"""Providers and settings through the real window: the Settings dialog opened from the window
(Ctrl+, / the menu, never exec()), its changes reaching the next request and surviving a
restart, a damaged settings file, the searchable model picker, the Responses API and context
trimming. Every server is a loopback server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from desktop_chat.core.config.secrets import SERVICE
from desktop_chat.core.config.settings import SETTINGS_FILE
from desktop_chat.ui import theme
from desktop_chat.ui.conversation_settings import ConversationSettingsDialog
from tests.support.keyrings import MemoryKeyring
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.app_support import (
    Launcher,
    accept,
    activate,
    open_settings,
    profile,
    send_and_wait,
    settle,
    snapshot,
)
from tests.ui.conftest import ChatDriver, wait_until
from tests.ui.test_history import click_row, sidebar_titles

SETTINGS_KEY = "sk-settings-0123456789abcdefSECRET"


@pytest.fixture
def second() -> Iterator[LoopbackServer]:
    with LoopbackServer(Scenario(deltas=["From", " B"])) as srv:
        yield srv


@pytest.fixture
def appearance_restored(qapp: QApplication) -> Iterator[None]:
    """Theme and font are application-wide: put them back for the tests that follow."""
    font = QGuiApplication.font()
    yield
    theme.set_preference(qapp, "system")
    qapp.setFont(font)


# -- the Settings dialog ------------------------------------------------------------------------

def test_base_url_changed_in_settings_takes_the_next_message(
        app: Launcher, server: LoopbackServer, second: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url)]})
    chat = app.start()
    send_and_wait(chat, "to A")
    dialog = open_settings(chat)
    (form,) = dialog.providers.forms()
    form.baseUrl.setText(second.base_url)
    accept(chat, dialog)
    send_and_wait(chat, "to B")
    assert [r.body["messages"][-1]["content"] for r in server.replies_asked] == ["to A"]
    assert [r.body["messages"][-1]["content"] for r in second.replies_asked] == ["to B"]
    assert "From B" in chat.transcript_text()
    assert app.stored_settings()["profiles"][0]["base_url"] == second.base_url


def test_switching_the_active_profile_from_the_menu(
        app: Launcher, server: LoopbackServer, second: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url),
                                     profile("two", second.base_url, model="other-model")],
                        "active_profile": "one"})
    chat = app.start()
    action = next(a for m in chat.window.menuBar().actions() for a in m.menu().actions()
                  if a.text() == "&Settings…")
    action.trigger()
    dialog = chat.window.setup.settingsDialog
    two = next(f for f in dialog.providers.forms() if f.original.id == "two")
    dialog.providers.select(two)
    dialog.providers.activeButton.click()
    accept(chat, dialog)
    assert chat.window.modelPicker.currentText() == "other-model"
    assert "Two" in chat.window.modelLabel.text()
    send_and_wait(chat, "hello two")
    assert server.replies_asked == []
    assert second.replies_asked[-1].body["model"] == "other-model"
    assert app.stored_settings()["active_profile"] == "two"


def test_system_prompt_and_temperature_from_settings_reach_the_request(
        app: Launcher, server: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url)]})
    chat = app.start()
    dialog = open_settings(chat)
    dialog.chat.systemPrompt.setPlainText("Answer like a pirate.")
    dialog.chat.params.default_box("temperature").setChecked(False)
    dialog.chat.params.temperature.setValue(0.3)
    accept(chat, dialog)
    send_and_wait(chat, "hi")
    body = server.replies_asked[-1].body
    assert body["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    assert body["temperature"] == pytest.approx(0.3)
    assert "top_p" not in body and "max_tokens" not in body


def test_cancel_changes_nothing(app: Launcher, server: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url)]})
    chat = app.start()
    before = app.settings_path.read_text(encoding="utf-8")
    dialog = open_settings(chat)
    dialog.chat.systemPrompt.setPlainText("Never mind.")
    dialog.reject()
    settle(chat)
    send_and_wait(chat, "hi")
    assert server.replies_asked[-1].body["messages"][0]["role"] == "user"
    assert app.settings_path.read_text(encoding="utf-8") == before


def test_removing_the_last_provider_brings_the_welcome_panel_back(
        app: Launcher, server: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url)]})
    chat = app.start()
    dialog = open_settings(chat)
    dialog.providers.remove_current()
    accept(chat, dialog)
    welcome = chat.window.setup.welcome
    assert welcome is not None and welcome.isVisible()
    assert not chat.window.modelPicker.isEnabled()
    chat.send("anyone?")
    assert "Choose how to connect first" in chat.window.errorBanner.text()
    assert server.replies_asked == [] and app.stored_settings()["profiles"] == []


def test_appearance_applies_and_every_setting_survives_a_restart(
        app: Launcher, server: LoopbackServer, appearance_restored: None) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url)]})
    chat = app.start()
    dialog = open_settings(chat)
    (form,) = dialog.providers.forms()
    form.contextWindow.setValue(32_768)
    form.inputPrice.setValue(0.5)
    form.headers.setPlainText("X-Team: blue")
    dialog.chat.systemPrompt.setPlainText("Be brief.")
    params = dialog.chat.params
    for key, widget, value in (("temperature", params.temperature, 0.4),
                               ("top_p", params.top_p, 0.9),
                               ("max_tokens", params.max_tokens, 512)):
        params.default_box(key).setChecked(False)
        widget.setValue(value)
    dialog.chat.presetName.setText("Short")
    dialog.chat.save_preset()
    dialog.appearance.theme.setCurrentIndex(dialog.appearance.theme.findData("dark"))
    dialog.appearance.fontSize.setValue(15)
    dialog.network.mode_button("none").setChecked(True)
    dialog.network.readTimeout.setValue(45.0)
    accept(chat, dialog)
    assert theme.is_dark(QGuiApplication.palette())
    assert QGuiApplication.font().pointSizeF() == 15
    assert chat.window.transcript.font().pointSizeF() == 15
    saved = chat.window.connections.settings
    send_and_wait(chat, "hi")
    asked = server.replies_asked[-1]
    snapshot(chat, "dark-after-settings")
    assert asked.headers["x-team"] == "blue"
    assert (asked.body["temperature"], asked.body["top_p"], asked.body["max_tokens"]) == (
        pytest.approx(0.4), pytest.approx(0.9), 512)

    theme.set_preference(QApplication.instance(), "system")  # as a fresh process starts
    again = app.restart(chat)
    assert again.window.connections.settings == saved
    assert theme.is_dark(QGuiApplication.palette())
    assert QGuiApplication.font().pointSizeF() == 15
    dialog = open_settings(again)
    assert dialog.chat.systemPrompt.toPlainText() == "Be brief."
    assert dialog.appearance.theme.currentData() == "dark"
    assert dialog.network.mode_button("none").isChecked()
    assert dialog.chat.presetList.currentText() == "Short"
    (form,) = dialog.providers.forms()
    assert form.contextWindow.value() == 32_768
    settle(again)  # the local-server probes Settings started, before the test ends
    dialog.reject()


def test_a_damaged_settings_file_is_set_aside_with_a_notice(
        app: Launcher, server: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url)]})
    chat = app.start()
    send_and_wait(chat, "remember me")
    app.stop(chat)
    app.write_settings('{"profiles": [ {"id": 3')  # cut off mid-write
    chat = app.start("--base-url", server.base_url)
    banner = chat.window.errorBanner
    assert banner.isVisible(), "the notice must survive the last chat reopening"
    assert "settings file was damaged" in banner.text()
    assert "remember me" in chat.transcript_text()  # the last chat reopened all the same
    backups = list(app.data_dir.glob(f"{SETTINGS_FILE}.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8").startswith(
        '{"profiles"')
    send_and_wait(chat, "still chatting")  # defaults (plus --base-url) work
    assert banner.isHidden()


def test_damaged_settings_without_a_server_falls_back_to_the_welcome_panel(
        app: Launcher) -> None:
    app.write_settings("\x00\x01 not json")
    chat = app.start()
    assert chat.window.errorBanner.isVisible()
    assert "settings file was damaged" in chat.window.errorBanner.text()
    assert chat.window.setup.welcome is not None and chat.window.setup.welcome.isVisible()


# -- the model picker ---------------------------------------------------------------------------

@pytest.mark.qt_log_ignore("This plugin does not support (raise|grabbing)")  # the popup
def test_model_picker_lists_the_servers_models_and_searches_by_substring(
        app: Launcher, server: LoopbackServer) -> None:
    server.models = ["llama-3.1-70b", "llama-3.1-8b", "qwen2.5-7b", "test-model"]
    app.write_settings({"profiles": [profile("one", server.base_url)]})
    chat = app.start()
    picker = chat.window.modelPicker
    assert [picker.itemText(i) for i in range(picker.count())] == server.models
    assert picker.currentText() == "test-model"
    completer = picker.completer()
    completer.setCompletionPrefix("70B")
    assert completer.completionCount() == 1 and completer.currentCompletion() == "llama-3.1-70b"
    completer.setCompletionPrefix("b")
    assert completer.completionCount() == 3
    picker.setFocus()
    picker.lineEdit().selectAll()
    QTest.keyClicks(picker.lineEdit(), "qwen2.5-7b")
    QTest.keyClick(picker.lineEdit(), Qt.Key.Key_Return)
    chat.window.composer.setFocus()
    assert picker.chosen == "qwen2.5-7b"
    send_and_wait(chat, "hi")
    assert server.replies_asked[-1].body["model"] == "qwen2.5-7b"
    stored = app.stored_settings()["profiles"][0]
    assert stored["model"] == "qwen2.5-7b" and stored["models"] == server.models

    again = app.restart(chat)
    assert again.window.modelPicker.currentText() == "qwen2.5-7b"
    send_and_wait(again, "hi again")
    assert server.replies_asked[-1].body["model"] == "qwen2.5-7b"


def test_model_is_remembered_per_profile(
        app: Launcher, server: LoopbackServer, second: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url),
                                     profile("two", second.base_url)],
                        "active_profile": "one"})
    chat = app.start()
    picker = chat.window.modelPicker
    picker.setCurrentIndex(picker.findText("other-model"))
    picker.textActivated.emit("other-model")  # as a click in the list does
    dialog = open_settings(chat)
    two = next(f for f in dialog.providers.forms() if f.original.id == "two")
    dialog.providers.select(two)
    dialog.providers.activeButton.click()
    accept(chat, dialog)
    assert picker.currentText() == "test-model"  # profile two's own model
    send_and_wait(chat, "to two")
    assert second.replies_asked[-1].body["model"] == "test-model"
    stored = {p["id"]: p["model"] for p in app.stored_settings()["profiles"]}
    assert stored == {"one": "other-model", "two": "test-model"}


def test_without_a_model_list_the_picker_takes_free_text(
        app: Launcher, server: LoopbackServer) -> None:
    server.models_scenario = Scenario(status=404)
    app.write_settings({"profiles": [profile("one", server.base_url, model="")]})
    chat = app.start()
    picker = chat.window.modelPicker
    assert picker.count() == 0 and picker.isEnabled()
    assert chat.window.errorBanner.isHidden()  # a missing list is not an error
    picker.setFocus()
    QTest.keyClicks(picker.lineEdit(), "my-local-model")
    chat.window.composer.setFocus()  # leaving the box confirms it
    send_and_wait(chat, "hi")
    assert server.replies_asked[-1].body["model"] == "my-local-model"
    assert "Hello world" in chat.transcript_text()
    assert app.stored_settings()["profiles"][0]["model"] == "my-local-model"


# -- API flavour and context window -------------------------------------------------------------

def test_a_responses_api_profile_streams_in_the_window(
        app: Launcher, server: LoopbackServer) -> None:
    server.default = Scenario(deltas=["Via", " responses"])
    app.write_settings({"profiles": [profile("one", server.base_url, api="responses")]})
    chat = app.start()
    send_and_wait(chat, "hi")
    (asked,) = server.replies_asked
    assert asked.path == "/v1/responses" and asked.body["stream"] is True
    assert "Via responses" in chat.transcript_text()
    assert chat.window.stateLabel.text() == "Ready"
    assert chat.window.errorBanner.isHidden()


def test_a_tiny_context_window_leaves_out_the_oldest_turns_and_says_so(
        app: Launcher, server: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url, context_window=300)],
                        "system_prompt": "Stay on topic."})
    chat = app.start()
    for n in range(4):
        send_and_wait(chat, f"question {n}: " + "word " * 60)
    body = server.replies_asked[-1].body
    assert body["messages"][0] == {"role": "system", "content": "Stay on topic."}
    sent = [m["content"] for m in body["messages"] if m["role"] == "user"]
    assert sent[-1].startswith("question 3") and not any(
        s.startswith("question 0") for s in sent)
    notice = chat.window.statusBar().currentMessage()
    assert "left out of the request" in notice, notice
    assert all(f"question {n}" in chat.transcript_text() for n in range(4))  # history kept


def test_a_key_typed_in_settings_is_used_for_the_next_message(
        app: Launcher, server: LoopbackServer) -> None:
    keychain = app.use_keychain(MemoryKeyring())
    app.write_settings({"profiles": [profile("one", server.base_url, needs_key=True)]})
    chat = app.start()
    assert "key" in chat.window.errorBanner.text().lower()  # said before the first send
    dialog = open_settings(chat)
    (form,) = dialog.providers.forms()
    form.apiKey.setText(SETTINGS_KEY)
    accept(chat, dialog)
    send_and_wait(chat, "hi")
    assert server.replies_asked[-1].headers["authorization"] == f"Bearer {SETTINGS_KEY}"
    assert chat.window.errorBanner.isHidden()
    assert keychain.entries == {(SERVICE, "one"): SETTINGS_KEY}
    assert SETTINGS_KEY not in app.settings_path.read_text(encoding="utf-8")


# -- a conversation's own settings --------------------------------------------------------------

def open_conversation_settings(chat: ChatDriver) -> ConversationSettingsDialog:
    activate(chat)
    QTest.keyClick(chat.window, Qt.Key.Key_Comma,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    dialog = chat.window.findChild(ConversationSettingsDialog)
    assert dialog is not None and dialog.isVisible()
    return dialog


def asked(server: LoopbackServer) -> tuple[str, str]:
    body = server.replies_asked[-1].body
    system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
    return body["model"], system


def test_conversation_settings_apply_to_that_conversation_only(
        app: Launcher, server: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url)],
                        "system_prompt": "Default prompt."})
    chat = app.start()
    send_and_wait(chat, "first chat")
    dialog = open_conversation_settings(chat)
    dialog.defaultModel.setChecked(False)
    dialog.model.setCurrentText("other-model")
    dialog.defaultPrompt.setChecked(False)
    dialog.systemPrompt.setPlainText("Speak French.")
    dialog.params.default_box("temperature").setChecked(False)
    dialog.params.temperature.setValue(1.5)
    dialog.okButton.click()
    assert chat.window.modelPicker.currentText() == "other-model"
    assert "other-model" in chat.window.modelLabel.text()
    send_and_wait(chat, "still the first chat")
    assert asked(server) == ("other-model", "Speak French.")
    assert server.replies_asked[-1].body["temperature"] == pytest.approx(1.5)

    chat.window.newChatButton.click()
    assert chat.window.modelPicker.currentText() == "test-model"
    send_and_wait(chat, "a new chat")
    assert asked(server) == ("test-model", "Default prompt.")
    assert "temperature" not in server.replies_asked[-1].body

    click_row(chat, sidebar_titles(chat).index("first chat"))
    wait_until(chat.loop, lambda: "still the first chat" in chat.transcript_text())
    assert chat.window.modelPicker.currentText() == "other-model"
    send_and_wait(chat, "back in the first chat")
    assert asked(server) == ("other-model", "Speak French.")
    assert app.stored_settings()["profiles"][0]["model"] == "test-model"  # profile untouched


def test_conversation_settings_set_before_the_first_message_are_kept(
        app: Launcher, server: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", server.base_url)]})
    chat = app.start()
    dialog = open_conversation_settings(chat)
    dialog.defaultPrompt.setChecked(False)
    dialog.systemPrompt.setPlainText("Only this chat.")
    dialog.okButton.click()
    send_and_wait(chat, "hello")
    assert asked(server) == ("test-model", "Only this chat.")
    again = app.restart(chat)  # reopens the last chat, with its own settings
    wait_until(again.loop, lambda: "hello" in again.transcript_text())
    send_and_wait(again, "after a restart")
    assert asked(server) == ("test-model", "Only this chat.")
