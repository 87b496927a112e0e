"""Sampling parameters with an explicit "leave it to the server" choice for each.

Used by the settings dialog (app-wide defaults) and by a conversation's own settings
(overrides). An unticked value is None: not sent, or not overridden.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QSpinBox,
    QWidget,
)

from desktop_chat.core.config.providers import GenerationParams, ReasoningEffort
from desktop_chat.ui.labels import name

T = TypeVar("T")
EFFORTS = [(e.value, e.value.capitalize()) for e in ReasoningEffort]


class ParamsEditor(QWidget):
    """Temperature, top_p, max tokens and reasoning effort; each has a "default" box that,
    while ticked, disables the value and yields None."""

    def __init__(self, default_text: str = "Server default", parent: QWidget | None = None,
                 name_prefix: str = "") -> None:
        super().__init__(parent)
        self.temperature = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=2.0, singleStep=0.1)
        self.temperature.setValue(1.0)
        self.top_p = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1.0, singleStep=0.05)
        self.top_p.setValue(1.0)
        self.max_tokens = QSpinBox(minimum=1, maximum=1_000_000, singleStep=256)
        self.max_tokens.setValue(4096)
        self.max_tokens.setGroupSeparatorShown(True)
        self.reasoning = QComboBox()
        for value, label in EFFORTS:
            self.reasoning.addItem(label, value)
        self.reasoning.setCurrentIndex(self.reasoning.findData(ReasoningEffort.MEDIUM.value))

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self._defaults: dict[str, QCheckBox] = {}
        rows = (
            ("temperature", "Temperature", self.temperature,
             "Higher is more varied, lower more focused (0 to 2)."),
            ("top_p", "Top P", self.top_p, "Nucleus sampling: the share of likely tokens "
             "considered (0 to 1). Change this or temperature, not both."),
            ("max_tokens", "Max tokens", self.max_tokens, "The longest reply, in tokens."),
            ("reasoning_effort", "Reasoning effort", self.reasoning,
             "How hard reasoning models think before answering. Other models ignore it "
             "or reject it."),
        )
        for key, label, widget, tip in rows:
            box = QCheckBox(default_text)
            name(box, f"{label}: {default_text.lower()}", f"{name_prefix}{key}Default")
            name(widget, label, f"{name_prefix}{key}", tip)
            box.toggled.connect(widget.setDisabled)
            box.setChecked(True)
            widget.setMinimumWidth(140)
            row = QHBoxLayout()
            row.addWidget(box)
            row.addWidget(widget)
            row.addStretch(1)
            form.addRow(f"{label}:", row)
            self._defaults[key] = box

    def set_params(self, params: GenerationParams,
                   shown: GenerationParams | None = None) -> None:
        """Tick "default" for each None in `params`; `shown` gives the values the disabled
        boxes show meanwhile (e.g. the app-wide defaults a conversation would get)."""
        if shown is not None:
            self.set_params(shown)
        self._set("temperature", params.temperature, self.temperature.setValue)
        self._set("top_p", params.top_p, self.top_p.setValue)
        self._set("max_tokens", params.max_tokens, self.max_tokens.setValue)
        effort = self.reasoning.findData(params.reasoning_effort)
        self._set("reasoning_effort", None if effort < 0 else effort,
                  self.reasoning.setCurrentIndex)

    def params(self) -> GenerationParams:
        return GenerationParams(
            temperature=self._get("temperature", self.temperature.value()),
            top_p=self._get("top_p", self.top_p.value()),
            max_tokens=self._get("max_tokens", self.max_tokens.value()),
            reasoning_effort=self._get("reasoning_effort", self.reasoning.currentData()),
        )

    def default_box(self, key: str) -> QCheckBox:
        return self._defaults[key]

    def _set(self, key: str, value: T | None, setter: Callable[[T], object]) -> None:
        self._defaults[key].setChecked(value is None)
        if value is not None:
            setter(value)

    def _get(self, key: str, value: T) -> T | None:
        return None if self._defaults[key].isChecked() else value
