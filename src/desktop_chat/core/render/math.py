"""LaTeX math in replies: finding it in markdown, and drawing it as SVG.

Models write four delimiter forms: `$…$` and `\\(…\\)` inline, `$$…$$` and `\\[…\\]` for display.
Neither mdit-py-plugins plugin handles all four: `dollarmath` does the dollar forms (and its
block rule is used here as is), `texmath` does either the dollars or the brackets, and neither
knows that a `$` inside `\\text{…}` does not close the formula. So the dollar block rule comes
from `dollarmath`, and the inline rules are written here on the same scheme:

- `$…$` follows Pandoc's rule, which keeps prices text: the opening `$` has a non-space right
  after it and no digit right before it; the closing one has a non-space right before it and no
  digit right after it (`$5 and $10`, `costs $3.50` stay text). A `$` inside braces does not
  close (`$\\text{a $b$ c}$` is one formula). `\\$` is an escaped dollar.
- `$$…$$` and `\\[…\\]` inside a paragraph are display math; on lines of their own, a block.
- An opening `$$`, `\\(` or `\\[` that is never closed in its paragraph (a formula still
  streaming, or cut off) is shown as its source from there on, in code style: never as text
  with its backslashes eaten by markdown's escapes.

Code spans and code blocks are matched by markdown-it before any of this: math in code stays
code. Drawing (`draw`) uses ziamath, which is pure Python and brings its own math font; it is
imported on the first formula, not at start-up. A formula it cannot draw is `None`: the view
shows its source instead.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # markdown-it loads after the first frame (ui/deferred.py)
    from markdown_it import MarkdownIt
    from markdown_it.rules_block import StateBlock
    from markdown_it.rules_inline import StateInline


MAX_LATEX = 4000  # characters; longer "formulas" are shown as source (and never searched past)
_UNKNOWN_COMMAND = re.compile(r"\\[A-Za-z]")
_VIEWBOX = re.compile(r'viewBox="([-\d.e]+) ([-\d.e]+) ([-\d.e]+) ([-\d.e]+)"')
_DRAW_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Formula:
    """One formula as written: its LaTeX and the delimiters around it."""

    latex: str
    display: bool
    opener: str
    closer: str

    @property
    def source(self) -> str:
        """Exactly as it stood in the reply."""
        return f"{self.opener}{self.latex}{self.closer}"


@dataclass(frozen=True, slots=True)
class DrawnMath:
    """A formula drawn as SVG. Sizes in px; `depth` is how far it reaches below the baseline."""

    svg: str
    width: float
    height: float
    depth: float


MathHtml = Callable[[Formula], str]


# -- finding math -------------------------------------------------------------------------


def math_plugin(md: MarkdownIt) -> None:
    """Token types: `math_inline`, `math_display` (display math inside a paragraph),
    `math_block` (on lines of its own), `math_pending` (an unclosed opener and the rest of
    its paragraph). Each math token's `meta["formula"]` is its `Formula`."""
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md.use(dollarmath_plugin, allow_labels=False, allow_space=False, allow_digits=False,
           allow_blank_lines=False, double_inline=True)
    md.inline.ruler.at("math_inline", _inline_math)  # dollarmath's is replaced, see above
    md.block.ruler.before("fence", "math_block_brackets", _bracket_block,
                          {"alt": ["paragraph", "reference", "blockquote", "list"]})
    md.core.ruler.push("math_formulas", _attach_formulas)


