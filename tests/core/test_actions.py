"""The view's own links (`dc-…`): built and read back by one module; anything else, hostile
or malformed, is no action; model output never becomes one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_chat.core.render import actions
from desktop_chat.core.render.actions import PREFIX, Action, Link, is_chrome, link, parse
from desktop_chat.core.render.markdown import render, to_html
from tests.core.test_markdown import urls

NUMBERED = [a for a in Action if a.numbered]
BARE = [a for a in Action if not a.numbered]


@pytest.mark.parametrize("action", NUMBERED, ids=lambda a: a.name)
@pytest.mark.parametrize("number", [0, 7, 10, 123_456_789])
def test_numbered_links_round_trip(action: Action, number: int) -> None:
    href = link(action, number)
    assert parse(href) == Link(action, number)
    assert is_chrome(href)


@pytest.mark.parametrize("action", BARE, ids=lambda a: a.name)
def test_bare_links_round_trip(action: Action) -> None:
    href = link(action)
    assert parse(href) == Link(action, None)
    assert is_chrome(href)


@given(st.sampled_from(NUMBERED), st.integers(min_value=0, max_value=10**18 - 1))
def test_any_number_round_trips(action: Action, number: int) -> None:
    assert parse(link(action, number)) == (action, number)


def test_the_links_on_the_wire_are_unchanged() -> None:
    """The one place the strings are spelled out: what the document has always held."""
    assert [link(a, 3) if a.numbered else link(a) for a in Action] == [
        "dc-copy:3", "dc-toggle:3", "dc-note:", "dc-image:3", "dc-label:", "dc-earlier:",
        "dc-copyreply:3", "dc-regenerate:", "dc-continue:", "dc-edit:3", "dc-prev:3",
        "dc-next:3", "dc-tool:3", "dc-source:3", "dc-context:3", "dc-settings:", "dc-resend:",
        "dc-details:3"]
    assert all(link(a, 3 if a.numbered else None).startswith(PREFIX) for a in Action)


@pytest.mark.parametrize(("action", "number"), [
    (Action.EDIT, None), (Action.COPY_CODE, None), (Action.REGENERATE, 0),
    (Action.LABEL, 1), (Action.EDIT, -1)])
def test_building_a_malformed_link_is_a_programming_error(
    action: Action, number: int | None
) -> None:
    with pytest.raises(ValueError, match=action.name):
        link(action, number)


HOSTILE = [
    "dc-edit:abc", "dc-edit:", "dc-edit", "dc-edit:-1", "dc-edit:+1", "dc-edit: 1",
    "dc-edit:1 ", "dc-edit:1.0", "dc-edit:01", "dc-edit:1\n", "dc-edit:٣", "dc-edit:0x1",
    "dc-edit:1:2", "dc-edit:" + "9" * 5000, "dc-copy:0#x", "dc-copy:0?x", "dc-regenerate:1",
    "dc-regenerate", "dc-regenerate:x", "dc-unknown:1", "dc-unknown:", "dc-:", "dc-", "",
    ":", "DC-regenerate:", "dc-Regenerate:", " dc-regenerate:", "%64c-regenerate:",
    "dc-edit:%30", "dc-copyreply", "dc-copy", "javascript:alert(1)", "http://x",
    "https://example.com/dc-edit:0", "file:///dc-edit:0", "regenerate:", "#dc-edit:0",
]


@pytest.mark.parametrize("href", HOSTILE)
def test_anything_link_did_not_make_is_no_action(href: str) -> None:
    assert parse(href) is None


@given(st.text())
def test_parse_never_raises_and_only_accepts_what_link_makes(href: str) -> None:
    found = parse(href)
    assert found is None or link(*found) == href


@pytest.mark.parametrize("href", [
    "dc-unknown:1", "dc-edit:abc", "DC-regenerate:", "Dc-Copy:0", "%64c-regenerate:",
    "%2564c-regenerate:", "%44C-continue:", " dc-regenerate:", "\tdc-edit:0", "\x00dc-prev:1",
    "\x7fdc-next:1", "dc-notes.md"])
def test_disguised_dc_links_count_as_chrome(href: str) -> None:
    """What a URL parser (Qt lowercases the scheme, decodes %-escapes) could make a dc- link."""
    assert is_chrome(href)


@pytest.mark.parametrize("href", [
    "", "http://x", "https://example.com/dc-edit:0", "javascript:alert(1)", "d-c:", "cd-x:",
    "xdc-edit:0", "mailto:dc-edit@example.com"])
def test_other_hrefs_are_not_chrome(href: str) -> None:
    assert not is_chrome(href)


@pytest.mark.parametrize("markdown", [
    "[x](dc-regenerate:)", "[x](DC-regenerate:)", "[x](Dc-Continue:)", "<dc-regenerate:>",
    "<DC-edit:0>", "[x][r]\n\n[r]: dc-edit:0", "![i](dc-copy:0)", "[x](%64c-regenerate:)",
    "[x](dc-edit:%30)", "[x](<dc-prev:1>)", "[x](&#100;c-next:1)", "[x](dc\\-regenerate:)",
    "[x]( dc-copyreply:0 )", "[x](dc-unknown:1)"])
def test_model_output_never_makes_one_of_our_links(markdown: str) -> None:
    """A reply cannot click Regenerate or Edit, or hide its text from copies: such a link
    stays text, as a javascript: one does."""
    for html in (render(markdown).html, to_html(markdown)):
        assert not any(is_chrome(url) for url in urls(html)), html
        assert "<a " not in html, html


def test_model_links_elsewhere_are_kept() -> None:
    html = render("[a](https://example.com/dc-edit:0) and [b](http://x.example/)").html
    assert urls(html) == ["https://example.com/dc-edit:0", "http://x.example/"]


def test_every_action_has_a_distinct_name() -> None:
    names = [a.value for a in Action]
    assert len(set(names)) == len(names) and all(":" not in n and n for n in names)
    assert actions.PREFIX == "dc-"
