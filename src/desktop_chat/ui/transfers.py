"""Export and import of conversations, for the window's File menu.

Exports are quick and run in place; an import can hold thousands of conversations and any
content whatsoever, so it runs in a helper process (core/history/import_process.py: one
transaction, all or nothing) and reports progress. It always ends with `finished` ("Imported
N conversation(s)…") or `failed` ("Nothing was imported: <why>").
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from desktop_chat.core import logs
from desktop_chat.core.history.store import Store, StoreError
from desktop_chat.ui.tasks import Tasks

log = logging.getLogger("desktop_chat.transfers")


class Transfers(QObject):
    progress = Signal(int, int)  # done, total
    finished = Signal(str)  # what happened, for the status line
    failed = Signal(str)  # a user-facing error

    def __init__(self, loop: asyncio.AbstractEventLoop, store: Store | None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._loop = loop
        self._store = store
        self.tasks = Tasks(self, loop=loop)
        self.tasks.failed.connect(self.failed)  # an import that failed in an unexpected way

    @property
    def importing(self) -> bool:
        return self.tasks.busy

    async def aclose(self) -> None:
        """Cancel an import in flight (its helper process is killed: nothing is imported) and
        wait until it has ended."""
        await self.tasks.aclose()

    def export(self, path: Path, conversation_id: int | None, kind: str) -> bool:
        """kind: "markdown" or "json"; conversation_id None = every conversation (JSON)."""
        if self._store is None:
            self.failed.emit("There is no saved history to export.")
            return False
        from desktop_chat.core.history import transfer  # on first use: ~3 ms of the start

        try:
            if kind == "markdown" and conversation_id is not None:
                text = transfer.export_markdown(self._store, conversation_id)
            else:
                ids = None if conversation_id is None else [conversation_id]
                text = json.dumps(transfer.export_json(self._store, ids), ensure_ascii=False,
                                  indent=1)
            path.write_text(text, encoding="utf-8")
        except (OSError, StoreError) as exc:
            log.error("export to %s failed: %s", path, exc)
            self.failed.emit(f"Could not export to {path}: {exc}")
            return False
        self.finished.emit(f"Exported to {path}.")
        return True

    def start_import(self, path: Path) -> asyncio.Task[None] | None:
        if self._store is None or self.importing:
            return None
        return self.tasks.start(self._import(path), what="The import")

    async def _import(self, path: Path) -> None:
        assert self._store is not None
        from desktop_chat.core.history import transfer
        from desktop_chat.core.history.import_process import import_in_process

        try:
            result = await import_in_process(self._store.path, path, self.progress.emit,
                                             secrets=logs.known_secrets())
        except transfer.TransferError as exc:
            log.warning("import of %s refused: %s", path, exc)
            self.failed.emit(f"Nothing was imported: {exc}")
        except Exception as exc:  # e.g. the helper could not be started: still an answer
            log.exception("import of %s failed", path)
            self.failed.emit(f"Nothing was imported: the import failed unexpectedly "
                             f"({type(exc).__name__}). The log has the details.")
        else:
            self.finished.emit(result.summary())
