"""LaTeX math in replies: which text is math (all four delimiters, never prices, never code),
what streaming shows, and drawing a corpus of real formulas without an exception."""

from __future__ import annotations

import html
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_chat.core.render.markdown import IncrementalMarkdown, render, render_tokens
from desktop_chat.core.render.math import DrawnCache, Formula, draw
from desktop_chat.core.render.math_host import MathHost, serve

CORPUS = Path(__file__).parents[1] / "data" / "math_corpus.tex"


def formulas(text: str) -> list[Formula]:
    found: list[Formula] = []
    render(text, math=lambda f: found.append(f) or "<b>F</b>")
    return found


def corpus() -> tuple[list[str], list[str]]:
    drawable: list[str] = []
    refused: list[str] = []
    target = drawable
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line.startswith("% cannot draw"):
            target = refused
        elif line.strip() and not line.startswith("%"):
            target.append(line)
    return drawable, refused


@pytest.mark.parametrize(("text", "latex", "display", "opener"), [
    ("Inline $a+b$ here", "a+b", False, "$"),
    ("Inline \\(a+b\\) here", "a+b", False, "\\("),
    ("$$\\int_0^1 x\\,dx$$", "\\int_0^1 x\\,dx", True, "$$"),
    ("\\[ x^2 \\]", " x^2 ", True, "\\["),
    ("\\[\n\\frac{a}{b}\n\\]\n", "\n\\frac{a}{b}\n", True, "\\["),
    ("$$\n\\sum_i i\n$$\n", "\n\\sum_i i\n", True, "$$"),
    ("text $$x^2$$ in a paragraph", "x^2", True, "$$"),
    ("text \\[x^2\\] in a paragraph", "x^2", True, "\\["),
    ("> \\[\n> a = b\n> \\]", "\na = b\n", True, "\\["),
    ("- item $x_1$", "x_1", False, "$"),
])
def test_every_delimiter_form(text: str, latex: str, display: bool, opener: str) -> None:
    [formula] = formulas(text)
    assert (formula.latex, formula.display, formula.opener) == (latex, display, opener)
    assert formula.source in text.replace("> ", "")


def test_backslashes_are_kept_not_eaten_by_markdown_escapes() -> None:
    """The old defect: `$$\\int_0^1 x\\,dx$$` showed as `x,dx`, `\\( … \\)` as `( … )`."""
    out = render("$$\\int_0^1 x\\,dx$$ and \\( a \\) and \\[ b \\]").html
    assert "\\int_0^1 x\\,dx" in out and "\\( a \\)" in out and "\\[ b \\]" in out


@pytest.mark.parametrize("text", [
    "$5 and $10", "costs $3.50 today", "between $3 and $4 million", "pay $5, get $10 back",
    "I have $ 5 and $ 6", "US$100 and US$200", "$$$ money", "a \\$ escaped \\$ dollar",
    "5$ and 6$", "$1,000 or $2,000.", "the $ sign",
])
def test_prices_are_never_math(text: str) -> None:
    assert formulas(text) == []
    assert html.escape(text.replace("\\$", "$"), quote=False) in render(text).html


def test_prices_next_to_a_formula() -> None:
    assert [f.latex for f in formulas("It costs $5, and $x^2$ is math, then $10.")] == ["x^2"]


@pytest.mark.parametrize("text", [
    "`$x$`", "`\\(x\\)`", "```\n$$x$$\n```\n", "    $x$ indented code", "~~~\n\\[x\\]\n~~~\n",
    "``a $b$ c``",
])
def test_math_inside_code_stays_code(text: str) -> None:
    assert formulas(text) == []
    assert "<code>" in render(text).html or "<pre" in render(text).html


def test_a_dollar_inside_text_braces_does_not_close() -> None:
    [formula] = formulas("see $\\text{a $b$ c} + 1$ there")
    assert formula.latex == "\\text{a $b$ c} + 1"


@pytest.mark.parametrize("opener", ["$$", "\\(", "\\["])
def test_an_unclosed_formula_at_the_end_of_a_stream_shows_as_source(opener: str) -> None:
    text = f"Partial {opener}\\frac{{a}}{{b"
    md = IncrementalMarkdown()
    md.feed(text)
    _finished, tail = md.feed("")
    out = render_tokens(tail).html
    assert f"<code>{html.escape(opener)}\\frac{{a}}{{b</code>" in out
    assert formulas(text) == []  # nothing drawn while it is open


