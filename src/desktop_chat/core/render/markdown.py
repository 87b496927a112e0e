"""Markdown -> HTML, for the chat view (QTextDocument's HTML subset) and the clipboard.

Model output is untrusted: raw HTML is escaped and shown as text, images become links (the
view never fetches anything), and link targets are checked again on click (`safe_link`).
In the view, every piece of UI chrome (code block labels and Copy buttons) is one of the
view's own links (`actions`), so a selection copy can leave it out; a link in model output
that is or could pass for one of them is not made a link at all.

markdown-it and Pygments are imported on first use (`warm_up` does it off the GUI thread at
start-up), so that importing this module costs the window's first frame nothing.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from desktop_chat.core.render import actions
from desktop_chat.core.render.actions import Action
from desktop_chat.core.render.math import Formula, MathHtml, math_plugin
from desktop_chat.core.render.theme import Theme

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from pygments.formatters import HtmlFormatter
    from pygments.lexer import Lexer

_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:", re.MULTILINE)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TAG = re.compile(r"(<[^>]*>)")
_LONGEST_UNBROKEN = 80
_LONG_RUN = re.compile(rf"[^\s<>]{{{_LONGEST_UNBROKEN + 1},}}")
_LONG_PLAIN_RUN = re.compile(rf"\S{{{_LONGEST_UNBROKEN + 1},}}")
_UNIT = re.compile(r"&#?\w+;|.", re.DOTALL)
ZWSP = "\u200b"
_LEXER_LOCK = threading.Lock()
# Qt leaves only 6 px between a block and a table below it (the block's bottom margin is not
# applied to a table's frame): this makes it the 12 px between paragraphs.
_TABLE_GAP = "margin-top:6px"
_TASK_BOX = re.compile(r'<input class="task-list-item-checkbox"( checked="checked")?[^>]*>')
_TASK_ITEM = re.compile(
    r'<li class="task-list-item">\s*<input class="task-list-item-checkbox"'
    r'( checked="checked")?[^>]*>\s*')
_CELL_ALIGN = re.compile(r'<(th|td) style="text-align:(left|right|center)">')
# Code longer than this is shown without syntax colours: Pygments and Qt's layout of its
# coloured spans cost ~14 us a character, and a 2 MB block froze the window for 30 s.
HIGHLIGHT_LIMIT = 6_000


@dataclass(frozen=True, slots=True)
class CodeBlock:
    language: str
    code: str


@dataclass(slots=True)
class Rendered:
    html: str
    code_blocks: list[CodeBlock] = field(default_factory=list)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.tasklists import tasklists_plugin

    class _Parser(MarkdownIt):
        def validateLink(self, url: str) -> bool:
            """markdown-it's check (no javascript: and the like), and none of the view's own
            links: a reply must not be able to click Regenerate or Edit. Such a link stays
            text, as a javascript: one does."""
            return super().validateLink(url) and not actions.is_chrome(url)

    md = _Parser("commonmark", {"html": False, "linkify": False})
    # With html off these two rules only ever answer "no", once for every line and inline
    # position: without them parsing is ~5 % faster and the output is the same.
    md.enable(["table", "strikethrough"]).disable(["html_block", "html_inline"])
    md.use(tasklists_plugin)
    md.use(math_plugin)
    for kind in ("math_inline", "math_display", "math_block", "math_pending"):
        md.add_render_rule(kind, _render_math)
    md.add_render_rule("fence", _render_code)
    md.add_render_rule("code_block", _render_code)
    md.add_render_rule("image", _render_image)
    return md


def max_nesting() -> int:
    """How deep blocks may nest: markdown-it drops what lies deeper."""
    return int(_parser().options["maxNesting"])


def render(text: str, theme: Theme | None = None, *, chrome: bool = True,
           first_code_index: int = 0, highlight: bool = True,
           math: MathHtml | None = None) -> Rendered:
    """HTML for `text`. chrome=True: for the view (labels, Copy links); False: clipboard.
    `math`: the HTML of one formula (the view's images); without it, its source as code."""
    return render_tokens(_parser().parse(text), theme, chrome=chrome,
                         first_code_index=first_code_index, highlight=highlight, math=math)


def render_tokens(tokens: Sequence[Token], theme: Theme | None = None, *, chrome: bool = True,
                  first_code_index: int = 0, highlight: bool = True,
                  math: MathHtml | None = None) -> Rendered:
    env: dict[str, Any] = {"theme": theme or Theme(), "chrome": chrome, "highlight": highlight,
                           "code_blocks": [], "first_code_index": first_code_index,
                           "math": math or math_source_html}
    parser = _parser()
    _move_list_end_margins(tokens)
    out = parser.renderer.render(tokens, parser.options, env)
    if chrome:
        # For the view: Qt draws a checkbox instead of the bullet for a checked/unchecked item
        out = _TASK_ITEM.sub(lambda m: '<li class="checked">' if m.group(1)
                             else '<li class="unchecked">', out)
        # Quiet tables: a bold header and horizontal rules only (see `stylesheet`)
        out = out.replace("<table>", '<table border="0" cellspacing="0" cellpadding="6" '
                                     f'style="{_TABLE_GAP}">')
        rule = f"border-bottom:1px solid {(theme or Theme()).colors.faint}"
        out = out.replace("<th>", f'<th style="{rule}">').replace("<td>",
                                                                 f'<td style="{rule}">')
        out = _CELL_ALIGN.sub(lambda m: f'<{m.group(1)} style="{rule}; text-align:{m.group(2)}">',
                              out)
    else:
        out = _TASK_BOX.sub(lambda m: "☑ " if m.group(1) else "☐ ", out)
        # Qt and word processors draw tables without borders unless asked
        out = out.replace("<table>", f'<table border="1" cellspacing="0" cellpadding="4" '
                                     f'style="{_TABLE_GAP}">')
    if chrome:  # for the view: wrap points Qt can use in linear time
        out = break_long_runs_html(out)
    return Rendered(out, env["code_blocks"])


_LIST_OPEN = ("bullet_list_open", "ordered_list_open")
_LIST_CLOSE = ("bullet_list_close", "ordered_list_close")


def _move_list_end_margins(tokens: Sequence[Token]) -> None:
    """Qt gives a list's closing margin to its own last block, even when a nested list ends
    it: a blank line then fell between "2. step" and its sub-items. The margin goes to the
    innermost list that ends there instead (outer lists first, so inner ones override)."""
    for i, token in enumerate(tokens):
        if token.type not in _LIST_OPEN:
            continue
        close = next((j for j in range(i + 1, len(tokens))
                      if tokens[j].type in _LIST_CLOSE and tokens[j].level == token.level), 0)
        inner_close = close - 2  # ...</ul></li></ol>: the last item ends with a list
        if inner_close <= i or tokens[inner_close].type not in _LIST_CLOSE:
            continue
        inner = next((j for j in range(inner_close - 1, i, -1)
                      if tokens[j].type in _LIST_OPEN and tokens[j].level == token.level + 2), 0)
        if not inner:
            continue
        token.attrSet("style", "margin-bottom:0px")
        tokens[inner].attrSet("style", "margin-bottom:12px")


def stylesheet(theme: Theme, body_pt: float) -> str:
    """The view's document style sheet (QTextDocument.setDefaultStyleSheet): reading rhythm,
    modest heading steps, inline code, quotes. Colours and sizes come from the theme."""
    c, t = theme.colors, theme.type
    code_pt = body_pt - t.body + t.code
    heading = " ".join(f"h{n} {{ font-size: {body_pt - t.body + step:.1f}pt; "
                       f"margin-top: {18 if n < 3 else 14}px; margin-bottom: 6px; }}"
                       for n, step in enumerate(t.heading, start=1))
    return (
        f"p, li {{ line-height: {t.line_height}%; }} "
        f"p {{ margin-top: {theme.paragraph_gap}px; margin-bottom: {theme.paragraph_gap}px; }} "
        f"{heading} "
        f"code {{ background-color: {c.inline_code}; font-size: {code_pt:.1f}pt; }} "
        f"pre {{ font-size: {code_pt:.1f}pt; line-height: 135%; }} "
        f"blockquote {{ color: {c.muted}; margin-left: {theme.space.l}px; "
        f"margin-right: 0px; }} "
        f"a {{ color: {c.accent}; }}"
    )


def to_html(markdown: str, theme: Theme | None = None, math: MathHtml | None = None) -> str:
    """A standalone fragment that pastes with formatting into mail and word processors."""
    return render(markdown, theme, chrome=False, math=math).html


def code_blocks(markdown: str) -> list[CodeBlock]:
    """The fenced and indented code blocks of a text, in order."""
    return [
        CodeBlock(_language(t), t.content)
        for t in _parser().parse(markdown)
        if t.type in ("fence", "code_block")
    ]


def safe_link(url: str) -> str | None:
    """The URL if it may be opened in a browser: http(s) with a host, nothing hidden in it."""
    if any(ord(c) < 33 or ord(c) == 127 for c in url):  # tabs/newlines/spaces smuggled in
        return None
    scheme, sep, rest = url.partition(":")
    if not sep or scheme.lower() not in ("http", "https") or not rest.startswith("//"):
        return None
    host = rest[2:].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if not host or "\\" in host or host.startswith("@"):
        return None
    return url


def _language(token: Token) -> str:
    return token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""


def _render_code(
    _self: Any, tokens: Sequence[Token], idx: int, _options: Any, env: dict[str, Any]
) -> str:
    token = tokens[idx]
    language, code = _language(token), token.content
    theme: Theme = env["theme"]
    blocks: list[CodeBlock] = env["code_blocks"]
    blocks.append(CodeBlock(language, code))
    body = (_highlight(code, language, theme.pygments_style)
            if env["highlight"] and len(code) <= HIGHLIGHT_LIMIT
            else html.escape(code).removesuffix("\n"))
    if not env["chrome"]:
        return (f'<pre style="background:{theme.code_background}; padding:8px">'
                f"<code>{body}</code></pre>\n")
    index = env["first_code_index"] + len(blocks) - 1
    label = html.escape(language or "code")
    copy = actions.link(Action.COPY_CODE, index)
    hang = theme.code_hang
    # A card (the view paints its rounded background and header band behind this table):
    # the language and Copy in the header row, the code below. Long lines wrap with a
    # hanging indent: a wrapped line goes on `hang` px in from where its line started.
    return (
        f'<table width="100%" cellspacing="0" cellpadding="8" border="0" '
        f'style="{_TABLE_GAP}; margin-bottom:10px">'
        f'<tr><td valign="middle"><a href="{copy}" style="color:{theme.muted}; '
        f'text-decoration:none">{label}'
        f'</a></td><td align="right"><a href="{copy}" style="color:{theme.muted}; '
        f'text-decoration:none">Copy</a></td></tr>'
        f'<tr><td colspan="2"><pre style="white-space:pre-wrap; margin:0; margin-left:{hang}px; '
        f'text-indent:-{hang}px">{body}</pre></td></tr></table>\n'
    )


def math_source_html(formula: Formula) -> str:
    """A formula as its source, in code style: what is shown when it cannot be drawn."""
    return f"<code>{html.escape(formula.source)}</code>"


def _render_math(
    _self: Any, tokens: Sequence[Token], idx: int, _options: Any, env: dict[str, Any]
) -> str:
    token = tokens[idx]
    formula: Formula = token.meta["formula"]
    if token.type == "math_pending":  # still streaming (or cut off): the source as it is
        return math_source_html(formula)
    shown = env["math"](formula)
    if token.type == "math_block":
        return f'<p align="center">{shown}</p>\n'
    return str(shown)


def _render_image(
    _self: Any, tokens: Sequence[Token], idx: int, _options: Any, _env: dict[str, Any]
) -> str:
    """Never an <img>: the alt text and the address, as a link that is checked on click."""
    token = tokens[idx]
    src = str(token.attrs.get("src", ""))
    alt = html.escape(token.content or "image")
    return f'<a href="{html.escape(src, quote=True)}">[image: {alt}] {html.escape(src)}</a>'


# Fence languages worth having ready before the first reply (see `warm_up`).
COMMON_LANGUAGES = ("python", "javascript", "typescript", "bash", "json", "html", "css", "sql",
                    "java", "c", "cpp", "csharp", "go", "rust", "yaml", "toml", "diff")


def warm_up(languages: Sequence[str] = COMMON_LANGUAGES) -> None:
    """Load the parser, both highlight styles and the lexers of common languages, each used
    once. The first code block of a language otherwise loads its lexer mid-reply (python
    22 ms, css 40 ms: a visible stall). Run once at start-up, off the GUI thread: the first
    part (`warm_up_parser`) first, then the other lexers."""
    warm_up_parser()
    for style in (Theme(dark=False).pygments_style, Theme(dark=True).pygments_style):
        for language in languages:
            _highlight("x", language, style)


def warm_up_parser() -> None:
    """What showing a conversation needs loaded (~75 ms here, a third of `warm_up`): the
    parser, both highlight styles and the most common language's lexer."""
    render("*x*")
    for style in (Theme(dark=False).pygments_style, Theme(dark=True).pygments_style):
        _highlight("x", COMMON_LANGUAGES[0], style)


def _highlight(code: str, language: str, style: str) -> str:
    from pygments import highlight

    return highlight(code, _lexer(language.lower()), _formatter(style)).removesuffix("\n")


@lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer:
    # A lexer class compiles its rules when first instantiated, which is not thread-safe:
    # `warm_up` may be doing it in the background while a reply needs the same lexer.
    from pygments.lexers import TextLexer, get_lexer_by_name
    from pygments.util import ClassNotFound

    with _LEXER_LOCK:
        try:
            return get_lexer_by_name(language) if language else TextLexer()
        except ClassNotFound:
            return TextLexer()


@lru_cache(maxsize=4)
def _formatter(style: str) -> HtmlFormatter[str]:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(nowrap=True, noclasses=True, style=style)


def _line_start(text: str, line: int) -> int:
    """Offset of `line` (0-based), counting line breaks as markdown-it does (CRLF, CR, LF)."""
    if line == 0:
        return 0
    for number, match in enumerate(_LINE_BREAK.finditer(text), start=1):
        if number == line:
            return match.end()
    return len(text)


def break_long_runs_html(markup: str, every: int = 80) -> str:
    """Invisible break opportunities (ZWSP) in long runs of text outside tags and entities:
    Qt wraps an unbreakable run in quadratic time. Views strip ZWSP again on copy."""
    if not _has_long_word(markup):
        return markup
    parts = _TAG.split(markup)
    for i in range(0, len(parts), 2):  # even items are text, odd ones tags
        parts[i] = _LONG_RUN.sub(lambda m: _break_run(m.group(0), every), parts[i])
    return "".join(parts)


def break_long_runs_text(text: str, every: int = 80) -> str:
    """The same for plain text (user messages, reasoning)."""
    if not _has_long_word(text):
        return text
    return _LONG_PLAIN_RUN.sub(lambda m: _break_run(m.group(0), every), text)


def _has_long_word(text: str) -> bool:
    """Whether any whitespace-separated word is longer than 80 characters: a run that needs
    breaking lies inside one. Splitting is ~6x faster than searching for the run, which
    tries every position of the text, and nearly every text has no such word."""
    return max(map(len, text.split()), default=0) > _LONGEST_UNBROKEN


def _break_run(run: str, every: int) -> str:
    units = _UNIT.findall(run)  # an entity such as &amp; is one unit
    return ZWSP.join("".join(units[i : i + every]) for i in range(0, len(units), every))


class IncrementalMarkdown:
    """Splits a growing markdown text into finished top-level blocks and an open tail.

    A top-level block is finished once another one has started after it: nothing that
    arrives later can change it, so it is rendered once. Only the tail is parsed again as
    text arrives, so the work per update does not grow with the length of the reply.
    """

    def __init__(self, *, keep_text: bool = True) -> None:
        """`keep_text=False`: the owner keeps the whole text (`text` and
        `needs_full_render` are then the owner's to answer)."""
        self._tail = ""
        self._full: list[str] | None = [] if keep_text else None

    @property
    def tail(self) -> str:
        return self._tail

    def feed(self, text: str) -> tuple[list[Token], list[Token]]:
        """Add text; return the tokens of blocks that just became finished, and of the tail.
        One parse of the tail serves both the split and the rendering."""
        if self._full is not None:
            self._full.append(text)
        self._tail += text
        tokens = _parser().parse(self._tail)
        starts = [i for i, t in enumerate(tokens)
                  if t.level == 0 and t.nesting >= 0 and t.map is not None]
        # A block that starts on a line still being written may turn out not to start one at
        # all ("---" then "Hello": a paragraph's continuation, not a rule): split only at a
        # start whose line is complete.
        while len(starts) >= 2:
            split = starts[-1]
            first_line = tokens[split].map[0]  # type: ignore[index]
            offset = _line_start(self._tail, first_line)
            if self._tail.find("\n", offset) != -1:
                self._tail = self._tail[offset:]
                return tokens[:split], tokens[split:]
            starts.pop()
        return [], tokens

    @property
    def text(self) -> str:
        """Everything fed so far."""
        assert self._full is not None, "kept by the owner"
        return "".join(self._full)

    @property
    def started(self) -> bool:
        return bool(self._full)

    def needs_full_render(self) -> bool:
        return has_reference_definitions(self.text)


def has_reference_definitions(text: str) -> bool:
    """Reference-style link definitions reach back into earlier blocks: the text must be
    rendered again as a whole."""
    return bool(_REFERENCE_DEFINITION.search(text))
