"""The card that asks before a tool runs: which server and tool, what the tool says it does,
and the complete arguments the model wants to send (pretty-printed, scrollable, nothing
hidden or cut), with Allow once / Always allow this tool / Deny.

Everything in it is plain text: the description comes from the server and the arguments from
the model, both untrusted, so neither is ever rendered as rich text.
"""

from __future__ import annotations

import json

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.model.message import ToolCall
from desktop_chat.core.tools.consent import Decision
from desktop_chat.core.tools.host import ToolInfo
from desktop_chat.ui.labels import PlainLabel

DESCRIPTION_CHARS = 600


def pretty_arguments(arguments: str) -> str:
    """The arguments as indented JSON; text that is not JSON is shown exactly as sent."""
    try:
        return json.dumps(json.loads(arguments or "{}"), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


class ToolApprovalCard(QFrame):
    answered = Signal(object)  # Decision

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolApproval")
        self.setAccessibleName("Tool approval")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("QFrame#toolApproval { border: 1px solid palette(mid); "
                           "border-radius: 10px; }")
        self.title = _plain_label("", bold=True)
        self.title.setObjectName("toolApprovalTitle")
        self.description = _plain_label("")
        self.description.setWordWrap(True)
        self.arguments = QPlainTextEdit(objectName="toolArguments")
        self.arguments.setReadOnly(True)
        self.arguments.setAccessibleName("Arguments the tool would get")
        self.arguments.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.arguments.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.arguments.setMaximumHeight(220)
        self.allowOnceButton = _button("Allow once", "allowOnceButton",
                                       "Run this call now; ask again next time")
        self.allowAlwaysButton = _button("Always allow this tool", "allowAlwaysButton",
                                         "Run this tool of this server without asking from "
                                         "now on (revocable in Settings → Tools)")
        self.denyButton = _button("Deny", "denyButton",
                                  "Do not run it; the model is told it was denied")
        self.allowOnceButton.clicked.connect(lambda: self.answered.emit(Decision.ALLOW_ONCE))
        self.allowAlwaysButton.clicked.connect(
            lambda: self.answered.emit(Decision.ALLOW_ALWAYS))
        self.denyButton.clicked.connect(lambda: self.answered.emit(Decision.DENY))
        buttons = QHBoxLayout()
        buttons.addWidget(self.allowOnceButton)
        buttons.addWidget(self.allowAlwaysButton)
        buttons.addStretch(1)
        buttons.addWidget(self.denyButton)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addWidget(self.title)
        layout.addWidget(self.description)
        layout.addWidget(_plain_label("Arguments:"))
        layout.addWidget(self.arguments)
        layout.addLayout(buttons)
        self.hide()

    def ask(self, call: ToolCall, tool: ToolInfo) -> None:
        self.title.setText(f"Run {tool.server} › {tool.name}?")
        description = tool.description.strip() or "The server gives no description."
        if len(description) > DESCRIPTION_CHARS:
            description = description[:DESCRIPTION_CHARS] + "…"
        self.description.setText(description)
        self.arguments.setPlainText(pretty_arguments(call.arguments))
        self.setAccessibleDescription(
            f"The model wants to run {tool.name} on {tool.server}.")
        self.show()

    def dismiss(self) -> None:
        self.hide()
        self.arguments.clear()


def _plain_label(text: str, *, bold: bool = False) -> QLabel:
    label = PlainLabel(text)
    if bold:
        font = label.font()
        font.setBold(True)
        label.setFont(font)
    return label


def _button(text: str, name: str, tip: str) -> QPushButton:
    button = QPushButton(text, objectName=name)
    button.setAccessibleName(text)
    button.setToolTip(tip)
    return button
