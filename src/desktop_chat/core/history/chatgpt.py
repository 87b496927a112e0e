"""Import a ChatGPT data export (`conversations.json`), keeping its branches.

Each conversation there is a tree: `mapping` holds nodes `{id, message | null, parent,
children}` and `current_node` is the leaf the user last saw. Nodes that are not a visible
user or assistant message (the empty root, system prompts, tool calls and results, hidden
context, reasoning traces) are left out, and their children hang from the nearest kept
ancestor, so every branch stays connected. Parts that are not text (images, files) become
a placeholder such as "[image]".
"""

from __future__ import annotations

import logging
from typing import Any

from desktop_chat.core.history.imports import (
    MAX_TIMESTAMP,
    ImportResult,
    ParsedConversation,
    Progress,
    TransferError,
    enumerate_items,
    optional_str,
    parse_each,
    shown,
    timestamp,
    tree_order,
    write_all,
)
from desktop_chat.core.history.store import Store
from desktop_chat.core.model.message import Message, ReplyState, Role

log = logging.getLogger("desktop_chat.store")

UID_PREFIX = "chatgpt-"
_ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT}
_HIDDEN_TYPES = {"thoughts", "reasoning_recap", "user_editable_context",
                 "model_editable_context", "system_error"}
_FINISH = {"stop": "stop", "max_tokens": "length", "interrupted": None}  # -> Chat Completions
_PLACEHOLDERS = {"image_asset_pointer": "[image]", "audio_asset_pointer": "[audio]",
                 "real_time_user_audio_video_asset_pointer": "[audio/video]"}


def import_chatgpt(store: Store, data: object, progress: Progress | None = None,
                   ) -> ImportResult:
    """All or nothing, in one transaction; safe to run in a worker thread. `progress(done,
    total)` is called from that thread after each conversation; raising from it cancels."""
    items = list(enumerate_items(data, "ChatGPT conversations"))
    return write_all(store, parse_each(items, parse_conversation, _name), len(items), progress)


def _name(number: int, item: dict[str, Any]) -> str:
    return f"Conversation {number} ({shown(_title(item))})"


def _title(item: dict[str, Any]) -> str:
    return optional_str(item.get("title")) or ""


def parse_conversation(item: dict[str, Any], where: str) -> ParsedConversation:
    mapping = item.get("mapping")
    if not isinstance(mapping, dict) or not all(isinstance(n, dict) for n in mapping.values()):
        raise TransferError(f"{where} has no message tree ('mapping'); is this a ChatGPT "
                            "conversations.json?")
    created = timestamp(item.get("create_time"), where=where, name="create_time")
    conversation = ParsedConversation(
        title=_title(item), created_at=created,
        updated_at=timestamp(item.get("update_time"), created, where=where,
                             name="update_time"), messages=[],
        model=optional_str(item.get("default_model_slug")),
    )
    source_id = optional_str(item.get("conversation_id")) or optional_str(item.get("id"))
    if source_id:  # the same export imported twice is recognised and left alone
        conversation.uid = UID_PREFIX + source_id
    _add_messages(conversation, mapping, item.get("current_node"), where)
    return conversation


def _add_messages(conversation: ParsedConversation, mapping: dict[str, dict[str, Any]],
                  current_node: object, where: str) -> None:
    """Walk the tree parents-first; `anchor` maps each node to itself if kept, else to its
    nearest kept ancestor, which is where its kept children attach."""
    anchor: dict[str, str | None] = {}
    parents = {key: _parent(key, node, mapping) for key, node in mapping.items()}
    for key in tree_order(_sorted_siblings(parents, mapping), where):
        parent_anchor = anchor.get(parents[key])  # parents come first: already anchored
        message = _message(mapping[key], conversation.created_at,
                           f"{where}, message {shown(key)}")
        if message is None:
            anchor[key] = parent_anchor
            conversation.skipped_messages += mapping[key].get("message") is not None
            continue
        anchor[key] = key
        conversation.add(key, parent_anchor, message)
    if isinstance(current_node, str) and current_node in anchor:
        conversation.active_leaf = anchor[current_node]


