"""What a prompt gets from the conversation's documents.

A document is read once, when attached (`read_document`, in a worker thread): its text is
extracted, counted, cut into passages and kept in the history. Each prompt then gets, in its
request, either every document whole (when together they fit the budget: a share of the
model's context window, a setting) or the passages that best match the prompt across all of
the conversation's documents (BM25 over the history's FTS5 index), as many as fit. A small
document is sent whole even when a large one beside it is searched. Each piece is labelled
with its source (file, page), and the reply keeps the list (`Passage` parts): that is what the
window shows under it as sources, and the exact text sent can be rebuilt from it
(`context_text`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from desktop_chat.core.chat.usage import estimate_tokens
from desktop_chat.core.documents.extract import (
    MAX_DOCUMENT_BYTES,
    DocumentError,
    Extracted,
    Progress,
    extract_bytes,
    extract_file,
    size_text,
    whole_text,
)
from desktop_chat.core.history.documents import StoredDocument
from desktop_chat.core.history.store import Store
from desktop_chat.core.model.message import DocumentRef, Message, Passage, Role

log = logging.getLogger("desktop_chat.documents")

DEFAULT_SHARE = 0.5  # of the context window, for documents (Settings.document_share)
# When the profile does not say how large the model's window is: what small local models have.
UNKNOWN_WINDOW = 8192
# A document this small (share of the budget) goes whole even beside a large searched one.
SMALL_SHARE = 0.15
MAX_PASSAGES = 24

INTRO = ("The user attached the documents below. Use them to answer where they are relevant, "
         "and name the source (file, and page when given) of what you use from them.")


def read_document(store: Store, path: Path, progress: Progress | None = None) -> DocumentRef:
    """Extract, count, index and keep the document at `path`; for a worker thread. Raises
    DocumentError (a ValueError, user text) or StoreError (user text)."""
    return _keep(store, extract_file(path, progress))


def read_data(store: Store, data: bytes, name: str, progress: Progress | None = None,
              ) -> DocumentRef:
    """The same for a document that is no file (an MCP server's resource): its bytes and a
    name that tells its kind."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"'{name}' is {size_text(len(data))}; documents up to "
                            f"{size_text(MAX_DOCUMENT_BYTES)} can be attached.")
    return _keep(store, extract_bytes(data, name, progress))


def _keep(store: Store, extracted: Extracted) -> DocumentRef:
    # counted section by section: one regex call over a whole book holds the GIL for ~60 ms,
    # which the window's loop (on the GUI thread) would feel as a stall
    tokens = sum(estimate_tokens(s.text) + 4 for s in extracted.sections)
    ref = DocumentRef(extracted.sha256, extracted.name, extracted.kind, extracted.size,
                      extracted.pages, tokens)
    if (known := store.document(ref.sha256)) is not None:  # read before: kept once
        return DocumentRef(known.sha256, ref.name, known.kind, known.size, known.pages,
                           known.tokens)
    return store.add_document(StoredDocument.of(ref, extracted.sections))


def budget_for(context_window: int, share: float) -> int:
    """Tokens the documents may take in one request."""
    window = context_window if context_window > 0 else UNKNOWN_WINDOW
    return max(256, int(window * min(max(share, 0.05), 0.9)))


def fits_whole(ref: DocumentRef, budget: int) -> bool:
    return ref.tokens <= budget


def conversation_documents(messages: Sequence[Message]) -> list[DocumentRef]:
    """The documents attached anywhere on this path, each once (the newest name wins)."""
    found: dict[str, DocumentRef] = {}
    for message in messages:
        if message.role is Role.USER:
            for ref in message.documents:
                found.pop(ref.sha256, None)
                found[ref.sha256] = ref
    return list(found.values())


def searched_documents(documents: Sequence[DocumentRef], budget: int) -> list[DocumentRef]:
    """The documents a prompt searches (the rest are sent whole): none when all fit."""
    if sum(d.tokens for d in documents) <= budget:
        return []
    return [d for d in documents if d.tokens > budget * SMALL_SHARE]


def choose(store: Store, documents: Sequence[DocumentRef], prompt: str, budget: int,
           found: Sequence[Passage] | None = None) -> list[Passage]:
    """What to send: documents whole while they fit, else the best passages: `found` (from
    hybrid retrieval, core/chat/retrieval.py) or BM25's."""
    if not documents:
        return []
    searched = searched_documents(documents, budget)
    if not searched:
        return [Passage(d.sha256, d.name, whole=True) for d in documents]
    whole = [d for d in documents if d not in searched]
    spent = sum(d.tokens for d in whole)
    chosen = [Passage(d.sha256, d.name, whole=True) for d in whole]
    names = {d.sha256: d.name for d in searched}
    found = list(found) if found is not None else store.search_documents(list(names), prompt)
    if not found:  # none of its words is in them ("summarise this"): their beginnings
        found = store.first_passages(list(names), MAX_PASSAGES)
    for passage in found[:MAX_PASSAGES * 2]:
        cost = estimate_tokens(passage.text) + 12
        if spent + cost > budget or len(chosen) >= MAX_PASSAGES + len(whole):
            break
        # named as attached in this conversation (the kept copy may carry another name)
        chosen.append(Passage(passage.sha256, names.get(passage.sha256, passage.name),
                              passage.text, passage.page, passage.heading))
        spent += cost
    return chosen


def context_text(store: Store, passages: Sequence[Passage]) -> str:
    """The text put before the prompt for these passages: exactly what was sent (a whole
    document's text is read back from the history)."""
    blocks = [INTRO]
    for passage in passages:
        text = passage.text
        if passage.whole:
            text = whole_text(store.document_sections(passage.sha256))
            if not text:
                log.warning("document %s… is not in the history any more", passage.sha256[:8])
                continue
        blocks.append(f'<document source="{_attribute(passage.where)}">\n{text}\n</document>')
    return "\n\n".join(blocks)


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def with_context(message: dict[str, Any], context: str) -> dict[str, Any]:
    """The last user message of a request with the documents' text before the prompt."""
    content = message.get("content")
    if isinstance(content, list):
        return {**message, "content": [{"type": "text", "text": context}, *content]}
    prompt = content or ""
    return {**message, "content": f"{context}\n\n---\n\n{prompt}" if prompt else context}


_WORD = re.compile(r"\w+")


def snippet(text: str, near: str, words: int = 22) -> str:
    """About `words` words of `text`: the stretch sharing most words with `near` (the reply
    that used it), which is what a source line quotes."""
    wanted = {w.lower() for w in _WORD.findall(near) if len(w) > 2}
    tokens = text.split()
    if len(tokens) <= words:
        return " ".join(tokens)
    hits = [int(bool(wanted & {w.lower() for w in _WORD.findall(t)})) for t in tokens]
    best = 0
    score = current = sum(hits[:words])
    for start in range(1, len(tokens) - words + 1):
        current += hits[start + words - 1] - hits[start - 1]
        if current > score:
            best, score = start, current
    quote = " ".join(tokens[best:best + words])
    return ("…" if best else "") + quote + ("…" if best + words < len(tokens) else "")
