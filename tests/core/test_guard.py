"""The guard on formatting (core/render/guard.py): which blocks it gives up on, where a
plain block ends, and that it never changes or loses text."""

from __future__ import annotations

import itertools

from desktop_chat.core.render import guard
from desktop_chat.core.render.guard import GuardedMarkdown, Step
from desktop_chat.core.render.markdown import HIGHLIGHT_LIMIT, render
from tests.support.hostile_text import CASES, chunks, code


def feed_all(md: GuardedMarkdown, pieces: list[str]) -> list[Step]:
    steps = []
    for piece in pieces:
        text, record = piece, True
        while True:
            step = md.step(text, record=record)
            steps.append(step)
            if not step.rest:
                break
            text, record = step.rest, False
    return steps


def plain_of(steps: list[Step]) -> str:
    return "".join(s.plain for s in steps)


def test_ordinary_text_is_never_given_up_on() -> None:
    md = GuardedMarkdown()  # the real clock: no block of it is slow to parse
    steps = feed_all(md, chunks(CASES["10MB reply"](0.005), 7))
    assert not md.degraded
    assert not any(s.plain_starts or s.plain for s in steps)


def test_a_block_past_the_limit_goes_plain_and_ends_at_a_blank_line() -> None:
    table = CASES["5MB table"](0.006)  # 30,000 characters, one block
    md = GuardedMarkdown(clock=lambda: 0.0)  # only its size counts here
    steps = feed_all(md, ["Intro.\n\n", *chunks(table, 1_000), "\nAfter.\n"])
    starts = [s for s in steps if s.plain_starts]
    assert len(starts) == 1 and md.degraded
    assert plain_of(steps) == table + "\n"  # the table, as sent, then the blank line
    assert steps[-1].tail and not md.in_plain_block  # "After." is formatted again
    assert md.text == "Intro.\n\n" + table + "\nAfter.\n"


def test_a_slow_block_goes_plain() -> None:
    ticks = itertools.count()  # each parse "takes" one second
    md = GuardedMarkdown(clock=lambda: float(next(ticks)))
    assert not md.step("A short paragraph that parses slowly: the machine is busy").plain
    slow = "A paragraph that parses slowly. " * 80
    step = md.step(slow)
    assert step.plain_starts
    assert step.plain == "A short paragraph that parses slowly: the machine is busy" + slow


def test_the_view_reports_a_slow_block() -> None:
    md = GuardedMarkdown(clock=lambda: 0.0)
    table = CASES["5MB table"](0.0005)  # 2,500 characters
    assert md.step(table).tail
    md.tail_shown(guard.SLOW_TAIL_S / 2)
    assert md.step("| 3 | 4 |\n").tail
    md.tail_shown(guard.SLOW_TAIL_S * 2)  # Qt took long to lay it out
    assert md.step("| 5 | 6 |\n").plain_starts


def test_a_code_fence_ends_at_its_closing_fence_only() -> None:
    fence = code(40_000)
    md = GuardedMarkdown(clock=lambda: 0.0)
    steps = feed_all(md, [*chunks(fence, 999), "\n\nNext **paragraph**"])
    assert sum(s.plain_starts for s in steps) == 1
    assert plain_of(steps) == fence  # blank lines inside did not end it
    assert steps[-1].tail  # the paragraph after it is formatted


def test_a_closing_fence_split_across_deltas() -> None:
    md = GuardedMarkdown(clock=lambda: 0.0)
    feed_all(md, ["~~~~\n", "x\n" * 13_000])
    assert md.in_plain_block
    feed_all(md, ["~~", "~\n", "still code\n", " ~~", "~~  \r\n", "text"])
    assert not md.in_plain_block


def test_inline_markup_soup_is_not_even_parsed() -> None:
    for case in ("* x 100k", "[ x 50k"):
        md = GuardedMarkdown(clock=lambda: 0.0)
        text = CASES[case](1)
        steps = feed_all(md, chunks(text, 2_000))
        assert md.degraded and plain_of(steps) == text


def test_nesting_past_the_parsers_limit_is_shown_as_text() -> None:
    md = GuardedMarkdown(clock=lambda: 0.0)
    deep = "> " * 30 + "bottom\n\n"
    steps = feed_all(md, [deep + "after"])
    assert plain_of(steps) == deep
    assert steps[-1].tail and not md.in_plain_block


def test_formats_quickly() -> None:
    assert guard.formats_quickly("Some **markdown** text.\n" * 100)
    assert not guard.formats_quickly("x" * (guard.FULL_RENDER_LIMIT + 1))
    assert not guard.formats_quickly("[" * 5_000)
    assert guard.plain_html("<b>&") == '<pre style="white-space:pre-wrap">&lt;b&gt;&amp;</pre>\n'


def test_no_syntax_colours_past_the_limit() -> None:
    small, big = code(HIGHLIGHT_LIMIT // 2), code(HIGHLIGHT_LIMIT * 2)
    assert "color:" in render(small).html.split("<pre", 1)[1]
    assert "color:" not in render(big).html.split("<pre", 1)[1]


def test_past_the_format_limit_the_rest_is_plain_for_good() -> None:
    md = GuardedMarkdown(clock=lambda: 0.0)
    text = CASES["10MB reply"](guard.FORMAT_LIMIT * 1.2 / 10_000_000)
    steps = feed_all(md, chunks(text, 8_000))
    assert sum(s.plain_starts for s in steps) == 1
    assert md.in_plain_block and not any(s.plain_ends for s in steps)
    first_plain = next(i for i, s in enumerate(steps) if s.plain_starts)
    assert not any(s.tail or s.finished for s in steps[first_plain + 1:])
    assert md.text == text


def counting_clock() -> tuple[list[int], object]:
    calls: list[int] = []

    def clock() -> float:
        calls.append(1)
        return 0.0

    return calls, clock


def test_nesting_far_past_the_limit_is_not_even_parsed() -> None:
    for case in ("lists 10k deep", "quotes 10k deep"):
        calls, clock = counting_clock()
        md = GuardedMarkdown(clock=clock)  # type: ignore[arg-type]
        text = CASES[case](1)
        steps = feed_all(md, [text])  # all at once, as at the end of an unpaced stream
        assert md.degraded and plain_of(steps) == text
        assert not calls  # the parser (timed by the clock) never saw it


def test_a_block_growing_past_what_it_cost_goes_plain_before_it_is_parsed() -> None:
    calls, clock = counting_clock()
    md = GuardedMarkdown(clock=clock)  # type: ignore[arg-type]
    table = CASES["5MB table"](0.0005)  # 2,500 characters
    assert md.step(table).tail
    md.tail_shown(guard.SLOW_TAIL_S / 2)  # under the limit, at 2,500 characters...
    parsed = len(calls)
    more = "| cell a | 12.5 | **bold** | `code` |\n" * 80  # ...but not at 5,500
    step = md.step(more)
    assert step.plain_starts and step.plain == table + more
    assert len(calls) == parsed  # given up on without parsing it again
    assert md.text == table + more
