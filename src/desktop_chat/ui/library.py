"""The conversation list as the sidebar shows it: list, search, rename, delete (undone by
restore). A QObject adapter over the history store; every history failure is reported
(`error`) and changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from desktop_chat.core.history.store import ConversationSummary, SearchHit, Store, StoreError

log = logging.getLogger("desktop_chat.library")

MAX_LISTED = 500
SEARCH_LIMIT = 100


class Library(QObject):
    changed = Signal()  # list the conversations again
    renamed = Signal(int, str)  # conversation id, its new title
    deleted = Signal(int)  # conversation id, hidden until restored
    error = Signal(str)  # for the window's error banner

    def __init__(self, store: Store | None, in_use: Callable[[int], bool] = lambda _: False,
                 parent: QObject | None = None) -> None:
        """`in_use(conversation_id)`: a reply is streaming into it, so it cannot go now."""
        super().__init__(parent)
        self.store = store
        self._in_use = in_use

    def conversations(self) -> list[ConversationSummary]:
        """Newest activity first; empty conversations (a prompt withdrawn) are not listed."""
        if self.store is None:
            return []
        try:
            listed = self.store.list_conversations(MAX_LISTED)
        except StoreError as exc:
            self.error.emit(str(exc))
            return []
        return [c for c in listed if c.message_count]

    def search(self, query: str) -> list[SearchHit]:
        """Any failure is logged by the store and finds nothing."""
        if self.store is None or not query.strip():
            return []
        return self.store.search(query, limit=SEARCH_LIMIT)

    def rename(self, conversation_id: int, title: str) -> bool:
        """False (and `error` says why) when the history could not save the new title: the
        old one stays, in the list and in the open conversation."""
        title = title.strip()
        if self.store is None or not title:
            return False
        if not self._change("renamed",
                            lambda store: store.rename_conversation(conversation_id, title)):
            self.changed.emit()  # the list shows the title that was kept
            return False
        self.renamed.emit(conversation_id, title)
        self.changed.emit()
        return True

    def delete(self, conversation_id: int) -> bool:
        """Hidden at once, removed for good only later: `restore` undoes it. False (and
        `error` says why, unless it is in use) when it could not be deleted: then it is still
        there, still open if it was."""
        if self._in_use(conversation_id) or not self._change(
                "deleted", lambda store: store.delete_conversation(conversation_id)):
            return False
        self.deleted.emit(conversation_id)
        self.changed.emit()
        return True

    def restore(self, conversation_id: int) -> bool:
        if not self._change("restored", lambda store: store.restore_conversation(conversation_id)):
            return False
        self.changed.emit()
        return True

    def _change(self, done: str, write: Callable[[Store], None]) -> bool:
        """Run one history write; a failure is said in words ("could not be <done>")."""
        if self.store is None:
            return False
        try:
            write(self.store)
        except StoreError as exc:
            self.error.emit(f"The conversation could not be {done}: {exc}")
            return False
        return True
