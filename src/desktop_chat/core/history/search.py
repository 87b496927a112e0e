"""Full-text search over the history: FTS5 when sqlite has it, a LIKE scan when it does not.

What the user types is never handed to FTS5 as query syntax: each word becomes a quoted
prefix term, so quotes, `AND`, `NEAR(`, `*` or `-` are just text and cannot cause an error.
Titles are short and few, so they are matched with LIKE (substring) in both modes.
"""

from __future__ import annotations

import re
import sqlite3

from desktop_chat.core.history.records import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    TITLE_SHOWN_CHARS,
    SearchHit,
    lenient_text,
    shown_title,
)
from desktop_chat.core.history.schema import FTS_TABLE

SNIPPET_CHARS = 80
_WORD = re.compile(r"\w+")


def terms(query: str) -> list[str]:
    """The words of a query, as the unicode61 tokenizer would see them."""
    return _WORD.findall(query)


def fts_query(words: list[str]) -> str:
    """`"word"*` per word, implicitly ANDed; `\\w+` words contain no quote to escape."""
    return " ".join(f'"{word}"*' for word in words)


def like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_titles(conn: sqlite3.Connection, words: list[str], limit: int) -> list[SearchHit]:
    where = " AND ".join(["title LIKE ? ESCAPE '\\'"] * len(words))
    rows = conn.execute(
        f"SELECT id, substr(title, 1, ?) AS title, updated_at FROM conversations "
        f"WHERE deleted_at IS NULL AND {where} ORDER BY updated_at DESC LIMIT ?",
        [TITLE_SHOWN_CHARS + 1, *map(like_pattern, words), limit],
    ).fetchall()
    return [
        SearchHit(row["id"], None, shown_title(row["title"]),
                  mark(shown_title(row["title"]), words), row["updated_at"])
        for row in rows
    ]


def search_messages_fts(conn: sqlite3.Connection, words: list[str], limit: int,
                        ) -> list[SearchHit]:
    rows = conn.execute(
        f"SELECT m.id, m.conversation_id, substr(c.title, 1, ?) AS title, c.updated_at, "
        f"snippet({FTS_TABLE}, 0, ?, ?, '…', 12) AS snippet "
        f"FROM {FTS_TABLE} JOIN messages m ON m.id = {FTS_TABLE}.rowid "
        "JOIN conversations c ON c.id = m.conversation_id "
        f"WHERE {FTS_TABLE} MATCH ? AND c.deleted_at IS NULL ORDER BY rank LIMIT ?",
        (TITLE_SHOWN_CHARS + 1, HIGHLIGHT_START, HIGHLIGHT_END, fts_query(words), limit),
    ).fetchall()
    return [_message_hit(row, lenient_text(row["snippet"])) for row in rows]


def search_messages_like(conn: sqlite3.Connection, words: list[str], limit: int,
                         ) -> list[SearchHit]:
    where = " AND ".join(["m.content LIKE ? ESCAPE '\\'"] * len(words))
    rows = conn.execute(
        "SELECT m.id, m.conversation_id, m.content, substr(c.title, 1, ?) AS title, "
        "c.updated_at FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        f"WHERE c.deleted_at IS NULL AND {where} ORDER BY m.id DESC LIMIT ?",
        [TITLE_SHOWN_CHARS + 1, *map(like_pattern, words), limit],
    ).fetchall()
    return [_message_hit(row, snippet(lenient_text(row["content"]), words)) for row in rows]


def _message_hit(row: sqlite3.Row, text: str) -> SearchHit:
    return SearchHit(row["conversation_id"], row["id"], shown_title(row["title"]), text,
                     row["updated_at"])


def snippet(text: str, words: list[str], width: int = SNIPPET_CHARS) -> str:
    """A window of `text` around the first matched word, matches marked."""
    lowered = text.lower()
    found = [i for i in (lowered.find(w.lower()) for w in words) if i >= 0]
    start = max(0, min(found, default=0) - width // 3)
    piece = " ".join(text[start:start + width].split())
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(text) else ""
    return prefix + mark(piece, words) + suffix


def mark(text: str, words: list[str]) -> str:
    if not words:
        return text
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    return pattern.sub(lambda m: f"{HIGHLIGHT_START}{m.group(0)}{HIGHLIGHT_END}", text)
