"""The File menu: new chat, export, import (file dialogs are opened, never exec()'d: a nested
event loop would break a streaming reply under qasync)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QProgressBar

from desktop_chat.ui.controller import ChatController
from desktop_chat.ui.library import Library
from desktop_chat.ui.transfers import Transfers


class FileMenu(QObject):
    def __init__(self, window: QMainWindow, controller: ChatController, library: Library,
                 transfers: Transfers | None) -> None:
        super().__init__(window)
        self._window = window
        self._controller = controller
        self._library = library
        self._transfers = transfers
        self._importing = False
        self.progress = QProgressBar(objectName="importProgress")
        self.progress.setMaximumWidth(160)
        window.statusBar().addPermanentWidget(self.progress)
        self.progress.hide()
        menu = window.menuBar().addMenu("&File")
        menu.addAction("&New chat", QKeySequence("Ctrl+N"), controller.new_chat)
        menu.addSeparator()
        menu.addAction("Export chat as &Markdown…", lambda: self._ask_export("markdown"))
        menu.addAction("Export chat as &JSON…", lambda: self._ask_export("json"))
        menu.addAction("Export &all chats as JSON…", lambda: self._ask_export("all"))
        menu.addAction("&Import chats (JSON or ChatGPT export)…", self._ask_import)
        menu.addSeparator()
        menu.addAction("&Quit", QKeySequence.StandardKey.Quit, window.close)
        if transfers is not None:
            transfers.progress.connect(self._import_progress)
            transfers.finished.connect(self._done)
            transfers.failed.connect(self._failed)

    def export_to(self, path: Path, kind: str) -> bool:
        """kind: "markdown" / "json" (the open chat) or "all" (every chat, JSON)."""
        if self._transfers is None:
            return False
        conversation = None if kind == "all" else self._controller.conversation_id
        return self._transfers.export(path, conversation,
                                      "markdown" if kind == "markdown" else "json")

    def import_from(self, path: Path) -> None:
        if self._transfers is not None and self._transfers.start_import(path) is not None:
            self._importing = True
            self.progress.setRange(0, 0)
            self.progress.show()
            self._window.statusBar().showMessage(f"Importing {path.name}…")

    def _ask_export(self, kind: str) -> None:
        if kind != "all" and self._controller.conversation_id is None:
            self._window.statusBar().showMessage("Open a saved conversation to export it.", 4000)
            return
        suffix = ".md" if kind == "markdown" else ".json"
        dialog = QFileDialog(self._window, "Export", f"conversation{suffix}")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix(suffix.lstrip("."))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda path: self.export_to(Path(path), kind))
        dialog.open()

    def _ask_import(self) -> None:
        dialog = QFileDialog(self._window, "Import chats")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilter("Chat exports (*.json)")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda path: self.import_from(Path(path)))
        dialog.open()

    def _import_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _failed(self, message: str) -> None:
        """An export or import failed (the window's error banner has `message` too); an
        import's "Importing…" line gives way to its outcome."""
        self.progress.hide()
        if self._importing:
            self._importing = False
            self._window.statusBar().showMessage(message, 8000)

    def _done(self, summary: str) -> None:
        self._importing = False
        self.progress.hide()
        self._window.statusBar().showMessage(summary, 8000)
        self._library.changed.emit()  # imported conversations: list them
