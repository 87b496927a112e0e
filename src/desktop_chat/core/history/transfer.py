"""Export conversations to Markdown and JSON, and import them back (or from ChatGPT).

The JSON export is the lossless one: every branch, timestamps as epoch seconds, model,
usage, state and error per message, attached images (base64, with their type and name), and
the conversation's uid so importing the same export twice does not duplicate it. Message ids
in the file are only links between its messages; an import gives them new ids. Markdown is
for reading: the active path only, with a line naming each image (not the image itself, which
would make the text unreadable).

Format version 1 gained optional fields, `attachments`, `usage.estimated` and `tool_calls`
(each call with its arguments and complete result), without a version bump: older readers
ignore them, and every version-1 file still imports.

Imports run in one transaction (see `imports.write_all`) and may run in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from desktop_chat.core.documents.extract import KIND_LABELS, Section
from desktop_chat.core.history.chatgpt import import_chatgpt
from desktop_chat.core.history.db import server_text
from desktop_chat.core.history.documents import StoredDocument
from desktop_chat.core.history.imports import (
    ImportResult,
    ParsedConversation,
    Progress,
    TransferError,
    count,
    enumerate_items,
    optional_str,
    parse_each,
    shown,
    timestamp,
    tree_order,
    write_all,
)
from desktop_chat.core.history.store import Store
from desktop_chat.core.history.tool_calls import add_calls, calls_list
from desktop_chat.core.model.message import (
    IMAGE_TYPES,
    Attachment,
    DocumentRef,
    Message,
    Passage,
    ReplyState,
    Role,
    Text,
    ToolCall,
    Usage,
    check_size,
    sniff_image,
)

__all__ = [
    "FORMAT", "FORMAT_VERSION", "ImportResult", "TransferError", "export_json",
    "export_markdown", "export_markdown_all", "import_chatgpt", "import_file", "import_json",
    "read_json",
]

FORMAT = "desktop-chat-history"
FORMAT_VERSION = 1
_ROLE_LABELS = {Role.USER: "You", Role.ASSISTANT: "Assistant", Role.SYSTEM: "System"}
_STATE_NOTES = {
    ReplyState.STREAMING: "Still being received when exported.",
    ReplyState.STOPPED: "Stopped before the end.",
    ReplyState.FAILED: "Failed.",
    ReplyState.INTERRUPTED: "Interrupted.",
}


# -- files -------------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """The file's JSON, or a `TransferError` saying in words why it cannot be read."""
    name = path.name
    try:
        with open(path, encoding="utf-8-sig") as file:
            return json.load(file)
    except OSError as exc:
        raise TransferError(f"{name} could not be read: {exc.strerror or exc}") from exc
    except RecursionError:
        raise TransferError(f"{name} is nested too deeply to be read (brackets inside "
                            "brackets, hundreds of levels deep); no chat export is.") from None
    except MemoryError:
        raise TransferError(f"{name} is too large to be read with the memory available."
                            ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TransferError(f"{name} is not a valid JSON file ({exc}).") from exc
    except ValueError:  # e.g. Python's limit on the digits of one integer
        raise TransferError(f"{name} holds a number with thousands of digits, which no chat "
                            "export has; it was not read.") from None


def import_file(store: Store, path: Path, progress: Progress | None = None) -> ImportResult:
    """Import our JSON export or a ChatGPT conversations.json, whichever `path` is."""
    data = read_json(path)
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return import_json(store, data, progress)
    if isinstance(data, list):
        return import_chatgpt(store, data, progress)
    raise TransferError(f"{path.name} is neither a desktop-chat export nor a ChatGPT "
                        "conversations.json.")


# -- JSON --------------------------------------------------------------------------------------


def export_json(store: Store, conversation_ids: list[int] | None = None) -> dict[str, Any]:
    """All branches of the given conversations (default: all not deleted), oldest first."""
    if conversation_ids is None:
        conversation_ids = sorted(c.id for c in store.list_conversations(limit=None))
    conversations = [c for i in conversation_ids
                     if (c := _conversation_json(store, i)) is not None]
    return {"format": FORMAT, "version": FORMAT_VERSION, "exported_at": time.time(),
            "conversations": conversations}


def _conversation_json(store: Store, conversation_id: int) -> dict[str, Any] | None:
    conversation = store.conversation(conversation_id)
    if conversation is None:
        return None
    messages = store.all_messages(conversation_id)
    kept = {m.id for m in messages}
    leaf = conversation.active_leaf_id
    return {
        "uid": conversation.uid, "title": conversation.title,
        "created_at": _finite(conversation.created_at),
        "updated_at": _finite(conversation.updated_at),
        "model": conversation.model, "extra": conversation.extra,
        "active_leaf": leaf if leaf in kept else None,
        "messages": [_message_json(m, kept) for m in messages],
        **({"documents": docs} if (docs := _documents_json(store, messages)) else {}),
    }


def _documents_json(store: Store, messages: list[Message]) -> list[dict[str, Any]]:
    """Each document the conversation's messages refer to, once, with its text."""
    out: dict[str, dict[str, Any]] = {}
    for message in messages:
        for part in (*message.documents, *message.passages):
            if part.sha256 in out or (ref := store.document(part.sha256)) is None:
                continue
            out[part.sha256] = {
                "sha256": ref.sha256, "name": ref.name, "kind": ref.kind, "size": ref.size,
                "pages": ref.pages, "tokens": ref.tokens,
                "sections": [{"text": s.text, "page": s.page, "heading": s.heading}
                             for s in store.document_sections(ref.sha256)]}
    return list(out.values())


def _message_json(message: Message, kept: set[int]) -> dict[str, Any]:
    usage = message.usage
    out = {
        "id": message.id,
        # a damaged (skipped) parent cannot be exported: its children become roots
        "parent": message.parent_id if message.parent_id in kept else None,
        "role": message.role.value, "content": message.content,
        "reasoning": message.reasoning, "state": message.state.value, "model": message.model,
        # stored redacted already; again, for a key the app learned since
        "finish_reason": server_text(message.finish_reason), "error": server_text(message.error),
        "usage": None if usage is None else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens, "total_tokens": usage.total_tokens,
            **({"estimated": True} if usage.estimated else {}),
        },
        "created_at": _finite(message.created_at), "updated_at": _finite(message.updated_at),
    }
    if parts := [*message.documents, *message.passages]:
        out["documents"] = [_part_json(p) for p in parts]
    if message.attachments:
        out["attachments"] = [
            {"name": a.name, "mime": a.mime, "data": base64.b64encode(a.data).decode("ascii")}
            for a in message.attachments]
    if message.tool_calls:
        out["tool_calls"] = calls_list(message)  # complete: arguments and results in full
    return out


