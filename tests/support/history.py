"""Writing history in tests the way the app does: every helper builds a `Message` and hands it
to the store's one writer (`Store.add_message`, `save_progress`, `finish_reply`). Ids in, ids
out, so a test reads as the tree it builds."""

from __future__ import annotations

from typing import Any

from desktop_chat.core.history.store import Store
from desktop_chat.core.model.message import Message, ReplyState, Role, Usage


def add(store: Store, conversation_id: int, parent_id: int | None, role: Role, text: str = "",
        **fields: Any) -> int:
    """A complete message (`fields`: reasoning, attachments, usage, state, model, …)."""
    return store.add_message(conversation_id, Message.of(role, text, parent_id=parent_id,
                                                         **fields))


def begin_reply(store: Store, conversation_id: int, parent_id: int | None, model: str) -> int:
    """An empty reply in state streaming, as the session adds one before the request."""
    return store.add_message(conversation_id, Message(
        Role.ASSISTANT, state=ReplyState.STREAMING, model=model, parent_id=parent_id))


def progress(store: Store, reply_id: int, text: str, reasoning: str = "") -> None:
    """What has arrived so far, saved as the session's autosave does."""
    store.save_progress(Message.of(Role.ASSISTANT, text, reasoning=reasoning, id=reply_id,
                                   state=ReplyState.STREAMING))


def finish(store: Store, reply_id: int, state: ReplyState, text: str, reasoning: str = "",
           usage: Usage | None = None, finish_reason: str | None = None,
           error: str | None = None) -> None:
    """The reply's outcome."""
    store.finish_reply(Message.of(
        Role.ASSISTANT, text, reasoning=reasoning, id=reply_id, state=state, usage=usage,
        finish_reason=finish_reason, error=error))
