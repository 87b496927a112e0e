"""Markdown -> HTML for the clipboard's rich flavour (and, later, the view).

Raw HTML in model output is never passed through: it is escaped and shown as text.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


def to_html(markdown: str) -> str:
    """A standalone HTML fragment that pastes with formatting into mail and word processors."""
    return _parser().render(markdown)
