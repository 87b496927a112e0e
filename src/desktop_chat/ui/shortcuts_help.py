"""Ctrl+/ : the keyboard shortcuts, in a small window that is opened, never exec()'d (a nested
event loop would break a streaming reply under qasync)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox, QWidget

# (key sequence in portable form, what it does); shown in the platform's notation (Cmd on macOS)
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Return", "Send the message"),
    ("Shift+Return", "New line in the message"),
    ("Esc", "Stop the reply (what arrived is kept)"),
    ("Ctrl+Shift+C", "Copy the last reply"),
    ("Ctrl+Shift+;", "Copy the last code block"),
    ("Ctrl+N", "New chat (also Ctrl+Shift+O)"),
    ("Ctrl+F", "Search all conversations (Esc clears the search)"),
    ("Ctrl+B", "Hide or show the conversation list"),
    ("Shift+Esc", "Focus the message box"),
    ("Ctrl+,", "Settings"),
    ("Ctrl+Shift+,", "This conversation's settings"),
    ("F2", "Rename the selected conversation"),
    ("Del", "Delete the selected conversation (Undo in the status bar)"),
    ("Ctrl+/", "This list"),
)


def shortcuts_html() -> str:
    rows = "".join(
        f"<tr><td style='padding-right:16px'><b>"
        f"{html.escape(QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText))}"
        f"</b></td><td>{html.escape(text)}</td></tr>"
        for keys, text in SHORTCUTS)
    return f"<table>{rows}</table>"


def show_shortcuts(parent: QWidget) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", shortcuts_html(),
                      QMessageBox.StandardButton.Close, parent)
    box.setObjectName("shortcutsDialog")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