def _part_json(part: DocumentRef | Passage) -> dict[str, Any]:
    if isinstance(part, DocumentRef):
        return {"sha256": part.sha256, "name": part.name, "part": "attached"}
    return {"sha256": part.sha256, "name": part.name,
            "part": "whole" if part.whole else "passage", "page": part.page,
            "heading": part.heading, "text": part.text}


def _finite(epoch: float) -> float | None:
    """A stored time as JSON can hold it: infinity (a damaged row, an old import of 1e400)
    has no JSON form, so it is written as null, which an import reads as "unknown"."""
    return epoch if math.isfinite(epoch) else None


def import_json(store: Store, data: object, progress: Progress | None = None) -> ImportResult:
    """Import our own export, all or nothing; conversations already present (same uid) are
    left alone. Safe in a worker thread; raising from `progress` cancels."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TransferError("This file is not a desktop-chat export.")
    version = data.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise TransferError("This export was made by a newer version of desktop-chat; update "
                            "desktop-chat to import it.")
    items = list(enumerate_items(data.get("conversations"), "conversations"))
    return write_all(store, parse_each(items, _parse_conversation, _name), len(items),
                     progress)


def _name(number: int, item: dict[str, Any]) -> str:
    title = item.get("title")
    return f"Conversation {number} ({shown(title)})" if isinstance(title, str) else (
        f"Conversation {number}")


def _parse_conversation(item: dict[str, Any], where: str) -> ParsedConversation:
    raw = {m_key: m for m_key, m in _keyed_messages(item.get("messages"), where)}
    parents = {key: m.get("parent") for key, m in raw.items()}
    for key, parent in parents.items():
        if parent is not None and (not isinstance(parent, int | str) or parent not in raw):
            raise TransferError(f"{where}: message {shown(key)} answers a message that is "
                                "missing.")
    created = timestamp(item.get("created_at"), where=where, name="created_at")
    extra = item.get("extra", {})
    if not isinstance(extra, dict) or not isinstance(item.get("title", ""), str):
        raise TransferError(f"{where}: its title or settings have the wrong type.")
    parsed = ParsedConversation(
        title=item.get("title", ""), created_at=created,
        updated_at=timestamp(item.get("updated_at"), created, where=where, name="updated_at"),
        model=optional_str(item.get("model")), extra=extra,
        active_leaf=leaf if isinstance(leaf := item.get("active_leaf"), int | str) else None,
        keep_if_empty=True,
    )
    parsed.documents = _documents(item.get("documents", []), where)
    known = {d.ref.sha256: d.ref for d in parsed.documents}
    for key in tree_order(parents, where):
        parsed.add(key, parents[key], _parse_message(key, raw[key], created, where, known))
    uid = optional_str(item.get("uid"))
    if uid:
        parsed.uid = uid
    return parsed


def _keyed_messages(messages: object, where: str) -> Iterator[tuple[int | str, dict[str, Any]]]:
    if not isinstance(messages, list):
        raise TransferError(f"{where} has no list of messages.")
    seen: set[int | str] = set()
    for message in messages:
        key = message.get("id") if isinstance(message, dict) else None
        if not isinstance(key, int | str) or isinstance(key, bool) or key in seen:
            raise TransferError(f"{where}: a message has a missing or repeated id.")
        seen.add(key)
        yield key, message


def _parse_message(key: Any, raw: dict[str, Any], fallback: float, where: str,
                   known: dict[str, DocumentRef] | None = None) -> Message:
    where = f"{where}, message {shown(key)}"
    role, state = raw.get("role"), raw.get("state", "complete")
    if not isinstance(role, str) or role not in _ROLES:
        raise TransferError(f"{where}: its role ({shown(role)}) is not user, assistant or "
                            "system.")
    if not isinstance(state, str) or state not in _STATES:
        raise TransferError(f"{where}: its state ({shown(state)}) is not one of "
                            f"{', '.join(_STATES)}.")
    texts = [raw.get(name, "") for name in ("content", "reasoning")]
    if not all(isinstance(text, str) for text in texts):
        raise TransferError(f"{where}: its text is not a string.")
    created = timestamp(raw.get("created_at"), fallback, where=where, name="created_at")
    reply_state = _STATES[state]
    message = Message.of(
        _ROLES[role], texts[0], reasoning=texts[1],
        attachments=_attachments(raw.get("attachments", []), where),
        documents=_document_parts(raw.get("documents", []), known or {}, where),
        # nothing streams into an imported message any more
        state=ReplyState.INTERRUPTED if reply_state is ReplyState.STREAMING else reply_state,
        created_at=created,
        updated_at=timestamp(raw.get("updated_at"), created, where=where, name="updated_at"),
        model=optional_str(raw.get("model")), usage=_usage(raw.get("usage"), where),
        finish_reason=optional_str(raw.get("finish_reason")),
        error=optional_str(raw.get("error")),
    )
    if "tool_calls" in raw:
        if not isinstance(raw["tool_calls"], list):
            raise TransferError(f"{where}: its tool_calls are not a list.")
        add_calls(message, raw["tool_calls"])
    return message


_ROLES = {role.value: role for role in Role}
_STATES = {state.value: state for state in ReplyState}


def _usage(raw: object, where: str) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    counts = [count(raw.get(name), where=where, name=f"usage {name}")
              for name in ("prompt_tokens", "completion_tokens", "total_tokens")]
    return Usage(*counts, estimated=raw.get("estimated") is True)


def _attachments(raw: object, where: str) -> list[Attachment]:
    """Images from the file, checked as if attached now: a damaged one fails the import
    (all or nothing) rather than storing bytes no server would accept."""
    if not isinstance(raw, list):
        raise TransferError(f"{where}: its attachments are not a list.")
    out = []
    for number, item in enumerate(raw, start=1):
        what = f"{where}, image {number}"
        name = item.get("name", "") if isinstance(item, dict) else None
        encoded = item.get("data") if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(encoded, str):
            raise TransferError(f"{what}: it has no data or its name is not text.")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise TransferError(f"{what}: its data is not valid base64.") from None
        mime = sniff_image(data)
        if mime is None:
            raise TransferError(f"{what}: it is not a PNG, JPEG, GIF or WebP image.")
        try:
            check_size(len(data), f"{what} ({name or 'unnamed'})")
        except ValueError as exc:
            raise TransferError(str(exc)) from None
        out.append(Attachment(mime, data, name))
    return out


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _documents(raw: object, where: str) -> list[StoredDocument]:
    """The conversation's documents, checked: a malformed one fails the import."""
    if not isinstance(raw, list):
        raise TransferError(f"{where}: its documents are not a list.")
    out = []
    for number, item in enumerate(raw, start=1):
        what = f"{where}, document {number}"
        if not isinstance(item, dict):
            raise TransferError(f"{what}: it is not an object.")
        sha, name, kind = item.get("sha256"), item.get("name"), item.get("kind")
        if not (isinstance(sha, str) and _SHA256.fullmatch(sha) and isinstance(name, str)
                and isinstance(kind, str) and kind in KIND_LABELS):
            raise TransferError(f"{what}: its hash, name or kind is missing or wrong.")
        pages = item.get("pages")
        sections = item.get("sections")
        if not isinstance(sections, list) or not all(
                isinstance(s, dict) and isinstance(s.get("text"), str)
                and isinstance(s.get("heading", ""), str)
                and (s.get("page") is None or (isinstance(s.get("page"), int)
                                               and not isinstance(s.get("page"), bool)))
                for s in sections):
            raise TransferError(f"{what} ({shown(name)}): its text is missing or malformed.")
        ref = DocumentRef(sha, name, kind,
                          count(item.get("size"), where=what, name="size") or 0,
                          pages if isinstance(pages, int) and not isinstance(pages, bool)
                          else None, count(item.get("tokens"), where=what, name="tokens") or 0)
        out.append(StoredDocument.of(ref, [Section(s["text"], s.get("page"),
                                                   s.get("heading", "")) for s in sections]))
    return out


