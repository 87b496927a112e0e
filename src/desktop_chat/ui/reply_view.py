"""One assistant reply inside the transcript's document, rendered as it streams.

Layout of a reply: label block, optional "Thinking" header + reasoning blocks, the answer.
The answer is markdown: finished top-level blocks are rendered once and kept; only the open
tail block is removed and rendered again per paint. Positions are held by cursors parked one
character *before* the region they mark, since Qt moves a cursor sitting exactly where text
is inserted.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from typing import TYPE_CHECKING

from PySide6.QtGui import QColor, QTextBlockFormat, QTextCharFormat, QTextCursor, QTextDocument

from desktop_chat.core.render import markdown
from desktop_chat.core.render.actions import Action, link
from desktop_chat.core.render.guard import GuardedMarkdown, Step
from desktop_chat.core.render.markdown import CodeBlock, Theme
from desktop_chat.ui import plain_text
from desktop_chat.ui.math_images import MathImages

if TYPE_CHECKING:  # markdown-it loads after the first frame (ui/deferred.py)
    from markdown_it.token import Token


def chrome_format(href: str, color: QColor, *, bold: bool = False) -> QTextCharFormat:
    """UI text inside the document: an anchor to one of the view's own links (`link`),
    left out of copies."""
    fmt = QTextCharFormat()
    fmt.setAnchor(True)
    fmt.setAnchorHref(href)
    fmt.setForeground(color)
    if bold:
        fmt.setFontWeight(700)
    return fmt


class ReplyView:
    def __init__(
        self, cursor: QTextCursor, theme: Theme, first_code_index: int, section_id: int,
        math: MathImages | None = None,
    ) -> None:
        """`cursor` stands at the start of the (empty) answer block. `math` draws formulas
        (without it they show as source)."""
        self._doc: QTextDocument = cursor.document()
        self._math = math
        self._math_html = math.html if math is not None else None
        self._theme = theme
        self._muted = QColor(theme.muted)
        self._first_code_index = first_code_index
        self._section_id = section_id
        self._md = GuardedMarkdown()
        self._tail_tokens: list[Token] = []
        self.finished_blocks: list[CodeBlock] = []  # code blocks rendered for good
        self.tail_blocks: list[CodeBlock] = []
        self.reasoning_blocks: tuple[int, int] | None = None  # block numbers, for collapsing
        self._before_answer = self._parked(cursor.position())
        self._before_tail = self._parked(cursor.position())
        self._reasoning: QTextCursor | None = None
        self._thinking_since: float | None = None
        self._answer_since: float | None = None

    # -- streaming ------------------------------------------------------------------------

    def add_reasoning(self, text: str) -> None:
        if self._reasoning is None:
            if self._md.started:  # servers send reasoning first; late reasoning stays in the data
                return
            self._reasoning = self._open_reasoning()
            self._thinking_since = time.monotonic()
        self._reasoning.insertText(text)

    @property
    def thinking_seconds(self) -> float | None:
        """How long the model reasoned before answering (None: not seen live)."""
        if self._thinking_since is None or self._answer_since is None:
            return None
        return self._answer_since - self._thinking_since

    def add_text(self, text: str) -> None:
        if self._answer_since is None and self._reasoning is not None:
            self._answer_since = time.monotonic()
        # One edit block: Qt lays out (and resizes, and scrolls) once for the whole paint,
        # not once each for the old tail out, the finished blocks in and the new tail in.
        edit = QTextCursor(self._doc)
        edit.beginEditBlock()
        try:
            record = True
            while True:
                step = self._md.step(text, record=record)
                if step.plain_starts or step.plain or step.plain_ends:
                    self._add_plain(step)  # too big or slow to format: see core/render/guard
                else:
                    self._add_blocks(step.finished, step.tail)
                if not step.rest:
                    break
                text, record = step.rest, False
        finally:
            edit.endEditBlock()

    def _add_blocks(self, finished: list[Token], tail: list[Token]) -> None:
        started = time.perf_counter()
        cursor = self._clear_tail()
        cleared_s = time.perf_counter() - started
        if finished:
            rendered = markdown.render_tokens(finished, self._theme,
                                              first_code_index=self._code_index(),
                                              math=self._math_html)
            self._insert(cursor, rendered.html)
            self.finished_blocks += rendered.code_blocks
            cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
            self._before_tail.setPosition(cursor.position() - 1)
        self._tail_tokens = tail
        # The open tail is shown without syntax colours: it is drawn again every paint.
        started = time.perf_counter()
        self._render_tail(cursor, highlight=False)
        self._md.tail_shown(cleared_s + time.perf_counter() - started)

    def finish(self) -> None:
        """The final render (syntax colours, reference links); the transcript adds the notes
        and cards under it."""
        if self._md.in_plain_block:
            self.tail_blocks = []  # shown as plain text, which stays
        elif self._md.needs_full_render():  # reference links reach back into earlier blocks
            cursor = self._select_from(self._before_answer)
            cursor.removeSelectedText()
            rendered = markdown.render(self._md.text, self._theme,
                                       first_code_index=self._first_code_index,
                                       math=self._math_html)
            start = cursor.position()
            cursor.insertHtml(rendered.html)
            if self._math is not None:
                self._math.inserted(start, cursor.position())
            self.finished_blocks, self.tail_blocks = rendered.code_blocks, []
        elif any(len(b.code) <= markdown.HIGHLIGHT_LIMIT for b in self.tail_blocks):
            self._render_tail(self._clear_tail(), highlight=True)  # its code gets colours
        self.finished_blocks += self.tail_blocks
        self.tail_blocks = []
        self._close_reasoning()

    # -- helpers --------------------------------------------------------------------------

    def _add_plain(self, step: Step) -> None:
        """A block too big or too slow to format, as plain text (ui/plain_text.py)."""
        if step.finished:
            self._add_blocks(step.finished, [])
        if step.plain_starts:
            cursor = self._clear_tail()
            self._tail_tokens, self.tail_blocks = [], []
            plain_text.start(cursor, self._muted)
        cursor = QTextCursor(self._doc)
        cursor.movePosition(QTextCursor.MoveOperation.End)
        plain_text.append(cursor, step.plain)
        if step.plain_ends:  # formatting resumes in a fresh block below
            if cursor.block().length() > 1:  # (the blank line that ended it may be one)
                cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
            self._before_tail.setPosition(cursor.position() - 1)

    def _code_index(self) -> int:
        return self._first_code_index + len(self.finished_blocks)

    def _render_tail(self, cursor: QTextCursor, *, highlight: bool) -> None:
        if not self._tail_tokens:
            self.tail_blocks = []
            return
        rendered = markdown.render_tokens(self._tail_tokens, self._theme, highlight=highlight,
                                          first_code_index=self._code_index(),
                                          math=self._math_html)
        self._insert(cursor, rendered.html)
        self.tail_blocks = rendered.code_blocks

    def _insert(self, cursor: QTextCursor, html: str) -> None:
        start = cursor.position()
        _insert_html(cursor, html)
        if self._math is not None:  # formulas still being drawn: where they stand
            self._math.inserted(start, cursor.position())

    def _clear_tail(self) -> QTextCursor:
        cursor = self._select_from(self._before_tail)
        cursor.removeSelectedText()
        # The emptied block would keep the old tail's list membership and formats, and the
        # new tail would render inside them (a list item drawn twice, stray spacing).
        if (old_list := cursor.currentList()) is not None:
            old_list.remove(cursor.block())
        cursor.setBlockFormat(QTextBlockFormat())
        cursor.setCharFormat(QTextCharFormat())
        return cursor

    def _select_from(self, parked: QTextCursor) -> QTextCursor:
        cursor = QTextCursor(self._doc)
        cursor.setPosition(parked.position() + 1)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        return cursor

    def _parked(self, position: int) -> QTextCursor:
        cursor = QTextCursor(self._doc)
        cursor.setPosition(position - 1)
        return cursor

    def _open_reasoning(self) -> QTextCursor:
        """Header and an italic block above the (still empty) answer."""
        cursor = QTextCursor(self._doc)
        cursor.setPosition(self._before_answer.position())
        cursor.insertBlock(QTextBlockFormat())
        toggle = link(Action.TOGGLE, self._section_id)
        cursor.insertText("Thinking…", chrome_format(toggle, self._muted))
        cursor.insertBlock(QTextBlockFormat())
        self._reasoning_first = cursor.block().blockNumber()
        fmt = QTextCharFormat()
        fmt.setFontItalic(True)
        fmt.setForeground(self._muted)
        cursor.setCharFormat(fmt)
        return cursor

    def _close_reasoning(self) -> None:
        if self._reasoning is not None:
            self.reasoning_blocks = (self._reasoning_first, self._reasoning.block().blockNumber())


_LEADING_TAGS = re.compile(r"^(?:\s*<(?:p|h[1-6]|blockquote)\b[^>]*>)+")


def _insert_html(cursor: QTextCursor, html: str) -> None:
    """Insert rendered blocks at an empty block as a one-shot render would lay them out.

    Qt merges the first inserted block into the block at the cursor and keeps that block's
    format: a paragraph or heading lost its spacing. A list cannot merge at all, and left the
    empty block above it as a blank line."""
    start = cursor.block()
    was_empty = start.length() == 1
    cursor.insertHtml(html)
    if not was_empty:
        return
    if start.length() > 1:  # merged: give it the format its element has
        if (match := _LEADING_TAGS.match(html)) is not None:
            QTextCursor(start).setBlockFormat(
                _block_format(match.group(0), cursor.document().defaultStyleSheet()))
        return
    if html.lstrip().startswith("<table"):
        # A table (a code block too) needs a block before it: keep it, but take no room.
        # Told from the markup: inside an edit block, Qt places the table's frame at the end.
        flat = QTextBlockFormat()
        flat.setLineHeight(0, QTextBlockFormat.LineHeightTypes.FixedHeight.value)
        QTextCursor(start).setBlockFormat(flat)
        return
    after = start.next()  # still empty: the list starts below it
    if not after.isValid() or after.textList() is None:
        return
    fmt, char_fmt, text_list = after.blockFormat(), after.charFormat(), after.textList()
    merged = QTextCursor(start)
    merged.movePosition(QTextCursor.MoveOperation.NextBlock, QTextCursor.MoveMode.KeepAnchor)
    merged.removeSelectedText()  # only the empty block's end: the item's text moves up
    merged.setBlockFormat(fmt)
    merged.setBlockCharFormat(char_fmt)
    if merged.block().textList() is None:
        text_list.add(merged.block())


@lru_cache(maxsize=64)
def _block_format(leading_tags: str, stylesheet: str) -> QTextBlockFormat:
    """The block format Qt gives the first block of an element (margins, heading level,
    quote indent), from a one-word sample: the same for any content."""
    sample = QTextDocument()
    sample.setDefaultStyleSheet(stylesheet)
    sample.setHtml(f"{leading_tags}x")
    return QTextBlockFormat(sample.begin().blockFormat())


