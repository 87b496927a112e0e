"""Documents in the history database: each one stored once per content hash (its sections,
and its passages indexed with FTS5 for BM25 ranking), linked to the messages that attached it
and to the replies that were given passages of it.

The tables are made when the first document is kept (`ensure_tables` says why). A document
goes with the last message that links it (a trigger), so deleting the last
conversation that used a file removes its text too; one attached but never sent is removed by
`forget_unused` after a while.

Queries from prompts are never FTS5 syntax: each word becomes a quoted term and the terms are
ORed, so BM25 ranks passages by how many of the question's rarer words they hold.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from desktop_chat.core.documents.chunks import Chunk, chunk_sections
from desktop_chat.core.documents.extract import Section
from desktop_chat.core.history.records import DamagedRow, StoreError
from desktop_chat.core.history.schema import _run_script, fts5_available
from desktop_chat.core.model.message import DocumentRef, Message, Passage

DOCUMENT_FTS = "document_fts"
# How many passages one search returns at most (the chat picks what fits its budget).
SEARCH_LIMIT = 40

TABLES = """
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    pages INTEGER,
    tokens INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE document_sections (
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    page INTEGER,
    heading TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    PRIMARY KEY (document_id, position)
);
CREATE TABLE document_chunks (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    page INTEGER,
    heading TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    UNIQUE (document_id, position)
);
CREATE TABLE message_documents (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    part TEXT NOT NULL,
    name TEXT NOT NULL,
    page INTEGER,
    heading TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (message_id, position)
);
CREATE INDEX message_documents_document ON message_documents(document_id);
CREATE TRIGGER message_documents_last AFTER DELETE ON message_documents
WHEN NOT EXISTS (SELECT 1 FROM message_documents WHERE document_id = old.document_id)
BEGIN
    DELETE FROM documents WHERE id = old.document_id;
