"""Formatting that never costs the window more than a few frames, whatever a server sends.

Markdown is parsed again for the open block on every paint (see `IncrementalMarkdown`), and
the view lays the result out again: a block that keeps growing (a 5 MB table, a 1 MB line, a
2 MB code fence) or that is slow to parse for its size (50,000 "[") would make every paint
cost more than the one before, until the window freezes. `GuardedMarkdown` watches each
parse: once the open block is larger than `TAIL_LIMIT` characters, or parsing or showing it
once took longer than `SLOW_TAIL_S` (Qt lays a 100-row table out in ~50 ms), the block is
given up on and shown as plain text from then on, appended piece by piece, until it ends (its
closing fence, or a blank line). Formatting resumes after it. A block nested deeper than
markdown-it's limit (it drops what lies deeper) is shown as plain text too, and so is all of a
reply past its first `FORMAT_LIMIT` characters: whenever a table (a code block is one) comes
or goes, Qt rescans the whole document's frames, a cost that grows with the document. The
text itself is untouched: it is only shown differently.

The other limits bound one-shot work at the end of a reply or on a copy: a whole-reply
render (reference links, the clipboard's HTML) only up to `FULL_RENDER_LIMIT` characters of
ordinary text; syntax colours only up to `markdown.HIGHLIGHT_LIMIT` characters of code.
"""

from __future__ import annotations

import functools
import html
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from desktop_chat.core.render.markdown import (
    IncrementalMarkdown,
    has_reference_definitions,
    max_nesting,
)

if TYPE_CHECKING:  # markdown-it itself loads after the window's first frame
    from markdown_it.token import Token

FORMAT_LIMIT = 500_000  # characters of one reply formatted; the rest is shown as plain text
TAIL_LIMIT = 24_000  # characters of one open block parsed and laid out again per paint
SLOW_TAIL_S = 0.03  # parsing, or showing, the open block once took longer than this
FULL_RENDER_LIMIT = 40_000  # a one-shot render of ordinary markdown: ~3 us per character
# Inline markup that markdown-it must try to pair up ("[" looks for "]", "*" for "*"): in
# ordinary text it is a few per cent of the characters; text made mostly of it parses up to
# 13x slower per character.
_MARKUP_CHARS = "[]*_<>`!~"
MARKUP_SHARE = 0.2
DENSE_FROM = 2_000  # characters: below this, even the worst parses in ~30 ms
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_LONGEST_CLOSING_LINE = 256  # a line longer than this is no closing fence
# A line that opens container blocks (list items, quotes) one inside the other: parsing 10,000
# of them took markdown-it ~60 ms, only for it to drop what lies below its nesting limit.
_CONTAINER = r"(?:[ \t]*(?:(?:[-+*]|\d{1,9}[.)])(?:[ \t]+|$)|>[ \t]?))"


@functools.cache
def _nested_too_deep() -> re.Pattern[str]:
    return re.compile(f"^{_CONTAINER}{{{max_nesting() - 1},}}", re.MULTILINE)


def _too_deep(tokens: list[Token]) -> bool:
    """Whether markdown-it reached its nesting limit, below which it drops the text."""
    limit = max_nesting() - 1
    return any(t.nesting == 1 and t.level >= limit for t in tokens)


def _markup_in(text: str) -> int:
    return sum(map(text.count, _MARKUP_CHARS))


def _dense(text: str, markup: int) -> bool:
    """Mostly inline markup (`markup` characters of it), outside a code fence: slow to parse
    for its size."""
    return (len(text) >= DENSE_FROM and markup >= MARKUP_SHARE * len(text)
            and _FENCE.match(text) is None)


def formats_quickly(text: str) -> bool:
    """Whether rendering `text` in one go stays well under 100 ms."""
    return len(text) <= FULL_RENDER_LIMIT and not _dense(text, _markup_in(text))


def plain_html(text: str) -> str:
    """Text as HTML without parsing it as markdown: what a copy gets for text too large or
    too hostile to render."""
    return f'<pre style="white-space:pre-wrap">{html.escape(text)}</pre>\n'


@dataclass(slots=True)
class Step:
    """What one feed means for the view, in order: blocks finished for good, then either
    the open block's tokens (formatted) or text to append as plain text."""

    finished: list[Token] = field(default_factory=list)
    tail: list[Token] = field(default_factory=list)
    plain_starts: bool = False  # the open block is plain from now: drop its formatted tail
    plain: str = ""  # text to append to the plain block
    plain_ends: bool = False  # the plain block ended; formatting resumes after it
    rest: str = ""  # text not taken yet: feed it again


