"""The form for one provider profile, with its key field and "Test connection".

The stored key is never shown or read here: the form only knows where it lives (`KeySource`)
and collects a newly typed key, or a request to forget the stored one, for the dialog to pass
on when the user presses OK.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.config.providers import (
    AZURE,
    ApiFlavour,
    Profile,
    base_url_problem,
    env_name_problem,
    format_headers,
    parse_headers,
    preset,
    with_scheme,
)
from desktop_chat.core.config.secrets import KeychainStatus, KeySource
from desktop_chat.core.engine.offline import (
    DEMO_FILE,
    INSTALL_HINT,
    demo_available,
    engine_available,
)
from desktop_chat.core.llm.discovery import find_api_root
from desktop_chat.core.llm.errors import ChatError
from desktop_chat.ui.demo_terms import demo_note, terms_button
from desktop_chat.ui.labels import hint_label, name, outcome_label, show_outcome
from desktop_chat.ui.settings_fields import Invalid, kept_value
from desktop_chat.ui.tasks import Tasks

log = logging.getLogger("desktop_chat.settings_dialog")

TestConnection = Callable[[Profile, str | None], Awaitable[list[str]]]
STORED = (KeySource.KEYCHAIN, KeySource.SESSION, KeySource.PLAINTEXT)
MODELS_SHOWN = 8
API_CHOICES = ((ApiFlavour.CHAT, "Chat Completions (every compatible server)"),
               (ApiFlavour.RESPONSES, "Responses (OpenAI)"))


def key_status(source: KeySource, key_env: str) -> str:
    return {
        KeySource.KEYCHAIN: "A key is stored in the system keychain.",
        KeySource.ENVIRONMENT: f"Using the key from ${key_env or 'the environment'}.",
        KeySource.SESSION: "A key is kept for this session only.",
        KeySource.PLAINTEXT: "A key is stored in a plain-text file on this computer.",
    }.get(source, "No key is set.")


class ProfileForm(QWidget):
    name_changed = Signal(str)

    def __init__(self, profile: Profile, key_source: KeySource, keychain: KeychainStatus,
                 test_connection: TestConnection, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.original = profile
        self._key_source = key_source
        self._keychain = keychain
        self._test_connection = test_connection
        self._forget = False
        self._models = profile.models
        self._tasks = Tasks(self)  # the connection test; what it fails to handle shows here
        self._tasks.failed.connect(lambda text: self._show_result(text, ok=False))
        self._build()
        self._load(profile)
        self._show_for_preset()

    # -- construction ---------------------------------------------------------------------

    def _build(self) -> None:
        self.nameEdit = name(QLineEdit(), "Profile name", "profileName")
        self.baseUrl = name(QLineEdit(), "Base URL", "baseUrl")
        self.baseUrlHint = hint_label()
        self.api = name(QComboBox(), "API", "apiFlavour",
                        "Chat Completions works with every OpenAI-compatible server.")
        for flavour, label in API_CHOICES:
            self.api.addItem(label, flavour)
        self.needsKey = name(QCheckBox("This server needs an API key"), "Needs an API key",
                             "needsKey")
        self.apiKey = name(QLineEdit(), "API key", "apiKey",
                           "The key is stored in the system keychain, never in the settings "
                           "file.")
        self.apiKey.setEchoMode(QLineEdit.EchoMode.Password)
        self.forgetKeyButton = name(QPushButton("Forget key"), "Forget the stored key",
                                    "forgetKeyButton")
        self.keyStatus = name(hint_label(), "Where the key is kept", "keyStatus")
        self.keyEnv = name(QLineEdit(), "Key environment variable", "keyEnv",
                           "Used when no key is stored, e.g. OPENAI_API_KEY.")
        self.keyEnv.setPlaceholderText("e.g. OPENAI_API_KEY")
        self.model = name(QComboBox(), "Default model", "profileModel")
        self.model.setEditable(True)
        self.model.setMinimumContentsLength(20)
        self.headers = name(QPlainTextEdit(), "Extra headers", "extraHeaders",
                            "Sent with every request. One \"Name: value\" per line.")
        self.headers.setPlaceholderText("Name: value  (one per line)")
        self.headers.setTabChangesFocus(True)
        self.headers.setMaximumHeight(self.headers.fontMetrics().lineSpacing() * 3 + 12)
        self.headers.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 14)
        self.azureVersion = name(QLineEdit(), "Azure API version", "azureApiVersion")
        self.azureDeployment = name(QLineEdit(), "Azure deployment", "azureDeployment",
                                    "Empty: the model name is used as the deployment.")
        self.azureDeployment.setPlaceholderText("Empty: same as the model")
        self.contextWindow = name(QSpinBox(minimum=0, maximum=10_000_000, singleStep=1024),
                                  "Context window in tokens", "contextWindow",
                                  "Older messages are left out of requests to fit. "
                                  "Unknown: nothing is left out.")
        self.contextWindow.setSpecialValueText("Unknown")
        self.contextWindow.setSuffix(" tokens")
        self.contextWindow.setGroupSeparatorShown(True)
        self.inputPrice = _price("Input price per million tokens", "inputPrice")
        self.outputPrice = _price("Output price per million tokens", "outputPrice")
        self.ggufPath = name(QLineEdit(), "GGUF model file", "ggufPath")
        self.ggufPath.setPlaceholderText("Empty: the tiny built-in demo model")
        self.ggufHint = hint_label()
        self.ggufButton = name(QPushButton("Browse…"), "Choose a GGUF file", "ggufBrowse")
        self.embeddings = name(QCheckBox("Search documents by meaning too (embeddings)"),
                               "Search documents with embeddings", "embeddingsOn",
                               "Long documents are searched by their words on this computer. "
                               "With this on, passages are also matched by meaning, with the "
                               "server's embeddings model; if it has none, words alone are "
                               "used.")
        self.embeddingModel = name(QLineEdit(), "Embeddings model", "embeddingModel",
                                   "The server's embeddings model, e.g. text-embedding-3-small "
                                   "or nomic-embed-text.")
        self.embeddingModel.setPlaceholderText("e.g. text-embedding-3-small")
        self.seesImages = name(QCheckBox("The model can see images"), "The model sees images",
                               "seesImages", "Scanned PDFs are then offered to it as page "
                               "images.")
        self.demoNote, self.termsButton = demo_note(), terms_button()
        self.testButton = name(QPushButton("Test connection"), "Test connection",
                               "testConnectionButton",
                               "Ask the server for its models with these settings.")
        self.testResult = name(outcome_label("testResult"), "Connection test result")
        self._lay_out()
        self.nameEdit.textChanged.connect(self.name_changed)
        self.keyEnv.textChanged.connect(self._show_key_status)
        self.apiKey.textChanged.connect(self._show_key_status)
        self.forgetKeyButton.clicked.connect(self._forget_key)
        self.ggufButton.clicked.connect(self._pick_gguf)
        self.ggufPath.textChanged.connect(self._show_demo)
        self.testButton.clicked.connect(self.test)
        self.needsKey.toggled.connect(self._show_key_rows)
        self.embeddings.toggled.connect(self.embeddingModel.setVisible)

    def _lay_out(self) -> None:
        form = self.form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Name:", self.nameEdit)
        self._url_row = _stacked(self.baseUrl, self.baseUrlHint)
        form.addRow("Base URL:", self._url_row)
        form.addRow("API:", self.api)
        self._gguf_row = _stacked(_row(self.ggufPath, self.ggufButton), self.ggufHint,
                                  self.demoNote, _row(self.termsButton, stretch=True))
        form.addRow("Model file:", self._gguf_row)
        form.addRow("", self.needsKey)
        self._key_row = _stacked(_row(self.apiKey, self.forgetKeyButton), self.keyStatus)
        form.addRow("API key:", self._key_row)
        form.addRow("Key variable:", self.keyEnv)
        form.addRow("Model:", self.model)
        form.addRow("Azure API version:", self.azureVersion)
        form.addRow("Deployment:", self.azureDeployment)
        form.addRow("Extra headers:", self.headers)
        form.addRow("Context window:", self.contextWindow)
        self._price_row = _row(QLabel("Input"), self.inputPrice, QLabel("Output"),
                               self.outputPrice)
        form.addRow("Price per 1M tokens:", self._price_row)
        self._documents_row = _stacked(self.embeddings, self.embeddingModel, self.seesImages)
        form.addRow("Documents:", self._documents_row)
        self._test_row = _row(self.testButton, stretch=True)
        form.addRow("", self._test_row)
        form.addRow("", self.testResult)
        outer = QVBoxLayout(self)
        outer.addLayout(form)
        outer.addStretch(1)

    def _show_key_rows(self) -> None:
        """A server that needs no key shows no key section (and, free as local servers are,
        no prices unless some were set)."""
        p = self.original
        keyed = self.needsKey.isChecked() and not p.is_offline
        for row in (self._key_row, self.keyEnv):
            self.form.setRowVisible(row, keyed)
        self.form.setRowVisible(self._price_row, not p.is_offline and (keyed or p.has_prices))

    def _load(self, p: Profile) -> None:
        self.nameEdit.setText(p.name)
        self.baseUrl.setText(p.base_url)
        self.api.setCurrentIndex(max(0, self.api.findData(p.api)))
        self.needsKey.setChecked(p.needs_key)
        self.keyEnv.setText(p.key_env)
        self.model.addItems(list(p.models))
        self.model.setCurrentText(p.model)
        self.headers.setPlainText(format_headers(p.extra_headers))
        self.azureVersion.setText(p.azure_api_version)
        self.azureDeployment.setText(p.azure_deployment)
        self.contextWindow.setValue(p.context_window)
        self.inputPrice.setValue(p.input_price)
        self.outputPrice.setValue(p.output_price)
        self.ggufPath.setText(p.gguf_path)
        self.embeddings.setChecked(p.embeddings)
        self.embeddingModel.setText(p.embedding_model)
        self.embeddingModel.setVisible(p.embeddings)
        self.seesImages.setChecked(p.sees_images)
        self._show_key_status()

    def _show_for_preset(self) -> None:
        p, kind = self.original, preset(self.original.preset)
        differs = kind.base_url and kind.base_url != p.base_url
        hint = kind.hint or (f"Default: {kind.base_url}" if differs else "")
        self.baseUrlHint.setText(hint)
        self.baseUrlHint.setVisible(bool(hint))
        missing = "" if engine_available() else f" Not installed yet: {INSTALL_HINT}"
        self.ggufHint.setText(kind.hint + missing if p.is_offline else "")
        azure = p.preset == AZURE or p.is_azure
        for row in (self.azureVersion, self.azureDeployment):
            self.form.setRowVisible(row, azure)
        for row in (self._url_row, self.api, self.needsKey, self.model, self.headers,
                    self._test_row, self.testResult, self._documents_row):
            self.form.setRowVisible(row, not p.is_offline)
        self.form.setRowVisible(self._gguf_row, p.is_offline)
        self._show_key_rows()
        self._show_demo()
        if azure:
            self.form.labelForField(self.model).setText("Model / deployment:")

    # -- reading --------------------------------------------------------------------------

    def profile(self) -> Profile:
        """The profile as edited; raises Invalid naming the first field to fix."""
        p = self.original
        label = self.nameEdit.text().strip()
        if not label:
            raise Invalid("Give the profile a name.", self.nameEdit)
        url = self.baseUrl.text().strip()
        if not p.is_offline:
            url = with_scheme(url)  # "127.0.0.1:8080": a local address, http://
            if problem := base_url_problem(url):
                raise Invalid(f"{label}: {problem}", self.baseUrl)
            if "YOUR-RESOURCE" in url:
                raise Invalid(f"{label}: put your Azure resource's name in place of "
                              "YOUR-RESOURCE in the base URL.", self.baseUrl)
        if problem := env_name_problem(self.keyEnv.text().strip()):
            raise Invalid(f"{label}: {problem}", self.keyEnv)
        try:
            headers = parse_headers(self.headers.toPlainText())
        except ValueError as exc:
            raise Invalid(f"{label}: {exc}", self.headers) from None
        version = self.azureVersion.text().strip()
        if self.form.isRowVisible(self.azureVersion) and not version:
            raise Invalid(f"{label}: Azure needs an API version, e.g. 2024-10-21.",
                          self.azureVersion)
        embedding_model = self.embeddingModel.text().strip()
        if self.embeddings.isChecked() and not embedding_model and not p.is_offline:
            raise Invalid(f"{label}: name the server's embeddings model (e.g. "
                          "text-embedding-3-small), or turn searching by meaning off.",
                          self.embeddingModel)
        return dataclasses.replace(
            p, name=label, base_url=url, api=ApiFlavour(self.api.currentData()),
            needs_key=self.needsKey.isChecked(), key_env=self.keyEnv.text().strip(),
            model=self.model.currentText().strip(),
            extra_headers=headers if headers != dict(p.extra_headers) else p.extra_headers,
            azure_api_version=version, azure_deployment=self.azureDeployment.text().strip(),
            context_window=self.contextWindow.value(),
            input_price=kept_value(self.inputPrice, p.input_price),
            output_price=kept_value(self.outputPrice, p.output_price),
            models=self._models, gguf_path=self.ggufPath.text().strip(),
            embeddings=self.embeddings.isChecked() and not p.is_offline,
            embedding_model=embedding_model, sees_images=self.seesImages.isChecked(),
        )

    def typed_key(self) -> str | None:
        return self.apiKey.text().strip() or None

    def key_change(self, where: KeySource) -> tuple[str, str | None, KeySource] | None:
        """(key_ref, new key, where to keep it), (key_ref, None, where it was) to forget it,
        or None when the key stays as it is."""
        if key := self.typed_key():
            return (self.original.key_ref, key, where)
        if self._forget:
            return (self.original.key_ref, None, self._key_source)
        return None

    @property
    def has_stored_key(self) -> bool:
        return self._key_source in STORED

    @property
    def key_source(self) -> KeySource:
        return self._key_source

    # -- actions --------------------------------------------------------------------------

    def _show_key_status(self) -> None:
        typed = bool(self.apiKey.text().strip())
        if typed:
            where = ("in the system keychain" if self._keychain.available
                     else "as chosen above")
            text = f"The new key is kept {where} when you press OK."
        elif self._forget:
            text = "The stored key will be forgotten when you press OK."
        else:
            text = key_status(self._key_source, self.keyEnv.text().strip())
        self.keyStatus.setText(text)
        self.forgetKeyButton.setVisible(self.has_stored_key)
        self.forgetKeyButton.setEnabled(not self._forget)
        self.apiKey.setPlaceholderText("Type a new key to replace it" if self.has_stored_key
                                       else "Paste the API key")

    def _forget_key(self) -> None:
        self._forget = True
        self.apiKey.clear()
        self._show_key_status()

    def _show_demo(self) -> None:
        """The demo model's label and terms while it is the one the profile runs."""
        path = self.ggufPath.text().strip()
        demo = demo_available() and (not path or Path(path).name == DEMO_FILE)
        self.demoNote.setVisible(demo)
        self.termsButton.setVisible(demo)

    def _pick_gguf(self) -> None:
        dialog = QFileDialog(self, "Choose a GGUF model file", self.ggufPath.text().strip(),
                             "GGUF models (*.gguf);;All files (*)")
        dialog.setObjectName("ggufDialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.ggufPath.setText)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()  # not exec(): no nested event loop while a reply may stream

    def test(self) -> None:
        try:
            profile = self.profile()
        except Invalid as exc:
            self._show_result(exc.message, ok=False)
            exc.widget.setFocus()
            return
        self.testButton.setEnabled(False)
        self._show_result(f"Connecting to {profile.base_url} …", ok=True)
        self._tasks.start(self._run_test(profile, self.typed_key()),
                         what="The connection test")

    async def _run_test(self, profile: Profile, key: str | None) -> None:
        try:
            url, models = await find_api_root(
                profile.base_url,
                lambda candidate: self._test_connection(
                    dataclasses.replace(profile, base_url=candidate), key))
            if url != profile.base_url and not profile.is_offline:
                self.baseUrl.setText(url)  # a bare host answered at /v1: keep that
        except ChatError as exc:
            self._show_result(exc.message, ok=False)
        except Exception as exc:  # the dialog never shows a traceback
            log.warning("connection test failed unexpectedly: %s", type(exc).__name__)
            self._show_result(f"The test failed unexpectedly ({type(exc).__name__}). "
                              "Check the base URL and try again.", ok=False)
        else:
            self._got_models(list(models))
        self.testButton.setEnabled(True)

    def _got_models(self, models: list[str]) -> None:
        self._models = tuple(models)
        current = self.model.currentText()
        self.model.clear()
        self.model.addItems(models)
        self.model.setCurrentText(current or (models[0] if models else ""))
        if not models:
            self._show_result("Connected, but the server lists no models. Type the model "
                              "name yourself.", ok=True)
            return
        shown = ", ".join(models[:MODELS_SHOWN])
        more = f" and {len(models) - MODELS_SHOWN} more" if len(models) > MODELS_SHOWN else ""
        noun = "model" if len(models) == 1 else "models"
        self._show_result(f"✓ Connected: {len(models)} {noun} — {shown}{more}.", ok=True)

    def _show_result(self, text: str, ok: bool) -> None:
        show_outcome(self.testResult, text, ok)

    def cancel_tasks(self) -> None:
        self._tasks.cancel_all()


def _price(accessible: str, object_name: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox(decimals=4, minimum=0.0, maximum=10_000.0, singleStep=0.05)
    box.setPrefix("$")
    box.setSpecialValueText("Unknown")
    name(box, accessible, object_name, "US dollars per million tokens; used to estimate "
         "the cost. Unknown: no cost is shown.")
    return box


def _row(*widgets: QWidget, stretch: bool = False) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 0 if isinstance(widget, QLabel | QPushButton) else 1)
    if stretch:
        layout.addStretch(1)
    return row


def _stacked(*widgets: QWidget) -> QWidget:
    column = QWidget()
    layout = QVBoxLayout(column)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    for widget in widgets:
        layout.addWidget(widget)
    return column
