"""Copying replies and code, and opening links (only http/https, only after the address was
shown; the confirmation is opened, never exec()'d)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMainWindow, QMessageBox

from desktop_chat.core.render import markdown
from desktop_chat.ui.clipboard import put_on_clipboard
from desktop_chat.ui.controller import ChatController
from desktop_chat.ui.transcript import Transcript


class CopyActions(QObject):
    def __init__(self, window: QMainWindow, controller: ChatController,
                 transcript: Transcript) -> None:
        super().__init__(window)
        self._window = window
        self._controller = controller
        self._transcript = transcript

    def copy_reply(self, index: int) -> None:
        messages = self._controller.session.messages
        if 0 <= index < len(messages):
            text = messages[index].content
            put_on_clipboard(text, self._html(text))
            self._window.statusBar().showMessage("Reply copied.", 2000)

    def copy_last_reply(self) -> bool:
        """Markdown exactly as received as text/plain and text/markdown, rendered as HTML."""
        text = self._controller.last_reply_text()
        if text is None:
            self._window.statusBar().showMessage("There is no reply to copy yet.", 3000)
            return False
        put_on_clipboard(text, self._html(text))
        self._window.statusBar().showMessage("Reply copied.", 2000)
        return True

    def _html(self, text: str) -> str:
        """The reply rendered, its formulas as pictures with their LaTeX as alt text."""
        return markdown.to_html(text, self._transcript.theme,
                                math=self._transcript.math.clipboard_html)

    def copy_last_code_block(self) -> bool:
        block = self._transcript.last_code_block()
        if block is None:
            self._window.statusBar().showMessage("There is no code block to copy yet.", 3000)
            return False
        self.copy_code(block.code)
        return True

    def copy_code(self, code: str) -> None:
        put_on_clipboard(code, None)
        self._window.statusBar().showMessage("Code copied.", 2000)

    def confirm_link(self, url: str) -> None:
        """Links open only on click, and only after the address was shown."""
        box = QMessageBox(QMessageBox.Icon.Question, "Open link?",
                          "Open this address in your browser?",
                          QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
                          self._window)
        box.setObjectName("linkDialog")
        box.setTextFormat(Qt.TextFormat.PlainText)  # the address is the model's: shown as is
        box.setInformativeText(url)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.accepted.connect(lambda: QDesktopServices.openUrl(QUrl(url)))
        box.open()  # not exec(): no nested event loop while a reply may stream

    def refuse_link(self, href: str) -> None:
        shown = href if len(href) <= 80 else href[:77] + "…"
        self._window.statusBar().showMessage(
            f"Did not open '{shown}': only http and https links open.", 6000)
