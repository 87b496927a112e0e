"""The File menu: new chat, export, import (file dialogs are opened, never exec()'d: a nested
event loop would break a streaming reply under qasync)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QStandardPaths, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QProgressBar

from desktop_chat.ui.controller import ChatController
from desktop_chat.ui.library import Library
from desktop_chat.ui.transfers import Transfers


class FileMenu(QObject):
    def __init__(self, window: QMainWindow, controller: ChatController, library: Library,
                 transfers: Transfers | None, state: QSettings | None = None, *,
                 menu: QMenu) -> None:
        """`state`: where the folder last exported to is remembered; `menu`: the menu bar's
        File menu (the window makes the menus' titles with its first frame)."""
        super().__init__(window)
        self._state = state
        self._window = window
        self._controller = controller
        self._library = library
        self._transfers = transfers
        self._importing = False
        self.progress = QProgressBar(objectName="importProgress")
        self.progress.setMaximumWidth(160)
        window.statusBar().addPermanentWidget(self.progress)
        self.progress.hide()
        menu.addAction("&New chat", QKeySequence("Ctrl+N"), controller.new_chat)
        menu.addSeparator()
        menu.addAction("Export chat as &Markdown…", lambda: self.ask_export("markdown"))
        menu.addAction("Export chat as &JSON…", lambda: self.ask_export("json"))
        menu.addAction("Export &all chats as JSON…", lambda: self.ask_export("all"))
        menu.addAction("&Import chats (JSON or ChatGPT export)…", self._ask_import)
        menu.addSeparator()
        menu.addAction("&Quit", QKeySequence.StandardKey.Quit, window.close)
        if transfers is not None:
            transfers.progress.connect(self._import_progress)
            transfers.finished.connect(self._done)
            transfers.failed.connect(self._failed)

    def export_to(self, path: Path, kind: str, conversation_id: int | None = None) -> bool:
        """kind: "markdown" / "json" (`conversation_id`, else the open chat) or "all" (every
        chat, JSON)."""
        if self._transfers is None:
            return False
        if self._state is not None:
            self._state.setValue(EXPORT_FOLDER, str(path.parent))
        conversation = None if kind == "all" else (
            conversation_id if conversation_id is not None else self._controller.conversation_id)
        return self._transfers.export(path, conversation,
                                      "markdown" if kind == "markdown" else "json")

    def import_from(self, path: Path) -> None:
        if self._transfers is not None and self._transfers.start_import(path) is not None:
            self._importing = True
            self.progress.setRange(0, 0)
            self.progress.show()
            self._window.statusBar().showMessage(f"Importing {path.name}…")

    def ask_export(self, kind: str, conversation_id: int | None = None,
                   title: str | None = None) -> QFileDialog | None:
        """The save dialog for an export: named after the chat (or "all chats" and the
        date), in the folder last exported to (else Documents), with the file type's
        filter. `conversation_id`/`title`: a chat from the sidebar; default the open one."""
        if kind != "all" and conversation_id is None:
            conversation_id = self._controller.conversation_id
            title = self._controller.session.conversation.title
        if kind != "all" and conversation_id is None:
            self._window.statusBar().showMessage("Open a saved conversation to export it.", 4000)
            return None
        name = export_name(kind, title)
        dialog = QFileDialog(self._window, "Export all chats" if kind == "all" else "Export chat",
                             str(self._export_folder() / name))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters([FILTERS[kind], "All files (*)"])
        dialog.setDefaultSuffix(Path(name).suffix.lstrip("."))
        dialog.selectFile(name)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(
            lambda path: self.export_to(Path(path), kind, conversation_id))
        dialog.open()
        return dialog

    def _export_folder(self) -> Path:
        last = self._state.value(EXPORT_FOLDER) if self._state is not None else None
        if last and Path(str(last)).is_dir():
            return Path(str(last))
        documents = QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.DocumentsLocation)
        return Path(documents) if documents and Path(documents).is_dir() else Path.home()

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


EXPORT_FOLDER = "exportFolder"
FILTERS = {"markdown": "Markdown (*.md)", "json": "JSON (*.json)", "all": "JSON (*.json)"}
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


def export_name(kind: str, title: str | None, today: float | None = None) -> str:
    """A file name for an export: the chat's title made safe for any file system, or
    "desktop-chat conversations YYYY-MM-DD" for every chat."""
    suffix = ".md" if kind == "markdown" else ".json"
    if kind == "all":
        day = time.strftime("%Y-%m-%d", time.localtime(today))
        return f"desktop-chat conversations {day}{suffix}"
    stem = " ".join(_UNSAFE.sub(" ", title or "").split()).strip(" .")[:80].rstrip(" .")
    return f"{stem or 'conversation'}{suffix}"
