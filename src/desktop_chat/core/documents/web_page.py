"""A web page's visible text, split at its headings (for `extract`, which loads this module
with the first page it reads)."""

from __future__ import annotations

import html.parser
import re

from desktop_chat.core.documents.extract import Section


class _PageText(html.parser.HTMLParser):
    """Visible text of a web page, split at headings; scripts and styles left out."""

    _BLOCKS = frozenset([
        "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
        "table", "ul", "ol", "pre", "blockquote", "header", "footer", "nav", "dd", "dt"
    ])
    _HIDDEN = frozenset({"script", "style", "template", "noscript", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self._text: list[str] = []
        self._heading: str | None = None
        self._current = ""
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = ""
        if tag in self._BLOCKS:
            self._text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            self._current, self._heading = self._heading.strip(), None
        if tag in self._BLOCKS:
            self._text.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._heading is not None:
            self._heading += data
        self._text.append(data)

    def _flush(self) -> None:
        text = re.sub(r"\n\s*\n+", "\n\n", "".join(self._text))
        self.sections.append(Section(re.sub(r"[ \t]+", " ", text).strip(), None, self._current))
        self._text = []

    def close(self) -> None:
        super().close()
        self._flush()


def page_sections(text: str) -> list[Section]:
    parser = _PageText()
    parser.feed(text)
    parser.close()
    return parser.sections
