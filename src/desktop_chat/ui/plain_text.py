"""Text shown as it is, not formatted: a block of a reply too big or too slow to format
(see core/render/guard.py), appended piece by piece.

Qt lays a whole block (paragraph) out again whenever text is added to it, and wraps an
unbroken run in quadratic time: so a long line is kept in blocks of at most `BLOCK_CHARS`
characters, with invisible break opportunities (ZWSP, removed again on copy) in long runs.
The note above the text is chrome (a `dc-note:` link): a selection copy leaves it out.
"""

from __future__ import annotations

from PySide6.QtGui import (
    QColor,
    QFontDatabase,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
)

from desktop_chat.core.render.actions import Action, link
from desktop_chat.core.render.markdown import break_long_runs_text

BLOCK_CHARS = 4_000
NOTE = "Shown as plain text: this part is too large to format without slowing the window."


def start(cursor: QTextCursor, muted: QColor) -> None:
    """At an empty block: the note, then the (empty) block the text goes into."""
    note = QTextCharFormat()
    note.setAnchor(True)
    note.setAnchorHref(link(Action.NOTE))
    note.setForeground(muted)
    note.setFontItalic(True)
    cursor.insertText(NOTE, note)
    cursor.insertBlock(QTextBlockFormat(), _plain_format())


def append(cursor: QTextCursor, text: str) -> None:
    """Add `text` at `cursor` (the end of the plain block)."""
    if not text:
        return
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    column = cursor.block().length() - 1
    out: list[str] = []
    for number, line in enumerate(text.split("\n")):
        if number:
            out.append("\n")
            column = 0
        while column + len(line) > BLOCK_CHARS:
            take = max(0, BLOCK_CHARS - column)
            out += [break_long_runs_text(line[:take]), "\n"]
            line, column = line[take:], 0
        out.append(break_long_runs_text(line))
        column += len(line)
    cursor.insertText("".join(out), _plain_format())


def _plain_format() -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    return fmt