class GuardedMarkdown:
    """`IncrementalMarkdown` that shows a runaway open block as plain text (see the module)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._md = IncrementalMarkdown(keep_text=False)
        self._full: list[str] = []
        self._fence: str | None = None  # in a plain block: its opening fence ("```"), or ""
        self._line = ""  # in a plain block: the start of its unfinished last line
        self._line_long = False  # ... which is already too long to close the block
        self.degraded = False  # some block of this text was shown as plain text
        self._chars = 0
        self._tail_markup = 0  # inline markup characters in the open block
        self._for_good = False  # past FORMAT_LIMIT: plain to the end
        self._tail_cost_s = 0.0
        self._tail_parse_s = 0.0  # parsing the open block, the last time
        self._tail_rate = 0.0  # seconds per character to parse and show it, the last time

    def tail_shown(self, seconds: float) -> None:
        """How long the view took to show the open block (render and layout)."""
        self._tail_cost_s = seconds
        chars = len(self._md.tail)
        self._tail_rate = (self._tail_parse_s + seconds) / chars if chars >= DENSE_FROM else 0.0

    def _predicted_s(self, source: str) -> float:
        """What parsing and showing the open block, grown to `source`, would cost at the
        rate it cost last time (0 while that is unknown: a new block, or a small one). A
        table grows by thousands of characters a paint when a server sends fast."""
        return len(source) * self._tail_rate

    @property
    def text(self) -> str:
        return "".join(self._full)

    @property
    def started(self) -> bool:
        return bool(self._full)

    @property
    def in_plain_block(self) -> bool:
        return self._fence is not None

    def needs_full_render(self) -> bool:
        """Reference links reach back into earlier blocks: render again at the end, when
        that is quick."""
        return (not self.degraded and self._chars <= FULL_RENDER_LIMIT
                and has_reference_definitions(self.text))

    def step(self, text: str, *, record: bool = True) -> Step:
        if record:
            self._full.append(text)
            self._chars += len(text)
        if self._fence is not None:
            return self._plain_step(text)
        source = self._md.tail + text
        if self._chars > FORMAT_LIMIT:
            self._for_good = True
            self._md = IncrementalMarkdown(keep_text=False)
            return self._give_up([], source)
        markup = self._tail_markup + _markup_in(text)  # counted once per character
        # Not even tried: parsing it would take long (dense markup, nesting past the limit),
        # or the open block grows past what showing it once cost per character allows.
        if (_dense(source, markup) or self._predicted_s(source) > SLOW_TAIL_S
                or (len(source) >= DENSE_FROM and _nested_too_deep().search(source))):
            self._md = IncrementalMarkdown(keep_text=False)
            return self._give_up([], source)
        started = self._clock()
        finished, tail = self._md.feed(text)
        cost = self._clock() - started
        self._tail_parse_s = cost if tail else 0.0
        if not finished:  # the view's cost was for this same block, smaller
            cost = max(cost, self._tail_cost_s)
        open_text = self._md.tail
        self._tail_markup = _markup_in(open_text) if finished else markup
        if finished and _too_deep(finished):  # shown as text, then formatting goes on
            self.degraded = True
            self._md, self._tail_markup = IncrementalMarkdown(keep_text=False), 0
            return Step([], [], True, source[:len(source) - len(open_text)], True, open_text)
        slow = cost > SLOW_TAIL_S and len(open_text) >= DENSE_FROM  # else: a busy machine
        # Only a block shown before is shown again: one that came whole is formatted once.
        big = len(open_text) > TAIL_LIMIT and len(open_text) > len(text)
        if not tail or not (slow or big or _too_deep(tail)):
            return Step(finished, tail)
        self._md = IncrementalMarkdown(keep_text=False)
        return self._give_up(finished, open_text)

    def _give_up(self, finished: list[Token], open_text: str) -> Step:
        """From here on the open block is plain text."""
        self.degraded = True
        self._tail_markup = 0
        self._tail_cost_s = self._tail_rate = 0.0
        match = _FENCE.match(open_text)
        self._fence = match.group(1) if match else ""
        self._line, self._line_long = "", False
        first_line, newline, body = open_text.partition("\n")
        if self._fence:  # the opening fence line is not code: look for the end after it
            plain = self._plain_step(body) if newline else Step()
            head = first_line + newline
        else:
            plain, head = self._plain_step(open_text), ""
        return Step(finished, [], True, head + plain.plain, plain.plain_ends, plain.rest)

    def _plain_step(self, text: str) -> Step:
        end = self._find_end(text)
        if end is None:
            return Step(plain=text)
        self._fence = None
        return Step(plain=text[:end], plain_ends=True, rest=text[end:])

    def _find_end(self, text: str) -> int | None:
        """The offset in `text` just after the line that ends the plain block."""
        if self._for_good:
            return None
        start = 0
        while (newline := text.find("\n", start)) != -1:
            if not self._line_long and self._closes(self._line + text[start:newline]):
                return newline + 1
            self._line, self._line_long = "", False
            start = newline + 1
        rest = text[start:]
        self._line_long = self._line_long or len(self._line) + len(rest) > _LONGEST_CLOSING_LINE
        self._line = "" if self._line_long else self._line + rest
        return None

    def _closes(self, line: str) -> bool:
        line = line.rstrip("\r")
        if not self._fence:
            return not line.strip()  # a blank line ends a paragraph, table, list, quote
        stripped = line.strip()
        return (len(line) - len(line.lstrip(" ")) <= 3 and stripped.startswith(self._fence)
                and not stripped.strip(self._fence[0]))
