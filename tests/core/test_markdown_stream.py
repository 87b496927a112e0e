"""Incremental rendering equals one-shot rendering; link and image safety."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_chat.core.render.actions import PREFIX, Action, link
from desktop_chat.core.render.markdown import (
    ZWSP,
    IncrementalMarkdown,
    break_long_runs_html,
    code_blocks,
    render,
    render_tokens,
    safe_link,
)

PIECES = [
    "Hello **world**", "plain words here", "\n", "\n\n", "- item", "1. one", "3. three",
    "   - nested", "> quote", "# Heading", "## Sub", "```python\nx = 1\n", "```\n", "~~~\n",
    "    indented code", "| a | b |\n|---|---|\n| 1 | 2 |", "`inline`", "*em*", "~~del~~",
    "[link](https://example.com)", "![alt](http://e.x/i.png)", "<b>raw</b>", "---", "\r\n",
    "- [ ] task", "- [x] done", "Setext\n===", "text\r", "😀 ünïcode", "$x^2$", "&amp; &lt;",
    # math: every delimiter, alone too (so formulas open in one chunk and close in another)
    "$", "$$", "\\(", "\\)", "\\[", "\\]", "\\frac{a}{b}", "x_1^2", "\\text{a $b$ c}",
    "$5 and $10", "\\begin{pmatrix}a & b \\\\ c & d\\end{pmatrix}", "\\alpha",
]


def incremental_html(chunks: list[str]) -> str:
    md = IncrementalMarkdown()
    parts: list[str] = []
    index = 0
    for chunk in chunks:
        finished, _tail = md.feed(chunk)
        if finished:
            rendered = render_tokens(finished, first_code_index=index)
            index += len(rendered.code_blocks)
            parts.append(rendered.html)
    _, tail = md.feed("")
    parts.append(render_tokens(tail, first_code_index=index).html)
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=25),
    cuts=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60),
)
def test_incremental_render_equals_one_shot(pieces: list[str], cuts: list[int]) -> None:
    text = "".join(pieces)
    chunks, pos = [], 0
    for cut in cuts:
        if pos >= len(text):
            break
        chunks.append(text[pos : pos + cut])
        pos += cut
    chunks.append(text[pos:])
    assert incremental_html(chunks) == render(text).html


def test_reference_definitions_ask_for_a_full_render() -> None:
    md = IncrementalMarkdown()
    md.feed("See [the docs][d].\n\n")
    assert not md.needs_full_render()
    md.feed("[d]: https://example.com\n")
    assert md.needs_full_render()


def test_tail_is_small_while_text_grows() -> None:
    md = IncrementalMarkdown()
    for i in range(500):
        md.feed(f"Paragraph {i} with some words.\n\n")
    assert len(md.tail) < 100  # earlier paragraphs were finished and dropped


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "https://example.com/a/b?q=1#frag", "HTTPS://EXAMPLE.COM/x",
     "https://user@example.com/", "http://127.0.0.1:8080/v1"],
)
def test_safe_links(url: str) -> None:
    assert safe_link(url) == url


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)",
     "java\nscript:alert(1)", " javascript:alert(1)", "\x00javascript:alert(1)",
     "javascript%3Aalert(1)", "file:///etc/passwd", "FILE:///c:/windows", "data:text/html,<b>",
     "vbscript:msgbox(1)", "ftp://example.com", "mailto:a@b.c", "myapp://open", "http:/x",
     "https://", "http://@evil", "http:\\\\evil.com", "https://exa mple.com", "//example.com",
     "example.com", "", "http://\u00a0evil.com\x7f"],
)
def test_unsafe_links_are_refused(url: str) -> None:
    assert safe_link(url) is None


def test_images_are_never_embedded() -> None:
    html = render("![a chart](http://example.com/c.png) ![x](file:///etc/passwd)").html
    assert "<img" not in html
    assert "[image: a chart] http://example.com/c.png" in html


def test_raw_html_and_script_are_text() -> None:
    html = render('<script>alert(1)</script><img src="http://e/x.png" onerror=alert(1)>').html
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html


def test_dangerous_link_targets_are_not_links() -> None:
    for md in ("[x](javascript:alert(1))", "[x](vbscript:a)", "[x](file:///etc/passwd)",
               "[x](data:text/html;base64,PGI+)", "<javascript:alert(1)>"):
        assert 'href="javascript' not in render(md).html
        assert "href=\"file" not in render(md).html and "href=\"data" not in render(md).html


def test_code_blocks_in_order_with_language() -> None:
    text = "a\n\n```python\nx = 1\n```\n\n    indented\n\n~~~\nplain\n~~~\n"
    assert [(b.language, b.code) for b in code_blocks(text)] == [
        ("python", "x = 1\n"), ("", "indented\n"), ("", "plain\n")]


def test_view_render_has_copy_links_and_clipboard_render_has_none() -> None:
    view = render("```rust\nfn main() {}\n```", first_code_index=4)
    assert f'href="{link(Action.COPY_CODE, 4)}"' in view.html and ">rust</a>" in view.html \
        and ">Copy</a>" in view.html
    assert PREFIX not in render("```rust\nfn main() {}\n```", chrome=False).html


def test_long_runs_get_break_points_outside_tags_and_entities() -> None:
    markup = '<p><a href="' + "h" * 200 + '">' + "&amp;" * 100 + "</a></p>"
    broken = break_long_runs_html(markup)
    assert broken.replace(ZWSP, "") == markup
    assert ZWSP in broken
    assert 'href="' + "h" * 200 + '"' in broken  # attributes untouched
    assert "&am" + ZWSP not in broken and "&" + ZWSP not in broken


def test_block_on_an_unfinished_line_is_not_split_off() -> None:
    """Found by the property test: "---" at the end of a chunk looked like a rule that ended
    the list, but with "Hello" after it, the line is the list item's continuation."""
    text = "- item- item`inline````python\nx = 1\n---Hello **world**"
    assert incremental_html([text[:39], text[39:]]) == render(text).html


_RUNS = st.lists(st.sampled_from(["a", "é", "&amp;", "<b>", "</b>", " ", "\t", "\n", "\u3000",
                                  "\x1c", "\u200b", '"', '<a href="x">', "aaaaaaaaaaaaaaaaaaaa"]),
                 max_size=200).map("".join)


@given(_RUNS, st.integers(min_value=0, max_value=120))
@settings(max_examples=300, deadline=None)
def test_the_quick_check_for_long_words_never_skips_a_run_that_needs_breaking(
    text: str, run: int
) -> None:
    """`break_long_runs_*` skip their regex when no word is over 80 characters; that must
    agree with the regex on every text (whitespace of every kind, tags, entities)."""
    from desktop_chat.core.render import markdown

    text = text + "x" * run
    assert markdown._has_long_word(text) == bool(markdown._LONG_PLAIN_RUN.search(text))
    if markdown._LONG_RUN.search(text):  # the HTML run excludes < and >: a subset
        assert markdown._has_long_word(text)
    assert markdown.break_long_runs_text(text).replace(ZWSP, "") == text.replace(ZWSP, "")