def _escaped(src: str, pos: int) -> bool:
    """Whether the character at `pos` is escaped by an odd number of backslashes."""
    count = 0
    while pos - count - 1 >= 0 and src[pos - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def _inline_math(state: StateInline, silent: bool) -> bool:
    src, pos = state.src, state.pos
    char = src[pos]
    if char == "$":
        if _escaped(src, pos):
            return False
        found = _find_double(src, pos) if src.startswith("$$", pos) else _find_single(src, pos)
    elif char == "\\" and src.startswith(("\\(", "\\["), pos) and not _escaped(src, pos):
        found = _find_bracket(src, pos)
    else:
        return False
    if found is None:
        return False
    kind, content, end, opener, closer = found
    if not silent:
        token = state.push(kind, "math", 0)
        token.content = content
        token.markup = opener
        token.info = closer
    state.pos = end
    return True


_Found = tuple[str, str, int, str, str]  # token type, content, end, opener, closer


def _find_single(src: str, pos: int) -> _Found | None:
    """Pandoc's rule (see the module's docstring), plus braces."""
    if pos + 1 >= len(src) or src[pos + 1].isspace():
        return None
    if pos > 0 and src[pos - 1].isdigit():
        return None
    depth, i, stop = 0, pos + 1, min(len(src), pos + 1 + MAX_LATEX)
    while i < stop:
        c = src[i]
        if c == "\\":
            i += 2  # an escaped character: \$ \{ \}
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        elif c == "$" and depth == 0:
            if src[i - 1].isspace() or (i + 1 < len(src) and src[i + 1].isdigit()):
                return None
            return "math_inline", src[pos + 1 : i], i + 1, "$", "$"
        i += 1
    return None


def _find_double(src: str, pos: int) -> _Found | None:
    if src.startswith("$$$", pos) or (pos and src[pos - 1] == "$"):  # "$$$": no formula
        return None
    end = _find_closer(src, pos + 2, "$$")
    if end is None:
        return _pending(src, pos, "$$")
    if end == pos + 2:
        return None
    return "math_display", src[pos + 2 : end], end + 2, "$$", "$$"


def _find_bracket(src: str, pos: int) -> _Found | None:
    opener = src[pos : pos + 2]
    closer = "\\)" if opener == "\\(" else "\\]"
    end = _find_closer(src, pos + 2, closer)
    if end is None:
        return _pending(src, pos, opener)
    if not src[pos + 2 : end].strip():
        return None
    kind = "math_inline" if opener == "\\(" else "math_display"
    return kind, src[pos + 2 : end], end + 2, opener, closer


def _find_closer(src: str, start: int, closer: str) -> int | None:
    stop = min(len(src), start + MAX_LATEX + len(closer))
    i = src.find(closer, start, stop)
    while i != -1 and closer[0] == "$" and _escaped(src, i):
        i = src.find(closer, i + 1, stop)
    return None if i == -1 else i


def _pending(src: str, pos: int, opener: str) -> _Found:
    """An opener never closed: the rest of the paragraph is its source (still streaming)."""
    return "math_pending", src[pos + len(opener) :], len(src), opener, ""


def _bracket_block(state: StateBlock, start: int, end_line: int, silent: bool) -> bool:
    r"""`\[` at the start of a line, `\]` at the end of one, no blank line between."""
    if state.sCount[start] - state.blkIndent >= 4:  # indented code
        return False
    begin = state.bMarks[start] + state.tShift[start]
    if not state.src.startswith("\\[", begin):
        return False
    line, first = start, begin + 2
    while line < end_line:
        line_start = first if line == start else state.bMarks[line] + state.tShift[line]
        text = state.src[line_start : state.eMarks[line]]
        if line > start and not text.strip():
            return False  # a blank line: not a block (a paragraph, maybe still streaming)
        close = text.find("\\]")
        if close != -1:
            if text[close + 2 :].strip():
                return False  # text after "\]": display math inside a paragraph
            content = _block_content(state, start, first, line, line_start + close)
            if not content.strip():
                return False
            if not silent:
                token = state.push("math_block", "math", 0)
                token.block = True
                token.content = content
                token.markup = "\\["
                token.info = "\\]"
                token.map = [start, line + 1]
            state.line = line + 1
            return True
        line += 1
    return False


def _block_content(state: StateBlock, start: int, first: int, last: int, end: int) -> str:
    """The lines between, without their container's prefixes ("> " in a quote)."""
    if start == last:
        return state.src[first:end]
    lines = [state.src[first : state.eMarks[start]]]
    lines += [state.src[state.bMarks[n] + state.tShift[n] : state.eMarks[n]]
              for n in range(start + 1, last)]
    lines.append(state.src[state.bMarks[last] + state.tShift[last] : end])
    return "\n".join(lines)


def _attach_formulas(state: Any) -> None:
    for token in state.tokens:
        _attach(token)
        for child in token.children or ():
            _attach(child)


def _attach(token: Any) -> None:
    if token.type in ("math_inline", "math_display", "math_block", "math_pending"):
        closer = "" if token.type == "math_pending" else token.info or token.markup
        display = token.type in ("math_display", "math_block")
        token.meta["formula"] = Formula(token.content, display, token.markup, closer)


# -- drawing ------------------------------------------------------------------------------


def draw(latex: str, *, display: bool, size_px: float, color: str) -> DrawnMath | None:
    """The formula as SVG in `color`, `size_px` being the text's font size; None when it
    cannot be drawn (a syntax error, an unknown command, too long): show its source."""
    if not latex.strip() or len(latex) > MAX_LATEX:
        return None
    with _DRAW_LOCK:  # ziamath keeps module-level state while it lays out
        try:
            return _draw(latex, display, size_px, color)
        except Exception:  # any failure of the renderer means "show the source"
            return None


def _draw(latex: str, display: bool, size_px: float, color: str) -> DrawnMath | None:
    import ziamath  # here, not at start-up: ~0.4 s, and most replies hold no math

    # SVG 1.1 paths, not SVG 2 <symbol>s: QtSvg draws no glyph of the latter
    ziamath.config.svg2 = False
    math = ziamath.Latex(latex.strip(), size=size_px, inline=not display, color=color)
    for element in math.mathml.iter():
        if element.text and _UNKNOWN_COMMAND.search(element.text):
            return None  # latex2mathml keeps an unknown \command as text: show the source
    svg = math.svg()
    box = _VIEWBOX.search(svg)
    if box is None:
        return None
    _x, y, width, height = (float(v) for v in box.groups())
    if width <= 0 or height <= 0:
        return None
    return DrawnMath(svg, width, height, max(0.0, height + y))


Drawer = Callable[[tuple[str, bool, float, str]], "DrawnMath | None"]


def _draw_key(key: tuple[str, bool, float, str]) -> DrawnMath | None:
    latex, display, size, color = key
    return draw(latex, display=display, size_px=size, color=color)


class DrawnCache:
    """Drawn formulas by (latex, display, size, colour), the most recent `capacity` kept.
    Thread-safe: a background thread fills it, the GUI thread reads it."""

    def __init__(self, capacity: int = 512, drawer: Drawer | None = None) -> None:
        """`drawer`: draws a key (e.g. in a helper process, see math_host); default `draw`."""
        self._items: OrderedDict[tuple[str, bool, float, str], DrawnMath | None] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity
        self._drawer = drawer or _draw_key

    def get(self, key: tuple[str, bool, float, str]) -> tuple[bool, DrawnMath | None]:
        """(known, drawing): known is False when the formula was never drawn."""
        with self._lock:
            if key not in self._items:
                return False, None
            self._items.move_to_end(key)
            return True, self._items[key]

    def draw(self, key: tuple[str, bool, float, str], *, here: bool = False) -> DrawnMath | None:
        """From the cache, else drawn (by the drawer; `here`: in this thread)."""
        known, drawn = self.get(key)
        if known:
            return drawn
        drawn = _draw_key(key) if here else self._drawer(key)
        with self._lock:
            self._items[key] = drawn
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return drawn
