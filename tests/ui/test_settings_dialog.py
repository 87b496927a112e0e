"""The settings dialog and a conversation's own settings: what the user edits is what comes
out on OK, bad input keeps the dialog open with a message, Cancel changes nothing, and
"Test connection" talks to a real (loopback) server through the real client."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QFileDialog,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QRadioButton,
    QWidget,
)

from desktop_chat.core.config.providers import (
    PRESETS,
    ApiFlavour,
    ConversationSettings,
    Endpoint,
    GenerationParams,
    Profile,
    PromptPreset,
)
from desktop_chat.core.config.secrets import KeychainStatus, KeySource
from desktop_chat.core.config.settings import Settings
from desktop_chat.core.llm.client import ChatClient, RetryPolicy
from desktop_chat.core.llm.discovery import Found
from desktop_chat.core.llm.errors import ChatError, ErrorKind
from desktop_chat.ui.conversation_settings import ConversationSettingsDialog
from desktop_chat.ui.settings_dialog import SettingsDialog
from desktop_chat.ui.settings_profile_form import ProfileForm
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import until

KEYCHAIN = KeychainStatus(True, "Test Keyring")
NO_KEYCHAIN = KeychainStatus(False, "fail Keyring", "No keychain is available on this system, "
                             "so keys cannot be saved safely.")
NEW_KEY = "sk-new-0123456789SECRET"


def rich_settings() -> Settings:
    openai = dataclasses.replace(PRESETS["openai"].new_profile("openai"), input_price=0.15,
                                 output_price=0.6, models=("gpt-4o", "gpt-4o-mini"))
    azure = dataclasses.replace(PRESETS["azure"].new_profile("azure"),
                                base_url="https://contoso.openai.azure.com",
                                azure_deployment="chat", model="gpt-4o")
    router = dataclasses.replace(PRESETS["openrouter"].new_profile("openrouter"),
                                 api=ApiFlavour.RESPONSES)
    offline = dataclasses.replace(PRESETS["offline"].new_profile("offline"),
                                  gguf_path="/models/tiny.gguf")
    return Settings(
        profiles=(openai, azure, router, offline), active_profile="azure",
        system_prompt="You are concise.",
        params=GenerationParams(temperature=0.7, max_tokens=2048, reasoning_effort="low"),
        prompt_presets=(PromptPreset("Coder", "You write Python.", "gpt-4.1",
                                     GenerationParams(top_p=0.5)),),
        font_size=13, theme="dark", proxy_mode="manual", proxy_url="http://proxy.local:3128",
        connect_timeout_s=5.0, read_timeout_s=120.0, rate_limit_retries=3,
    )


class Opened:
    """A dialog plus what it emitted."""

    def __init__(self, dialog: SettingsDialog) -> None:
        self.dialog = dialog
        self.settings: list[Settings] = []
        self.keys: list[list[Any]] = []
        dialog.settings_accepted.connect(self.settings.append)
        dialog.keys_changed.connect(self.keys.append)

    def form(self, profile_id: str) -> ProfileForm:
        forms = self.dialog.providers.forms()
        form = next(f for f in forms if f.original.id == profile_id)
        self.dialog.providers.select(form)
        return form

    def ok(self) -> Settings:
        self.dialog.okButton.click()
        assert self.dialog.errorLabel.isHidden(), self.dialog.errorLabel.text()
        assert len(self.settings) == 1 and not self.dialog.isVisible()
        return self.settings[0]

    def refused(self) -> str:
        """OK was pressed and refused: the dialog stays, says why, emits nothing."""
        self.dialog.okButton.click()
        assert self.dialog.isVisible() and not self.settings and not self.keys
        assert self.dialog.errorLabel.isVisible()
        return self.dialog.errorLabel.text()


async def _unused(profile: Profile, key: str | None) -> list[str]:
    raise AssertionError("no connection test expected")


@pytest.fixture
def open_dialog(qtbot, qloop: qasync.QEventLoop) -> Iterator[Callable[..., Opened]]:
    def make(settings: Settings | None = None, keychain: KeychainStatus = KEYCHAIN,
             key_sources: Mapping[str, KeySource] | None = None,
             test_connection: Callable[..., Any] = _unused) -> Opened:
        dialog = SettingsDialog(settings or rich_settings(), keychain, key_sources or {},
                                test_connection)
        qtbot.addWidget(dialog)
        dialog.show()
        opened.append(Opened(dialog))
        return opened[-1]

    opened: list[Opened] = []  # kept alive for the whole test
    yield make


# -- round trip and per-tab edits -------------------------------------------------------------

def test_ok_without_changes_returns_the_same_settings(open_dialog) -> None:
    settings = rich_settings()
    opened = open_dialog(settings, key_sources={"openai": KeySource.KEYCHAIN})
    assert opened.dialog.objectName() == "settingsDialog"
    assert opened.ok() == settings
    assert opened.keys == [[]]


def test_defaults_round_trip_and_cancel_emits_nothing(open_dialog) -> None:
    assert open_dialog(Settings()).ok() == Settings()
    opened = open_dialog()
    opened.form("openai").nameEdit.setText("Changed")
    opened.dialog.reject()
    assert not opened.settings and not opened.keys and not opened.dialog.isVisible()


def test_provider_fields_reach_the_profile(open_dialog) -> None:
    opened = open_dialog()
    form = opened.form("openai")
    form.nameEdit.setText("Work")
    form.baseUrl.setText("https://gateway.example.com/v1 ")
    form.api.setCurrentIndex(form.api.findData(ApiFlavour.RESPONSES))
    form.keyEnv.setText("WORK_KEY")
    form.model.setCurrentText("gpt-4.1")
    form.headers.setPlainText("X-Team: research\n\nX-Trace:  on ")
    form.contextWindow.setValue(200_000)
    form.inputPrice.setValue(2.5)
    form.outputPrice.setValue(10)
    profile = opened.ok().profile("openai")
    assert profile == dataclasses.replace(
        rich_settings().profile("openai"), name="Work",
        base_url="https://gateway.example.com/v1", api=ApiFlavour.RESPONSES,
        key_env="WORK_KEY", model="gpt-4.1",
        extra_headers={"X-Team": "research", "X-Trace": "on"}, context_window=200_000,
        input_price=2.5, output_price=10.0)


def test_azure_fields_show_only_for_azure(open_dialog) -> None:
    opened = open_dialog()
    azure, openai = opened.form("azure"), opened.form("openai")
    assert azure.form.isRowVisible(azure.azureVersion)
    assert not openai.form.isRowVisible(openai.azureVersion)
    azure.azureVersion.setText("2025-01-01-preview")
    azure.azureDeployment.setText("")
    profile = opened.ok().profile("azure")
    assert (profile.azure_api_version, profile.azure_deployment) == ("2025-01-01-preview", "")


def test_offline_profile_picks_a_gguf_file_without_a_modal_loop(open_dialog, qtbot) -> None:
    opened = open_dialog()
    form = opened.form("offline")
    assert not form.form.isRowVisible(form.baseUrl.parentWidget())
    assert form.form.isRowVisible(form.ggufPath.parentWidget().parentWidget())
    form.ggufButton.click()  # returns at once: the file dialog is opened with .open()
    picker = form.findChild(QFileDialog, "ggufDialog")
    assert picker is not None and picker.isVisible()
    picker.fileSelected.emit("/models/other.gguf")
    picker.reject()
    assert opened.ok().profile("offline").gguf_path == "/models/other.gguf"


def test_profiles_are_added_from_presets_made_active_and_removed(open_dialog) -> None:
    opened = open_dialog(key_sources={"openrouter": KeySource.KEYCHAIN,
                                      "openai": KeySource.ENVIRONMENT})
    page = opened.dialog.providers
    menu = page.addButton.menu()
    groq = next(a for a in menu.actions() if a.text() == "Groq")
    groq.trigger()
    form = page.current_form()
    assert form is not None and form.original.preset == "groq"
    assert form.nameEdit.hasFocus() or form.nameEdit.selectedText() == "Groq"
    page.activeButton.click()
    assert page.profileList.currentItem().text() == "Groq  (active)"
    for profile_id in ("openrouter", "openai"):
        opened.form(profile_id)
        page.removeButton.click()
    settings = opened.ok()
    assert [p.id for p in settings.profiles] == ["azure", "offline", "groq"]
    assert settings.active_profile == "groq"
    assert settings.profile("groq") == PRESETS["groq"].new_profile("groq")
    # the removed profile's stored key goes too; a key from the environment is not ours
    assert opened.keys == [[("openrouter", None, KeySource.KEYCHAIN)]]


def test_local_servers_found_are_offered_first_in_add(open_dialog) -> None:
    opened = open_dialog()
    page = opened.dialog.providers
    menu = page.addButton.menu()
    presets_only = [a.text() for a in menu.actions()]
    found = [Found(PRESETS["ollama"], "http://127.0.0.1:11434/v1", ["qwen2.5:7b", "llama3.2"]),
             Found(PRESETS["vllm"], "http://127.0.0.1:8000/v1", [])]
    opened.dialog.show_found(found)
    texts = [a.text() for a in menu.actions()]
    assert texts[:3] == ["Found on this computer:",
                         "Ollama at http://127.0.0.1:11434/v1 (2 models)",
                         "vLLM at http://127.0.0.1:8000/v1 (no model list)"]
    assert texts[4:] == presets_only  # after a separator, the presets as before
    opened.dialog.show_found(found[:1])  # a second probe replaces the first one's entries
    assert [a.text() for a in menu.actions()][1:3] == [
        "Ollama at http://127.0.0.1:11434/v1 (2 models)", ""]
    next(a for a in menu.actions() if a.text().startswith("Ollama at")).trigger()
    settings = opened.ok()
    added = settings.profiles[-1]
    assert (added.preset, added.base_url, added.models, added.model) == (
        "ollama", "http://127.0.0.1:11434/v1", ("qwen2.5:7b", "llama3.2"), "qwen2.5:7b")


def test_no_active_choice_means_the_first_and_stays_unset(open_dialog) -> None:
    settings = dataclasses.replace(rich_settings(), active_profile="")
    opened = open_dialog(settings)
    page = opened.dialog.providers
    assert page.current_form().original.id == "openai"
    assert page.current_form().nameEdit.isVisible()
    assert page.profileList.item(0).text() == "OpenAI  (active)"
    assert opened.ok() == settings


def test_the_first_profile_added_becomes_active(open_dialog) -> None:
    opened = open_dialog(Settings())
    page = opened.dialog.providers
    assert page.emptyLabel.isVisible() and not page.removeButton.isEnabled()
    page.add_preset("ollama")
    page.add_preset("openai")
    settings = opened.ok()
    assert [p.id for p in settings.profiles] == ["ollama", "openai"]
    assert settings.active_profile == "ollama"


def test_removing_the_active_profile_activates_the_first(open_dialog) -> None:
    opened = open_dialog()
    opened.form("azure")
    opened.dialog.providers.removeButton.click()
    assert opened.ok().active_profile == "openai"


def test_chat_tab_prompt_params_and_presets(open_dialog) -> None:
    opened = open_dialog()
    chat = opened.dialog.chat
    chat.systemPrompt.setPlainText("Answer in French.")
    chat.params.default_box("temperature").setChecked(True)
    chat.params.default_box("top_p").setChecked(False)
    chat.params.top_p.setValue(0.9)
    chat.params.max_tokens.setValue(512)
    chat.params.reasoning.setCurrentIndex(chat.params.reasoning.findData("high"))
    chat.presetName.setText("French")
    chat.savePreset.click()
    assert chat.presetList.currentText() == "French"
    chat.presetList.setCurrentText("Coder")
    chat.applyPreset.click()  # its model goes to the active profile
    assert chat.systemPrompt.toPlainText() == "You write Python."
    assert opened.dialog.providers.active_model() == "gpt-4.1"
    chat.deletePreset.click()
    settings = opened.ok()
    french = GenerationParams(top_p=0.9, max_tokens=512, reasoning_effort="high")
    assert settings.system_prompt == "You write Python."
    assert settings.params == GenerationParams(top_p=0.5)
    assert settings.profile("azure").model == "gpt-4.1"
    assert settings.prompt_presets == (
        PromptPreset("French", "Answer in French.", "gpt-4o", french),)


def test_the_documents_share_is_a_chat_setting(open_dialog) -> None:
    opened = open_dialog()
    share = opened.dialog.chat.documentShare
    assert share.value() == 50
    share.setValue(25)
    assert opened.ok().document_share == 0.25


def test_appearance_and_network_tabs(open_dialog) -> None:
    opened = open_dialog()
    appearance, network = opened.dialog.appearance, opened.dialog.network
    appearance.fontSize.setValue(appearance.fontSize.minimum())  # "System default"
    assert appearance.fontSize.text() == "System default"
    appearance.theme.setCurrentIndex(appearance.theme.findData("light"))
    network.mode_button("none").setChecked(True)
    assert not network.proxyUrl.isEnabled()
    network.connectTimeout.setValue(3)
    network.readTimeout.setValue(45.5)
    settings = opened.ok()
    assert (settings.font_size, settings.theme) == (0, "light")
    assert (settings.proxy_mode, settings.proxy_url) == ("none", "http://proxy.local:3128")
    assert settings.proxy() == ""  # no proxy at all, not even the system's
    assert (settings.connect_timeout_s, settings.read_timeout_s) == (3.0, 45.5)
    assert settings.rate_limit_retries == 3  # not on any page: kept


# -- invalid input blocks OK --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        ("baseUrl", "ftp://api.example.com/v1", "must start with http:// or https://"),
        ("baseUrl", "http://host:99999/v1", "port in the base URL"),
        ("headers", "X-Good: 1\nno colon here", "Extra headers, line 2"),
        ("headers", "Bad Name: x", "Extra headers, line 1"),
        ("keyEnv", "MY-KEY", "environment variable"),
        ("nameEdit", "  ", "Give the profile a name."),
    ],
)
def test_bad_provider_input_blocks_ok(open_dialog, field: str, text: str, expected: str) -> None:
    opened = open_dialog()
    form = opened.form("openrouter")
    opened.dialog.tabs.setCurrentIndex(2)
    opened.form("openai")  # the faulty profile is not the one shown
    widget = getattr(form, field)
    widget.setPlainText(text) if isinstance(widget, QPlainTextEdit) else widget.setText(text)
    assert expected in opened.refused()
    assert opened.dialog.tabs.currentIndex() == 0
    assert opened.dialog.providers.current_form() is form  # shown, cursor in the field
    assert opened.dialog.focusWidget() is widget


def test_azure_placeholder_url_blocks_ok(open_dialog) -> None:
    opened = open_dialog(Settings(profiles=(PRESETS["azure"].new_profile("azure"),)))
    assert "YOUR-RESOURCE" in opened.refused()


@pytest.mark.parametrize("url", ["proxy.local:3128", "http://proxy.local", "socks5://p:1080",
                                 "http://:3128", ""])
def test_bad_proxy_blocks_ok_then_a_good_one_passes(open_dialog, url: str) -> None:
    opened = open_dialog()
    network = opened.dialog.network
    network.proxyUrl.setText(url)
    assert "http://host:port" in opened.refused()
    assert opened.dialog.tabs.currentWidget() is network
    network.proxyUrl.setText("https://proxy.example.com:8443")
    settings = opened.ok()
    assert settings.proxy() == "https://proxy.example.com:8443"


# -- keys -------------------------------------------------------------------------------------

def test_key_field_tells_where_the_key_lives(open_dialog) -> None:
    opened = open_dialog(key_sources={"openai": KeySource.KEYCHAIN,
                                      "openrouter": KeySource.ENVIRONMENT,
                                      "azure": KeySource.SESSION})
    texts = {pid: opened.form(pid).keyStatus.text() for pid in ("openai", "openrouter",
                                                                 "azure")}
    assert texts["openai"] == "A key is stored in the system keychain."
    assert texts["openrouter"] == "Using the key from $OPENROUTER_API_KEY."
    assert texts["azure"] == "A key is kept for this session only."
    assert open_dialog(Settings(profiles=(PRESETS["groq"].new_profile("groq"),))).form(
        "groq").keyStatus.text() == "No key is set."
    form = opened.form("openai")
    assert form.apiKey.echoMode() == QLineEdit.EchoMode.Password
    assert form.apiKey.text() == ""  # the stored key is never shown
    assert opened.form("openrouter").forgetKeyButton.isHidden()


def test_new_key_goes_to_the_keychain_and_forget_removes_one(open_dialog) -> None:
    opened = open_dialog(key_sources={"openai": KeySource.KEYCHAIN,
                                      "azure": KeySource.SESSION})
    opened.form("openrouter").apiKey.setText(f"  {NEW_KEY} ")
    assert "system keychain" in opened.form("openrouter").keyStatus.text()
    azure = opened.form("azure")
    azure.forgetKeyButton.click()
    assert azure.keyStatus.text() == "The stored key will be forgotten when you press OK."
    opened.ok()
    assert opened.keys == [[("azure", None, KeySource.SESSION),
                            ("openrouter", NEW_KEY, KeySource.KEYCHAIN)]]


def test_without_keychain_keys_stay_for_the_session(open_dialog) -> None:
    opened = open_dialog(keychain=NO_KEYCHAIN)
    page = opened.dialog.providers
    notice = page.findChild(QWidget, "keychainNotice")
    assert notice.isVisible() and "\n" not in notice.text()  # one line; details on demand
    details = page.findChild(QWidget, "keychainDetails")
    assert not details.isVisible()
    page.findChild(QWidget, "keychainDetailsButton").click()
    assert details.isVisible() and NO_KEYCHAIN.reason in details.text()
    assert page.sessionOnly.isChecked() and not page.plaintextConfirm.isEnabled()
    opened.form("openai").apiKey.setText(NEW_KEY)
    settings = opened.ok()
    assert opened.keys == [[("openai", NEW_KEY, KeySource.SESSION)]]
    assert settings.plaintext_keys_accepted is False


def test_plaintext_keys_need_the_warning_ticked(open_dialog) -> None:
    opened = open_dialog(keychain=NO_KEYCHAIN)
    page = opened.dialog.providers
    opened.form("openai").apiKey.setText(NEW_KEY)
    assert not page.plaintextConfirm.isVisible()
    page.plaintext.setChecked(True)
    assert page.plaintextConfirm.isVisible()
    assert page.plaintextConfirm.isEnabled() and not page.plaintextConfirm.isChecked()
    assert "tick the box" in opened.refused()
    page.plaintextConfirm.setChecked(True)
    settings = opened.ok()
    assert settings.plaintext_keys_accepted is True
    assert opened.keys == [[("openai", NEW_KEY, KeySource.PLAINTEXT)]]


def test_keychain_notice_absent_when_the_keychain_works(open_dialog) -> None:
    opened = open_dialog()
    page = opened.dialog.providers
    assert page.findChild(QWidget, "keychainNotice") is None
    assert page.findChild(QRadioButton) is None  # nothing to choose: keys go to the keychain


# -- test connection: the real client against the loopback server --------------------------------

async def list_models(profile: Profile, key: str | None) -> list[str]:
    client = ChatClient(Endpoint.for_profile(profile, key, read_timeout_s=5.0),
                        RetryPolicy(attempts=0))
    try:
        return await client.list_models()
    finally:
        await client.aclose()


def run_test(opened: Opened, form: ProfileForm, qloop: qasync.QEventLoop) -> str:
    async def scenario() -> None:
        form.testButton.click()
        assert not form.testButton.isEnabled()  # busy while the request runs
        await until(qloop, form.testButton.isEnabled)

    qloop.run_until_complete(scenario())
    return form.testResult.text()


def local_settings(server: LoopbackServer, **changes: Any) -> Settings:
    profile = dataclasses.replace(PRESETS["vllm"].new_profile("vllm"),
                                  base_url=server.base_url, **changes)
    return Settings(profiles=(profile,), active_profile="vllm")


def test_connection_lists_the_models(open_dialog, server: LoopbackServer, qloop) -> None:
    server.models = ["zeta", "alpha", "mid"]
    opened = open_dialog(local_settings(server), test_connection=list_models)
    form = opened.form("vllm")
    form.headers.setPlainText("X-Probe: yes")
    assert run_test(opened, form, qloop) == "✓ Connected: 3 models — zeta, alpha, mid."
    assert [form.model.itemText(i) for i in range(form.model.count())] == ["zeta", "alpha",
                                                                           "mid"]
    assert server.requests[-1].headers.get("x-probe") == "yes"  # the edited form was used
    profile = opened.ok().profile("vllm")
    # the server's first listed, not the alphabet's first (issue #14, defect 6)
    assert profile.models == ("zeta", "alpha", "mid") and profile.model == "zeta"


def test_connection_sends_the_typed_key_and_shows_the_exact_error(
        open_dialog, server: LoopbackServer, qloop, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.models_scenario = Scenario(status=401)
    opened = open_dialog(local_settings(server), test_connection=list_models)
    form = opened.form("vllm")
    form.apiKey.setText(NEW_KEY)
    assert run_test(opened, form, qloop) == (
        "✗ The server rejected the API key. Open Settings to check it.")
    assert server.requests[-1].headers.get("authorization") == f"Bearer {NEW_KEY}"
    assert NEW_KEY not in caplog.text


def test_connection_refused_names_the_url(open_dialog, qloop) -> None:
    from tests.ui.test_errors import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    profile = dataclasses.replace(PRESETS["custom"].new_profile("custom"), base_url=url)
    opened = open_dialog(Settings(profiles=(profile,)), test_connection=list_models)
    text = run_test(opened, opened.form("custom"), qloop)
    assert text.startswith("✗ ") and url in text


def test_connection_test_of_an_invalid_form_says_what_to_fix(open_dialog, qloop) -> None:
    calls: list[Profile] = []

    async def record(profile: Profile, key: str | None) -> list[str]:
        calls.append(profile)
        raise ChatError(ErrorKind.CONNECTION, "unreachable")

    opened = open_dialog(test_connection=record)
    form = opened.form("openai")
    form.baseUrl.setText("ftp://nonsense")
    form.testButton.click()
    assert "must start with http://" in form.testResult.text() and not calls
    form.baseUrl.setText("https://api.openai.com/v1")
    assert run_test(opened, form, qloop) == "✗ unreachable" and len(calls) == 1


def test_closing_the_dialog_stops_a_running_test(open_dialog, qloop) -> None:
    outcome: list[str] = []

    async def hang(profile: Profile, key: str | None) -> list[str]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return []

    opened = open_dialog(test_connection=hang)
    opened.form("openai").testButton.click()
    qloop.run_until_complete(asyncio.sleep(0.05))  # the request is under way
    opened.dialog.reject()
    qloop.run_until_complete(until(qloop, lambda: bool(outcome)))
    assert outcome == ["cancelled"] and not opened.settings


# -- accessibility and keyboard ---------------------------------------------------------------

CONTROLS = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QPlainTextEdit, QListWidget)


def unnamed_controls(root: QWidget) -> list[str]:
    missing = []
    for widget in root.findChildren(QWidget):
        inner = isinstance(widget.parentWidget(), QAbstractSpinBox | QComboBox)
        if isinstance(widget, CONTROLS) and not inner and not widget.accessibleName():
            missing.append(f"{type(widget).__name__} {widget.objectName()!r}")
    return missing


def test_every_control_has_an_accessible_name(open_dialog) -> None:
    opened = open_dialog(keychain=NO_KEYCHAIN)
    assert unnamed_controls(opened.dialog) == []


def test_tab_goes_from_the_list_through_the_form_to_ok(open_dialog) -> None:
    opened = open_dialog(keychain=NO_KEYCHAIN)
    start = widget = opened.dialog.tabs.tabBar()
    order: list[str] = []
    while (widget := widget.nextInFocusChain()) is not start:
        label = widget.objectName() or widget.accessibleName()
        if widget.isVisible() and widget.focusPolicy().value & 1 and label:
            order.append(label)
    # plaintextConfirm is hidden until a plain-text file is chosen (it does not apply before)
    expected = ["sessionOnly", "plaintextKeys", "profileList",
                "addProfileButton", "removeProfileButton", "makeActiveButton", "profileName",
                "baseUrl", "testConnectionButton"]
    assert [name for name in order if name in expected][:len(expected)] == expected, order
    ok = order.index("Save settings")  # after the form: OK, Cancel
    assert order.index("testConnectionButton") < ok and order[ok + 1] == "Cancel"


def test_tab_order_follows_the_form(open_dialog) -> None:
    form = open_dialog(key_sources={"openai": KeySource.KEYCHAIN}).form("openai")
    order: list[str] = []
    widget = form.nameEdit
    for _ in range(60):
        if widget.isVisibleTo(form) and widget.objectName() and widget.focusPolicy().value & 1:
            order.append(widget.objectName())
        widget = widget.nextInFocusChain()
    expected = ["profileName", "baseUrl", "apiFlavour", "needsKey", "apiKey", "forgetKeyButton",
                "keyEnv", "profileModel", "extraHeaders", "contextWindow", "inputPrice",
                "outputPrice", "testConnectionButton"]
    assert [name for name in order if name in expected][:len(expected)] == expected, order


# -- one conversation's settings ------------------------------------------------------------

def conversation_dialog(qtbot, current: ConversationSettings) -> tuple[
        ConversationSettingsDialog, list[ConversationSettings]]:
    dialog = ConversationSettingsDialog(current, "gpt-4o-mini", ["gpt-4o-mini", "gpt-4o"],
                                        "Be brief.", GenerationParams(temperature=0.3))
    qtbot.addWidget(dialog)
    dialog.show()
    emitted: list[ConversationSettings] = []
    dialog.settings_accepted.connect(emitted.append)
    return dialog, emitted


@pytest.mark.parametrize("current", [
    ConversationSettings(),
    ConversationSettings("gpt-4o", "", GenerationParams(max_tokens=100)),
    ConversationSettings(None, "Talk like a pirate.", None),
])
def test_conversation_settings_round_trip(qtbot, current: ConversationSettings) -> None:
    dialog, emitted = conversation_dialog(qtbot, current)
    assert dialog.objectName() == "conversationSettingsDialog"
    dialog.okButton.click()
    assert emitted == [current]


def test_conversation_overrides_are_edited(qtbot) -> None:
    dialog, emitted = conversation_dialog(qtbot, ConversationSettings())
    assert not dialog.model.isEnabled() and not dialog.systemPrompt.isEnabled()
    assert dialog.params.temperature.value() == 0.3  # the app-wide value, shown greyed
    dialog.defaultModel.setChecked(False)
    dialog.model.setCurrentText("gpt-4o")
    dialog.defaultPrompt.setChecked(False)
    dialog.systemPrompt.setPlainText("Only code.")
    dialog.params.default_box("temperature").setChecked(False)
    dialog.params.temperature.setValue(1.5)
    dialog.okButton.click()
    assert emitted == [ConversationSettings("gpt-4o", "Only code.",
                                            GenerationParams(temperature=1.5))]
    assert unnamed_controls(dialog) == []


def test_conversation_cancel_emits_nothing(qtbot) -> None:
    dialog, emitted = conversation_dialog(qtbot, ConversationSettings())
    dialog.defaultModel.setChecked(False)
    dialog.reject()
    assert emitted == []


def test_a_server_without_a_key_shows_no_key_section(open_dialog) -> None:
    """Issue #14: options that do not apply are hidden, not disabled."""
    opened = open_dialog()
    form = opened.form("openai")
    assert form.apiKey.isVisible() and form.keyEnv.isVisible()
    form.needsKey.setChecked(False)
    assert not form.apiKey.isVisible() and not form.keyEnv.isVisible()
    assert not form.inputPrice.isVisible() or form.original.has_prices
    form.needsKey.setChecked(True)
    assert form.apiKey.isVisible()


def test_pages_fit_at_800x600_without_scrolling(open_dialog) -> None:
    from PySide6.QtWidgets import QScrollArea

    opened = open_dialog(keychain=NO_KEYCHAIN)
    dialog = opened.dialog
    dialog.resize(800, 600)
    assert dialog.findChildren(QScrollArea) == []
    for index in range(dialog.tabs.count()):
        dialog.tabs.setCurrentIndex(index)
        page = dialog.tabs.currentWidget()
        assert page.minimumSizeHint().height() <= dialog.tabs.currentWidget().height() + 1, (
            dialog.tabs.tabText(index))