def _parent(key: str, node: dict[str, Any], mapping: dict[str, Any]) -> str | None:
    parent = node.get("parent")
    if isinstance(parent, str) and parent in mapping and parent != key:
        return parent
    if parent is not None:
        log.warning("ChatGPT node %s has an unknown parent; treated as a root", key)
    return None


def _sorted_siblings(parents: dict[str, str | None], mapping: dict[str, dict[str, Any]],
                     ) -> dict[str, str | None]:
    """Same parents, ordered so siblings follow their parent's `children` list."""
    rank: dict[str, int] = {}
    for node in mapping.values():
        children = node.get("children")
        for position, child in enumerate(children if isinstance(children, list) else []):
            if isinstance(child, str):
                rank.setdefault(child, position)
    keys = sorted(parents, key=lambda k: (rank.get(k, len(mapping)), _created(mapping[k])))
    return {key: parents[key] for key in keys}


def _created(node: dict[str, Any]) -> float:
    """For ordering siblings only: an odd time sorts first (`_message` refuses it)."""
    message = node.get("message")
    value = message.get("create_time") if isinstance(message, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            return 0.0
        return seconds if 0.0 <= seconds <= MAX_TIMESTAMP else 0.0
    return 0.0


def _message(node: dict[str, Any], conversation_created: float, where: str) -> Message | None:
    message = node.get("message")
    if not isinstance(message, dict) or _hidden(message, where):
        return None
    author = message.get("author")
    role_name = author.get("role") if isinstance(author, dict) else None
    if role_name is not None and not isinstance(role_name, str):
        raise TransferError(f"{where}: its author role ({shown(role_name)}) is not text.")
    role = _ROLES.get(role_name) if role_name is not None else None
    content = _text(message.get("content"))
    if role is None or not content.strip():
        return None
    metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    created = timestamp(message.get("create_time"), conversation_created, where=where,
                        name="create_time")
    finish = _finish_type(metadata)
    return Message.of(
        role, content, created_at=created,
        updated_at=timestamp(message.get("update_time"), created, where=where,
                             name="update_time"),
        model=optional_str(metadata.get("model_slug")) if role is Role.ASSISTANT else None,
        finish_reason=_FINISH.get(finish, finish) if finish else None,
        state=ReplyState.STOPPED if finish == "interrupted" else ReplyState.COMPLETE,
    )


def _hidden(message: dict[str, Any], where: str) -> bool:
    metadata = message.get("metadata")
    content = message.get("content")
    recipient = message.get("recipient")
    kind = content.get("content_type") if isinstance(content, dict) else None
    if kind is not None and not isinstance(kind, str):
        raise TransferError(f"{where}: its content_type ({shown(kind)}) is not text.")
    return (
        (isinstance(metadata, dict) and bool(metadata.get("is_visually_hidden_from_conversation")))
        or (recipient is not None and recipient != "all")
        or kind in _HIDDEN_TYPES
    )


def _finish_type(metadata: dict[str, Any]) -> str | None:
    details = metadata.get("finish_details")
    return optional_str(details.get("type")) if isinstance(details, dict) else None


def _text(content: object) -> str:
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts")
    if isinstance(parts, list):
        pieces = (_part_text(part) for part in parts)
        return "\n\n".join(piece for piece in pieces if piece)
    text = optional_str(content.get("text")) or ""
    if content.get("content_type") == "code" and text:
        language = optional_str(content.get("language")) or ""
        return f"```{'' if language == 'unknown' else language}\n{text}\n```"
    return text or f"[{optional_str(content.get('content_type')) or 'unsupported content'}]"


def _part_text(part: object) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    kind = optional_str(part.get("content_type")) or "attachment"
    return optional_str(part.get("text")) or _PLACEHOLDERS.get(kind, f"[{kind}]")