def _document_parts(raw: object, known: dict[str, DocumentRef], where: str,
                    ) -> list[DocumentRef | Passage]:
    if not isinstance(raw, list):
        raise TransferError(f"{where}: its documents are not a list.")
    out: list[DocumentRef | Passage] = []
    for item in raw:
        sha = item.get("sha256") if isinstance(item, dict) else None
        if not isinstance(sha, str) or sha not in known:
            raise TransferError(f"{where}: it refers to a document the file does not hold.")
        name = item.get("name") if isinstance(item.get("name"), str) else known[sha].name
        part, page = item.get("part"), item.get("page")
        if part == "attached":
            ref = known[sha]
            out.append(DocumentRef(sha, name, ref.kind, ref.size, ref.pages, ref.tokens))
        elif part in ("passage", "whole"):
            out.append(Passage(sha, name, str(item.get("text") or ""),
                               page if isinstance(page, int) and not isinstance(page, bool)
                               else None, str(item.get("heading") or ""),
                               whole=part == "whole"))
        else:
            raise TransferError(f"{where}: a document reference of unknown kind "
                                f"({shown(part)}).")
    return out


# -- Markdown ----------------------------------------------------------------------------------


def export_markdown(store: Store, conversation_id: int) -> str:
    """The conversation as the user sees it (active path): a heading per message with who
    wrote it, the model and the time."""
    conversation = store.conversation(conversation_id)
    if conversation is None:
        raise TransferError("This conversation no longer exists.")
    lines = [f"# {conversation.title or 'Untitled conversation'}", ""]
    started = _when(conversation.created_at)
    about = [f"Started {started}" if started else "Start date unknown"]
    if conversation.model:
        about.insert(0, f"Model: {conversation.model}")
    lines += [" · ".join(about), ""]
    for message in store.active_path(conversation_id):
        lines += _message_markdown(message)
    return "\n".join(lines).rstrip() + "\n"


