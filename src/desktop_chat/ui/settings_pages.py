"""The Chat, Appearance and Network pages of the settings dialog.

Each page loads from `Settings` and returns the fields it owns as a dict for
`dataclasses.replace`; a value the user must fix raises `Invalid`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.config.providers import PromptPreset
from desktop_chat.core.config.settings import (
    MAX_FONT_SIZE,
    MIN_FONT_SIZE,
    Settings,
    proxy_problem,
)
from desktop_chat.ui.labels import hint_label, name
from desktop_chat.ui.settings_fields import Invalid, kept_value
from desktop_chat.ui.settings_params import ParamsEditor

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))
PROXY_MODES = (("system", "Use the system's proxy settings"), ("none", "No proxy"),
               ("manual", "Manual proxy:"))
FONT_SYSTEM = MIN_FONT_SIZE - 1  # the spin box's lowest value reads "System default" and means 0


class ChatPage(QWidget):
    """System prompt, default parameters and saved prompt presets."""

    def __init__(self, settings: Settings, current_model: Callable[[], str],
                 apply_model: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._current_model = current_model
        self._apply_model = apply_model
        self._presets = list(settings.prompt_presets)
        self.systemPrompt = name(QPlainTextEdit(), "System prompt", "systemPrompt",
                                 "Sent at the start of every new conversation.")
        self.systemPrompt.setPlaceholderText("e.g. You are a concise assistant.")
        self.systemPrompt.setTabChangesFocus(True)
        self.systemPrompt.setPlainText(settings.system_prompt)
        self.params = ParamsEditor("Server default")
        self.params.set_params(settings.params)
        layout = QVBoxLayout(self)
        layout.addWidget(hint_label("System prompt (sent at the start of new conversations):"))
        layout.addWidget(self.systemPrompt, 1)
        layout.addWidget(self._presets_box())
        params = QGroupBox("Parameters")
        inner = QVBoxLayout(params)
        inner.addWidget(self.params)
        inner.addWidget(hint_label("Server default: the value is not sent. Conversations can "
                                   "override these in their own settings."))
        layout.addWidget(params)
        layout.addLayout(self._documents_row(settings))
        self._fill_presets()

    def _documents_row(self, settings: Settings) -> QHBoxLayout:
        """How much of the context window attached documents may take per message."""
        self.documentShare = name(
            QSpinBox(minimum=5, maximum=90, singleStep=5), "Documents share", "documentShare",
            "Attached documents that fit in this share of the model's context window are sent "
            "whole; longer ones send their best-matching passages, up to this share.")
        self.documentShare.setSuffix(" %")
        self.documentShare.setValue(round(settings.document_share * 100))
        row = QHBoxLayout()
        lead = hint_label("Attached documents may use up to")
        lead.setWordWrap(False)
        row.addWidget(lead)
        row.addWidget(self.documentShare)
        row.addWidget(hint_label("of the model's context window per message."), 1)
        return row

    def _presets_box(self) -> QGroupBox:
        box = QGroupBox("Saved presets (system prompt, model and parameters)")
        self.presetList = name(QComboBox(), "Saved presets", "promptPresets")
        self.presetList.setMinimumContentsLength(16)
        self.applyPreset = name(QPushButton("Apply"), "Apply the preset", "applyPreset")
        self.deletePreset = name(QPushButton("Delete"), "Delete the preset", "deletePreset")
        self.presetName = name(QLineEdit(), "New preset name", "presetName")
        self.presetName.setPlaceholderText("Name for the current settings")
        self.savePreset = name(QPushButton("Save current"), "Save the current settings as "
                               "a preset", "savePreset")
        self.presetStatus = hint_label()
        self.presetStatus.setObjectName("presetStatus")
        top = QHBoxLayout()
        top.addWidget(self.presetList, 1)
        top.addWidget(self.applyPreset)
        top.addWidget(self.deletePreset)
        bottom = QHBoxLayout()
        bottom.addWidget(self.presetName, 1)
        bottom.addWidget(self.savePreset)
        layout = QVBoxLayout(box)
        layout.addLayout(top)
        layout.addLayout(bottom)
        layout.addWidget(self.presetStatus)
        self.applyPreset.clicked.connect(self.apply_preset)
        self.deletePreset.clicked.connect(self.delete_preset)
        self.savePreset.clicked.connect(self.save_preset)
        self.presetName.returnPressed.connect(self.save_preset)
        return box

    def _fill_presets(self, select: str = "") -> None:
        self.presetList.clear()
        for preset in self._presets:
            self.presetList.addItem(preset.name)
        if not self._presets:
            self.presetList.addItem("No saved presets")
        self.presetList.setEnabled(bool(self._presets))
        self.applyPreset.setEnabled(bool(self._presets))
        self.deletePreset.setEnabled(bool(self._presets))
        if select:
            self.presetList.setCurrentText(select)

    def save_preset(self) -> None:
        label = self.presetName.text().strip()
        if not label:
            self.presetStatus.setText("Type a name for the preset first.")
            self.presetName.setFocus()
            return
        preset = PromptPreset(label, self.systemPrompt.toPlainText(), self._current_model(),
                              self.params.params())
        replaced = any(p.name == label for p in self._presets)
        self._presets = [p for p in self._presets if p.name != label] + [preset]
        self.presetName.clear()
        self._fill_presets(label)
        self.presetStatus.setText(f"{'Updated' if replaced else 'Saved'} \"{label}\".")

    def apply_preset(self) -> None:
        preset = self._selected()
        if preset is None:
            return
        self.systemPrompt.setPlainText(preset.system_prompt)
        self.params.set_params(preset.params)
        if preset.model:
            self._apply_model(preset.model)
        self.presetStatus.setText(f"Applied \"{preset.name}\". Press OK to keep it.")

    def delete_preset(self) -> None:
        preset = self._selected()
        if preset is not None:
            self._presets.remove(preset)
            self._fill_presets()
            self.presetStatus.setText(f"Deleted \"{preset.name}\".")

    def _selected(self) -> PromptPreset | None:
        index = self.presetList.currentIndex()
        return self._presets[index] if self._presets and 0 <= index < len(self._presets) else None

    def values(self) -> dict[str, Any]:
        return {"document_share": self.documentShare.value() / 100,
                "system_prompt": self.systemPrompt.toPlainText(),
                "params": self.params.params(), "prompt_presets": tuple(self._presets)}


class AppearancePage(QWidget):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fontSize = name(QSpinBox(minimum=FONT_SYSTEM, maximum=MAX_FONT_SIZE), "Font size",
                             "fontSize", "Text size in points for the conversation.")
        self.fontSize.setSpecialValueText("System default")
        self.fontSize.setSuffix(" pt")
        self.fontSize.setValue(settings.font_size or FONT_SYSTEM)
        self.theme = name(QComboBox(), "Theme", "theme")
        for value, label in THEMES:
            self.theme.addItem(label, value)
        self.theme.setCurrentIndex(max(0, self.theme.findData(settings.theme)))
        self.fontSize.setMinimumWidth(160)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("Font size:", self.fontSize)
        form.addRow("Theme:", self.theme)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint_label("The font size applies to the conversation text. The "
                                    "theme follows your system unless you pick one."))
        layout.addStretch(1)

    def values(self) -> dict[str, Any]:
        size = self.fontSize.value()
        return {"font_size": 0 if size == FONT_SYSTEM else size,
                "theme": self.theme.currentData()}


class NetworkPage(QWidget):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._modes: dict[str, QRadioButton] = {}
        group = QButtonGroup(self)
        proxy = QGroupBox("Proxy")
        column = QVBoxLayout(proxy)
        for value, label in PROXY_MODES:
            button = name(QRadioButton(label), label.rstrip(":"), f"proxy{value.capitalize()}")
            group.addButton(button)
            self._modes[value] = button
        self.proxyUrl = name(QLineEdit(settings.proxy_url), "Proxy address", "proxyUrl",
                             "An HTTP or HTTPS proxy, e.g. http://proxy.example.com:3128")
        self.proxyUrl.setPlaceholderText("http://host:port")
        column.addWidget(self._modes["system"])
        column.addWidget(self._modes["none"])
        manual = QHBoxLayout()
        manual.addWidget(self._modes["manual"])
        manual.addWidget(self.proxyUrl, 1)
        column.addLayout(manual)
        self._modes["manual"].toggled.connect(self.proxyUrl.setEnabled)
        self._modes.get(settings.proxy_mode, self._modes["system"]).setChecked(True)
        self.proxyUrl.setEnabled(self._modes["manual"].isChecked())
        self.connectTimeout = _seconds("Connect timeout", "connectTimeout",
                                       "How long to wait for the server to accept a connection.")
        self.readTimeout = _seconds("Read timeout", "readTimeout",
                                    "How long the server may stay silent before a reply "
                                    "is given up as interrupted.")
        self.connectTimeout.setValue(settings.connect_timeout_s)
        self.readTimeout.setValue(settings.read_timeout_s)
        timeouts = QGroupBox("Timeouts")
        form = QFormLayout(timeouts)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("Connect:", self.connectTimeout)
        form.addRow("Read:", self.readTimeout)
        layout = QVBoxLayout(self)
        layout.addWidget(proxy)
        layout.addWidget(timeouts)
        layout.addStretch(1)

    def mode_button(self, mode: str) -> QRadioButton:
        return self._modes[mode]

    def values(self) -> dict[str, Any]:
        mode = next(value for value, button in self._modes.items() if button.isChecked())
        url = self.proxyUrl.text().strip()
        if mode == "manual" and (problem := proxy_problem(url)):
            raise Invalid(problem, self.proxyUrl)
        s = self._settings
        return {"proxy_mode": mode, "proxy_url": url,
                "connect_timeout_s": kept_value(self.connectTimeout, s.connect_timeout_s),
                "read_timeout_s": kept_value(self.readTimeout, s.read_timeout_s)}


def _seconds(label: str, object_name: str, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox(decimals=1, minimum=0.1, maximum=3600.0, singleStep=5.0)
    box.setSuffix(" s")
    box.setMinimumWidth(120)
    return name(box, label, object_name, tip)

