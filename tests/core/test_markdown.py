"""Markdown -> HTML: model output is untrusted, so raw HTML is text and no script links."""

from __future__ import annotations

import threading
from html.parser import HTMLParser

import pytest

from desktop_chat.core.render import markdown
from desktop_chat.core.render.markdown import to_html


class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser.tags


def urls(html: str) -> list[str]:
    return [value or "" for _, attrs in tags(html) for name, value in attrs.items()
            if name in ("href", "src")]


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "before <b onclick=alert(1)>bold?</b> after",
        '<img src="http://example.com/x.png" onerror="alert(1)">',
        "<iframe src=https://example.com></iframe>",
        "<div>\n\n*block html*\n\n</div>",
        "<!-- a comment -->",
    ],
    ids=["script", "inline", "img", "iframe", "block", "comment"],
)
def test_raw_html_is_escaped(markdown: str) -> None:
    html = to_html(markdown)
    names = {tag for tag, _ in tags(html)}
    assert names <= {"p", "em"}, html
    assert not any(attr.startswith("on") for _, attrs in tags(html) for attr in attrs)
    assert "&lt;" in html


def test_script_tag_is_shown_as_text() -> None:
    assert to_html("<script>alert(1)</script>") == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )


def test_html_in_a_code_block_is_escaped() -> None:
    html = to_html("```html\n<script>x</script>\n```")
    assert "<script>" not in html
    assert "&lt;" in html and "&gt;x&lt;/" in html  # highlighted, but still escaped
    assert {tag for tag, _ in tags(html)} == {"pre", "code", "span"}


def test_emphasis() -> None:
    assert to_html("*a* **b** _c_ __d__ ~~e~~ `f`") == (
        "<p><em>a</em> <strong>b</strong> <em>c</em> <strong>d</strong> <s>e</s> "
        "<code>f</code></p>\n"
    )


def test_ordered_list_keeps_its_start_number() -> None:
    html = to_html("3. three\n4. four\n")
    assert html.startswith('<ol start="3">')
    assert html.count("<li>") == 2


def test_ordered_list_from_one_has_no_start() -> None:
    assert to_html("1. one\n2. two").startswith("<ol>\n")


def test_bullet_list() -> None:
    assert to_html("- a\n- b") == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"


def test_table() -> None:
    html = to_html("| name | n |\n|:-----|--:|\n| a *b* | 1 |\n| c | 2 |")
    names = [tag for tag, _ in tags(html)]
    assert names[:3] == ["table", "thead", "tr"]
    assert names.count("th") == 2
    assert names.count("td") == 4
    assert '<td style="text-align:left">a <em>b</em></td>' in html
    assert '<th style="text-align:right">n</th>' in html


def test_heading_and_code_fence_language() -> None:
    html = to_html("# Title\n\n```python\nprint(1)\n```")
    assert html.startswith("<h1>Title</h1>")
    assert '<span style="color: #007020">print</span>' in html  # highlighted as Python


@pytest.mark.parametrize(
    "markdown",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x]( javascript:alert(1) )",
        "[x](&#106;avascript:alert(1))",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
        "<javascript:alert(1)>",
        "![img](javascript:alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](file:///etc/passwd)",
    ],
    ids=["plain", "mixed-case", "spaces", "entity", "reference", "autolink", "image",
         "vbscript", "data", "file"],
)
def test_no_script_links(markdown: str) -> None:
    html = to_html(markdown)
    for url in urls(html):
        scheme = url.strip().lower().split(":", 1)[0]
        assert scheme not in ("javascript", "vbscript", "data", "file"), html


def test_http_links_are_kept_and_attributes_cannot_be_injected() -> None:
    html = to_html('[ok](https://example.com/a?b=1&c=2) [x](http://a.example/"onmouseover="x)')
    links = [attrs for tag, attrs in tags(html) if tag == "a"]
    assert links[0] == {"href": "https://example.com/a?b=1&c=2"}
    assert set(links[1]) == {"href"}
    assert (links[1]["href"] or "").startswith("http://a.example/")


def test_warm_up_loads_lexers_while_replies_render_the_same() -> None:
    """The start-up warm-up fills the lexer cache from a thread; a reply rendered while it
    runs comes out as it does alone."""
    fences = "".join(f"```{lang}\nx = 1  # y\n```\n\n" for lang in markdown.COMMON_LANGUAGES)
    expected = markdown.render(fences).html
    markdown._lexer.cache_clear()
    thread = threading.Thread(target=markdown.warm_up)
    thread.start()
    during = markdown.render(fences).html
    thread.join()
    assert during == expected
    assert markdown._lexer.cache_info().currsize >= len(markdown.COMMON_LANGUAGES)