def _message_markdown(message: Message) -> list[str]:
    who = _ROLE_LABELS[message.role]
    if message.role is Role.ASSISTANT and message.model:
        who += f" ({message.model})"
    if message.sibling_count > 1:
        who += f" — version {message.sibling_index + 1} of {message.sibling_count}"
    when = _when(message.created_at)
    lines = [f"## {who} · {when}" if when else f"## {who}", ""]
    if message.reasoning:
        lines += ["> **Reasoning**", ">", *(f"> {line}" for line in
                                            message.reasoning.splitlines()), ""]
    if message.tool_calls:
        for part in message.parts:
            if type(part) is Text and part.text:
                lines += [part.text, ""]
            elif type(part) is ToolCall:
                lines += tool_call_markdown(part)
    else:
        lines += [message.content, ""] if message.content else []
    for ref in message.documents:
        lines += [f"*Document attached: {ref.name}*", ""]
    if message.passages:
        lines += ["*Sources: " + "; ".join(p.where for p in message.passages) + "*", ""]
    for attachment in message.attachments:
        kind = IMAGE_TYPES.get(attachment.mime, attachment.mime)
        label = f"{attachment.name} " if attachment.name else ""
        lines += [f"*Image attached: {label}({kind}, {_kilobytes(attachment.size)})*", ""]
    note = _STATE_NOTES.get(message.state)
    if note:
        error = server_text(message.error)
        lines += [f"*{note}{' ' + error if error else ''}*", ""]
    return lines