END;
"""

INDEX = f"""
CREATE VIRTUAL TABLE {DOCUMENT_FTS} USING fts5(
    text, heading, content='document_chunks', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER document_chunks_fts_insert AFTER INSERT ON document_chunks BEGIN
    INSERT INTO {DOCUMENT_FTS}(rowid, text, heading) VALUES (new.id, new.text, new.heading);
END;
CREATE TRIGGER document_chunks_fts_delete AFTER DELETE ON document_chunks BEGIN
    INSERT INTO {DOCUMENT_FTS}({DOCUMENT_FTS}, rowid, text, heading)
        VALUES ('delete', old.id, old.text, old.heading);
END;
"""

# The parts of a message, as `message_documents.part` names them.
ATTACHED, PASSAGE, WHOLE = "attached", "passage", "whole"


def has_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                       "'message_documents'").fetchone()
    return row is not None


def ensure_tables(conn: sqlite3.Connection) -> bool:
    """Create the tables (in the caller's transaction) unless they exist; True if created.

    Why on first use rather than in a numbered migration: sqlite keeps every table's
    definition in its schema b-tree, which fits one 4 KiB page today. These tables and their
    FTS5 index would spread it over three pages, and the schema is what recovery must read
    to salvage anything from a damaged file (tests/core/test_recovery.py): a history that
    never had a document keeps the compact schema, hence its chances. The caller takes the
    same backup a migration does before adding them to a history with messages in it."""
    if has_tables(conn):
        return False
    _run_script(conn, TABLES)
    if fts5_available(conn):
        _run_script(conn, INDEX)
    return True


def has_index(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                       (DOCUMENT_FTS,)).fetchone()
    return row is not None


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """What `add_document` writes: the reference, its sections, its passages."""

    ref: DocumentRef
    sections: list[Section]
    chunks: list[Chunk]

    @classmethod
    def of(cls, ref: DocumentRef, sections: list[Section]) -> StoredDocument:
        return cls(ref, sections, chunk_sections(sections))


def add_document(conn: sqlite3.Connection, document: StoredDocument) -> int:
    """Write it unless a document with the same hash is there; returns its id. Creates the
    tables on first use (see `ensure_tables`)."""
    ensure_tables(conn)
    ref = document.ref
    found = document_id(conn, ref.sha256)
    if found is not None:
        return found
    cursor = conn.execute(
        "INSERT INTO documents (sha256, name, kind, size, pages, tokens, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ref.sha256, ref.name, ref.kind, ref.size, ref.pages, ref.tokens, time.time()))
    doc_id = int(cursor.lastrowid or 0)
    conn.executemany(
        "INSERT INTO document_sections (document_id, position, page, heading, text) "
        "VALUES (?, ?, ?, ?, ?)",
        [(doc_id, n, s.page, s.heading, s.text) for n, s in enumerate(document.sections)])
    conn.executemany(
        "INSERT INTO document_chunks (document_id, position, page, heading, text) "
        "VALUES (?, ?, ?, ?, ?)",
        [(doc_id, c.position, c.page, c.heading, c.text) for c in document.chunks])
    return doc_id


def document_id(conn: sqlite3.Connection, sha256: str) -> int | None:
    if not has_tables(conn):
        return None
    row = conn.execute("SELECT id FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
    return None if row is None else int(row[0])


def document_ref(conn: sqlite3.Connection, sha256: str) -> DocumentRef | None:
    if not has_tables(conn):
        return None
    row = conn.execute("SELECT sha256, name, kind, size, pages, tokens FROM documents "
                       "WHERE sha256 = ?", (sha256,)).fetchone()
    return None if row is None else _ref(row, row["name"])


def sections(conn: sqlite3.Connection, sha256: str) -> list[Section]:
    if not has_tables(conn):
        return []
    rows = conn.execute(
        "SELECT s.page, s.heading, s.text FROM document_sections s JOIN documents d ON "
        "d.id = s.document_id WHERE d.sha256 = ? ORDER BY s.position", (sha256,)).fetchall()
    return [Section(str(r["text"]), r["page"], str(r["heading"] or "")) for r in rows]


def search(conn: sqlite3.Connection, shas: Sequence[str], words: Sequence[str],
           limit: int = SEARCH_LIMIT) -> list[Passage]:
    """The best passages of these documents for these words, best first (BM25; without
    FTS5, passages holding the most of the words, in document order)."""
    if not shas or not words or not has_tables(conn):
        return []
    marks = ", ".join("?" * len(shas))
    if has_index(conn):
        rows = _best_matches(conn, "d.sha256, d.name, c.page, c.heading, c.text", shas, words,
                             limit)
    else:
        score = " + ".join(["(instr(lower(c.text), ?) > 0)"] * len(words))
        rows = conn.execute(
            f"SELECT d.sha256, d.name, c.page, c.heading, c.text, ({score}) AS hits "
            f"FROM document_chunks c JOIN documents d ON d.id = c.document_id "
            f"WHERE d.sha256 IN ({marks}) AND hits > 0 ORDER BY hits DESC, c.id LIMIT ?",
            (*[w.lower() for w in words], *shas, limit)).fetchall()
    return [Passage(r["sha256"], str(r["name"]), str(r["text"]), r["page"],
                    str(r["heading"] or "")) for r in rows]


def first_passages(conn: sqlite3.Connection, shas: Sequence[str], per_document: int,
                   ) -> list[Passage]:
    """The first passages of each document, in order: what a prompt gets when none of its
    words is in them ("summarise this")."""
    if not shas or not has_tables(conn):
        return []
    rows = conn.execute(
        "SELECT d.sha256, d.name, c.page, c.heading, c.text FROM document_chunks c JOIN "
        f"documents d ON d.id = c.document_id WHERE d.sha256 IN ({', '.join('?' * len(shas))})"
        " AND c.position < ? ORDER BY c.position, d.id", (*shas, per_document)).fetchall()
    return [Passage(r["sha256"], str(r["name"]), str(r["text"]), r["page"],
                    str(r["heading"] or "")) for r in rows]


# -- embedding vectors (hybrid retrieval, core/chat/retrieval.py) ---------------------------

# One row per passage and embeddings model: a document's passages are embedded once per
# content hash (a passage belongs to one kept document) and model, whatever conversations use
# it; the vector is float32, little-endian. Made on first use, like the tables above.
VECTORS = """
CREATE TABLE document_vectors (
    chunk_id INTEGER NOT NULL REFERENCES document_chunks(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (chunk_id, model)
) WITHOUT ROWID;
"""


def has_vectors(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                       "'document_vectors'").fetchone()
    return row is not None


def ensure_vectors(conn: sqlite3.Connection) -> bool:
    """Create the vectors table (in the caller's transaction) unless it exists."""
    if has_vectors(conn):
        return False
    _run_script(conn, VECTORS)
    return True


def unembedded(conn: sqlite3.Connection, shas: Sequence[str], model: str,
               ) -> list[tuple[int, str]]:
    """(passage id, text) of these documents' passages with no vector for `model` yet."""
    if not shas or not has_tables(conn):
        return []
    marks = ", ".join("?" * len(shas))
    missing = ("" if not has_vectors(conn) else
               "AND NOT EXISTS (SELECT 1 FROM document_vectors v WHERE v.chunk_id = c.id "
               "AND v.model = ?)")
    rows = conn.execute(
        f"SELECT c.id, c.heading, c.text FROM document_chunks c JOIN documents d ON d.id = "
        f"c.document_id WHERE d.sha256 IN ({marks}) {missing} ORDER BY c.id",
        (*shas, *([model] if missing else []))).fetchall()
    return [(int(r["id"]), embedding_text(str(r["heading"] or ""), str(r["text"])))
            for r in rows]


def embedding_text(heading: str, text: str) -> str:
    """What is embedded for a passage: its heading gives it its context."""
    return f"{heading}\n{text}" if heading else text


def add_vectors(conn: sqlite3.Connection, model: str, rows: Sequence[tuple[int, bytes]],
                ) -> None:
    ensure_vectors(conn)
    conn.executemany("INSERT OR REPLACE INTO document_vectors (chunk_id, model, vector) "
                     "VALUES (?, ?, ?)", [(cid, model, blob) for cid, blob in rows])


def vectors(conn: sqlite3.Connection, sha256: str, model: str) -> list[tuple[int, bytes]]:
    """(passage id, float32 vector) of one document's passages for `model`."""
    if not has_tables(conn) or not has_vectors(conn):
        return []
    rows = conn.execute(
        "SELECT v.chunk_id, v.vector FROM document_vectors v JOIN document_chunks c ON c.id = "
        "v.chunk_id JOIN documents d ON d.id = c.document_id WHERE d.sha256 = ? AND "
        "v.model = ? ORDER BY v.chunk_id", (sha256, model)).fetchall()
    return [(int(r[0]), bytes(r[1])) for r in rows]


def search_ids(conn: sqlite3.Connection, shas: Sequence[str], words: Sequence[str],
               limit: int = SEARCH_LIMIT) -> list[tuple[int, float]]:
    """(passage id, BM25 score: lower is better) of these documents' passages for these
    words, best first (FTS5 only)."""
    if not shas or not words or not has_tables(conn) or not has_index(conn):
        return []
    rows = _best_matches(conn, f"c.id, bm25({DOCUMENT_FTS}, 1.0, 0.5)", shas, words, limit)
    return [(int(r[0]), float(r[1])) for r in rows]


def _best_matches(conn: sqlite3.Connection, columns: str, shas: Sequence[str],
                  words: Sequence[str], limit: int) -> list[sqlite3.Row]:
    """`columns` of the passages of these documents that hold any of the words, best BM25
    first (d: the document, c: the passage)."""
    marks = ", ".join("?" * len(shas))
    query = " OR ".join(f'"{w}"' for w in words)
    return conn.execute(
        f"SELECT {columns} FROM {DOCUMENT_FTS} f JOIN document_chunks c ON c.id = f.rowid "
        f"JOIN documents d ON d.id = c.document_id WHERE {DOCUMENT_FTS} MATCH ? AND "
        f"d.sha256 IN ({marks}) ORDER BY bm25({DOCUMENT_FTS}, 1.0, 0.5) LIMIT ?",
        (query, *shas, limit)).fetchall()


def passages_by_id(conn: sqlite3.Connection, ids: Sequence[int]) -> list[Passage]:
    """These passages, in the order of `ids` (ids no longer there are left out)."""
    if not ids or not has_tables(conn):
        return []
    rows = conn.execute(
        "SELECT c.id, d.sha256, d.name, c.page, c.heading, c.text FROM document_chunks c "
        f"JOIN documents d ON d.id = c.document_id WHERE c.id IN ({', '.join('?' * len(ids))})",
        list(ids)).fetchall()
    found = {int(r["id"]): Passage(r["sha256"], str(r["name"]), str(r["text"]), r["page"],
                                   str(r["heading"] or "")) for r in rows}
    return [found[i] for i in ids if i in found]


# -- links between messages and documents ------------------------------------------------------


def insert_parts(conn: sqlite3.Connection, message_id: int, message: Message) -> None:
    """Write the message's document parts (replacing any it had)."""
    ensure_tables(conn)
    conn.execute("DELETE FROM message_documents WHERE message_id = ?", (message_id,))
    rows = []
    for position, part in enumerate(p for p in message.parts
                                    if isinstance(p, DocumentRef | Passage)):
        doc = document_id(conn, part.sha256)
        if doc is None:
            raise StoreError(f"The document '{part.name}' is not in the history any more; "
                             "attach it again.", "a document is missing")
        if isinstance(part, DocumentRef):
            rows.append((message_id, position, doc, ATTACHED, part.name, None, "", ""))
        else:
            rows.append((message_id, position, doc, WHOLE if part.whole else PASSAGE,
                         part.name, part.page, part.heading, part.text))
    conn.executemany(
        "INSERT INTO message_documents (message_id, position, document_id, part, name, page, "
        "heading, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def part_rows(conn: sqlite3.Connection, message_ids: Sequence[int]) -> list[sqlite3.Row]:
    rows: list[sqlite3.Row] = []
    if not message_ids or not has_tables(conn):
        return rows
    for start in range(0, len(message_ids), 500):
        chunk = list(message_ids[start:start + 500])
        rows += conn.execute(
            "SELECT l.message_id, l.position, l.part, l.name, l.page, l.heading, l.text, "
            "d.sha256, d.kind, d.size, d.pages, d.tokens FROM message_documents l "
            "JOIN documents d ON d.id = l.document_id "
            f"WHERE l.message_id IN ({', '.join('?' * len(chunk))}) "
            "ORDER BY l.message_id, l.position", chunk).fetchall()
    return rows


def part_from_row(row: sqlite3.Row) -> DocumentRef | Passage:
    part = row["part"]
    name = row["name"]
    if not isinstance(name, str) or not isinstance(row["sha256"], str):
        raise DamagedRow(f"document link of message {row['message_id']}: no name")
    if part == ATTACHED:
        return _ref(row, name)
    if part in (PASSAGE, WHOLE):
        page = row["page"]
        if page is not None and not isinstance(page, int):
            raise DamagedRow(f"document link of message {row['message_id']}: page {page!r}")
        return Passage(row["sha256"], name, str(row["text"] or ""), page,
                       str(row["heading"] or ""), whole=part == WHOLE)
    raise DamagedRow(f"document link of message {row['message_id']}: part {part!r}")


def _ref(row: sqlite3.Row, name: str) -> DocumentRef:
    pages = row["pages"]
    return DocumentRef(row["sha256"], name, str(row["kind"]), int(row["size"] or 0),
                       pages if isinstance(pages, int) else None, int(row["tokens"] or 0))


def forget_unused(conn: sqlite3.Connection, older_than_s: float) -> int:
    """Remove documents read for a message that was never sent."""
    if not has_tables(conn):
        return 0
    return conn.execute(
        "DELETE FROM documents WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM "
        "message_documents l WHERE l.document_id = documents.id)",
        (time.time() - older_than_s,)).rowcount
