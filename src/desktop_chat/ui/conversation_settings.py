"""One conversation's own model, system prompt and parameters, over the app-wide defaults.

Every value starts as "use the default" (None in `ConversationSettings`); only what the user
unticks is overridden. No I/O: the result is emitted for the caller to save.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.config.providers import ConversationSettings, GenerationParams
from desktop_chat.ui.labels import hint_label, name
from desktop_chat.ui.settings_params import ParamsEditor


class ConversationSettingsDialog(QDialog):
    # Not `accepted`: QDialog already has an `accepted()` signal of its own.
    settings_accepted = Signal(object)  # ConversationSettings

    def __init__(self, current: ConversationSettings, default_model: str,
                 known_models: Sequence[str], default_system_prompt: str = "",
                 default_params: GenerationParams | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conversationSettingsDialog")
        self.setWindowTitle("Conversation settings")
        self.setAccessibleName("Conversation settings")
        shown_model = default_model or "the profile's model"
        self.defaultModel = name(QCheckBox(f"Default ({shown_model})"), "Use the default model",
                                 "defaultModel")
        self.model = name(QComboBox(), "Model for this conversation", "conversationModel")
        self.model.setEditable(True)
        self.model.setMinimumContentsLength(24)
        self.model.addItems(list(known_models))
        self.model.setCurrentText(current.model or default_model)
        self.defaultPrompt = name(QCheckBox("Use the system prompt from Settings"),
                                  "Use the default system prompt", "defaultSystemPrompt")
        self.systemPrompt = name(QPlainTextEdit(), "System prompt for this conversation",
                                 "conversationSystemPrompt")
        self.systemPrompt.setTabChangesFocus(True)
        self.systemPrompt.setPlaceholderText("No system prompt")
        self.systemPrompt.setPlainText(current.system_prompt
                                       if current.system_prompt is not None
                                       else default_system_prompt)
        self.params = ParamsEditor("Default", name_prefix="conversation_")
        self.params.set_params(current.params or GenerationParams(), shown=default_params)
        self.defaultModel.toggled.connect(self.model.setDisabled)
        self.defaultPrompt.toggled.connect(self.systemPrompt.setDisabled)
        self.defaultModel.setChecked(current.model is None)
        self.model.setDisabled(current.model is None)
        self.defaultPrompt.setChecked(current.system_prompt is None)
        self.systemPrompt.setDisabled(current.system_prompt is None)
        self._lay_out()

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("Model:", self.defaultModel)
        form.addRow("", self.model)
        form.addRow("System prompt:", self.defaultPrompt)
        form.addRow("", self.systemPrompt)
        params = QGroupBox("Parameters")
        inner = QVBoxLayout(params)
        inner.addWidget(self.params)
        inner.addWidget(hint_label("Default: the value from Settings is used."))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.setObjectName("conversationSettingsButtons")
        self.okButton = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.okButton.setAccessibleName("Save conversation settings")
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName("Cancel")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(hint_label("These apply to this conversation only."))
        layout.addLayout(form)
        layout.addWidget(params)
        layout.addWidget(buttons)
        self.resize(520, 520)

    def result_settings(self) -> ConversationSettings:
        model = self.model.currentText().strip()
        params = self.params.params()
        return ConversationSettings(
            model=None if self.defaultModel.isChecked() or not model else model,
            system_prompt=None if self.defaultPrompt.isChecked()
            else self.systemPrompt.toPlainText(),
            params=None if params == GenerationParams() else params,
        )

    def accept(self) -> None:
        self.settings_accepted.emit(self.result_settings())
        super().accept()