MARKDOWN_RESULT_CHARS = 2000


def tool_call_markdown(call: ToolCall) -> list[str]:
    """A call as readable Markdown: what ran, how it ended, its arguments and its result
    (a long result is cut here; the JSON export has it whole)."""
    took = f" · {call.duration_s:.1f} s" if call.duration_s is not None else ""
    lines = [f"**Tool: {call.label}** · {call.state.value}{took}", ""]
    lines += _fenced(_pretty(call.arguments), "json")
    result = call.result_for_model
    if len(result) > MARKDOWN_RESULT_CHARS:
        cut = len(result) - MARKDOWN_RESULT_CHARS
        result = f"{result[:MARKDOWN_RESULT_CHARS]}\n… ({cut:,} more characters in the JSON export)"
    return lines + _fenced(result, "")


def _pretty(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments or "{}"), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


def _fenced(text: str, language: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", text, fence, ""]


def _kilobytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{-(-size // 1024)} KB"


def _when(epoch: float, fmt: str = "%Y-%m-%d %H:%M") -> str | None:
    """A stored time as a reader's local date, or None for one no calendar holds (1e308,
    infinity, before year 1 or after 9999: a damaged row, an old import): an export says
    the date is unknown rather than failing."""
    try:
        return datetime.fromtimestamp(epoch).astimezone().strftime(fmt)
    except (OverflowError, ValueError, OSError):
        return None


def export_markdown_all(store: Store, directory: Path, progress: Progress | None = None,
                        ) -> list[Path]:
    """One .md file per conversation in `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    summaries = store.list_conversations(limit=None)
    written = []
    for done, summary in enumerate(summaries, start=1):
        path = directory / _file_name(summary.id, summary.title, summary.created_at)
        path.write_text(export_markdown(store, summary.id), encoding="utf-8")
        written.append(path)
        if progress is not None:
            progress(done, len(summaries))
    return written


def _file_name(conversation_id: int, title: str, created_at: float) -> str:
    safe = re.sub(r"[^\w\s-]", "_", title).strip()[:60].strip() or "Untitled"
    day = _when(created_at, "%Y-%m-%d") or "undated"
    return f"{day} {safe} [{conversation_id}].md"