def test_an_unclosed_single_dollar_stays_text() -> None:
    assert render("costs $x^2").html.strip() == "<p>costs $x^2</p>"


def test_a_formula_becomes_one_once_closed() -> None:
    md = IncrementalMarkdown()
    _, tail = md.feed("Then \\(x^")
    assert "math_pending" in [c.type for t in tail for c in t.children or ()]
    _, tail = md.feed("2\\) done.")
    kinds = [c.type for t in tail for c in t.children or ()]
    assert "math_inline" in kinds and "math_pending" not in kinds


def test_source_is_exact() -> None:
    text = "a $x$ b \\(y\\) c $$z$$ d \\[w\\]"
    assert "".join(f.source for f in formulas(text)) == "$x$\\(y\\)$$z$$\\[w\\]"


def test_the_corpus_is_large_enough() -> None:
    drawable, refused = corpus()
    assert len(drawable) + len(refused) >= 100 and refused


@pytest.mark.parametrize("display", [False, True], ids=["inline", "display"])
def test_the_corpus_draws_or_falls_back_cleanly(display: bool) -> None:
    drawable, refused = corpus()
    for latex in drawable:
        drawn = draw(latex, display=display, size_px=16, color="#1f2328")
        assert drawn is not None, latex
        assert drawn.width > 0 and drawn.height > 0 and 0 <= drawn.depth <= drawn.height
        assert "<path" in drawn.svg and 'fill="#1f2328"' in drawn.svg
    for latex in refused:
        assert draw(latex, display=display, size_px=16, color="#000000") is None, latex


def test_every_corpus_formula_renders_in_markdown() -> None:
    drawable, refused = corpus()
    for latex in drawable + refused:
        for text in (f"$${latex}$$", f"\\[{latex}\\]", f"a \\({latex}\\) b"):
            assert [f.latex for f in formulas(text)] == [latex], text


def test_huge_input_is_shown_as_source_and_not_searched_far() -> None:
    assert draw("x+" * 5000, display=False, size_px=16, color="#000") is None
    assert formulas("$" + "a" * 10_000 + "$") == []


def test_the_cache_draws_once() -> None:
    cache = DrawnCache(capacity=2)
    key = ("x^2", False, 16.0, "#000000")
    assert cache.get(key) == (False, None)
    first = cache.draw(key)
    assert first is not None and cache.get(key) == (True, first)
    assert cache.draw(key) is first
    cache.draw(("y", False, 16.0, "#000000"))
    cache.draw(("z", False, 16.0, "#000000"))
    assert cache.get(key) == (False, None)  # the oldest went
    bad = ("\\frac{", False, 16.0, "#000000")
    assert cache.draw(bad) is None and cache.get(bad) == (True, None)


def test_ziamath_is_not_imported_at_start_up() -> None:
    """~0.4 s that most sessions never need: imported on the first formula drawn."""
    code = ("import sys, desktop_chat.app, desktop_chat.ui.main_window\n"
            "from desktop_chat.core.render import markdown\n"
            "markdown.render('$x^2$ and \\\\(y\\\\)')\n"
            "print('ziamath' in sys.modules, 'latex2mathml' in sys.modules)")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.split() == ["False", "False"]


def test_the_helper_process_draws_as_the_app_would() -> None:
    host = MathHost()
    try:
        key = ("\\frac{a}{b}", True, 16.0, "#1f2328")
        assert host.draw(key) == draw("\\frac{a}{b}", display=True, size_px=16, color="#1f2328")
        assert host.draw(("\\frac{", False, 16.0, "#000")) is None  # cannot: the source shows
        assert host.draw(("x", False, 16.0, "#000")) is not None  # and it keeps serving
    finally:
        host.close()


def test_a_helper_that_cannot_start_or_dies_means_drawing_here(caplog) -> None:
    broken = MathHost([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert broken.draw(("x^2", False, 16.0, "#000")) == draw("x^2", display=False, size_px=16,
                                                             color="#000")
    assert "drawing in the app instead" in caplog.text
    missing = MathHost(["/nonexistent/helper"])
    assert missing.draw(("y", False, 16.0, "#000")) is not None


def test_the_helper_answers_malformed_requests_with_null() -> None:
    answers = io.BytesIO()
    serve(io.BytesIO(b'["x", false, 16, "#000"]\n[1, 2]\nnot json\n'), answers)
    lines = [json.loads(line) for line in answers.getvalue().splitlines()]
    assert lines[0][0].startswith("<svg") and lines[1:] == [None, None]
