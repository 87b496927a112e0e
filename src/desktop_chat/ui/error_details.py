""""Details" under an error message: what the server sent, folded away until asked for.

An HTTP error's message names the status in words; the body the server sent with it (an
HTML error page as its text, a JSON error, a connection's cause) is kept for whoever wants
it: here, and in the log. It is the server's text, so it is shown as plain text, with
secrets redacted (`labels.shown`).
"""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QToolButton, QVBoxLayout, QWidget

from desktop_chat.ui.labels import shown

HIDDEN, SHOWN = "Details ▸", "Details ▾"


class ErrorDetails(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorDetailsPanel")
        self.toggle = QToolButton(objectName="errorDetailsButton")
        self.toggle.setText(HIDDEN)
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.setAccessibleName("Error details")
        self.toggle.setToolTip("Show what the server sent")
        self.text = QPlainTextEdit(objectName="errorDetails")
        self.text.setReadOnly(True)
        self.text.setAccessibleName("What the server sent")
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setMaximumHeight(140)
        self.text.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.toggle)
        layout.addWidget(self.text)
        self.toggle.toggled.connect(self._toggled)
        self.hide()

    def show_details(self, details: str) -> None:
        """Offer `details` (folded); nothing to offer hides the panel."""
        self.toggle.setChecked(False)
        self.text.setPlainText(shown(details.strip()))
        self.setVisible(bool(details.strip()))

    def _toggled(self, open_: bool) -> None:
        self.toggle.setText(SHOWN if open_ else HIDDEN)
        self.text.setVisible(open_)
