"""Markdown in the window: code blocks and their Copy buttons, selection copy without UI
chrome, reasoning that collapses, links that ask first, following the stream."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QTextBlockFormat, QTextCursor, QTextDocument
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from desktop_chat.core.model.message import Message, Role
from desktop_chat.core.render import markdown
from desktop_chat.core.render.actions import PREFIX, Action, link, parse
from desktop_chat.core.render.markdown import Theme
from desktop_chat.ui.transcript import Transcript
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, run_for

REPLY = (
    "Intro with **bold** and `code`.\n\n"
    "3. third\n4. fourth\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    "```python\ndef f(x):\n    return x * 2\n```\n\n"
    "Then [a link](https://example.com/page) and ![chart](http://example.com/c.png).\n\n"
    "```sh\necho last\n```\n"
)


def stream(chat: ChatDriver, server: LoopbackServer, text: str, **scenario: object) -> None:
    server.push(Scenario(deltas=[text[i : i + 5] for i in range(0, len(text), 5)], **scenario))
    chat.send("show me")
    chat.wait_for_reply()


def click_anchor(chat: ChatDriver, target: Action | str, number: int | None = None) -> None:
    """Click, with the mouse, on the first anchor to the action (with that number, if one is
    given), or to the href `target`."""

    def wanted(href: str) -> bool:
        if isinstance(target, str):
            return href == target
        found = parse(href)
        return (found is not None and found.action is target
                and (number is None or found.number == number))

    view = chat.window.transcript
    doc = view.document()
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if wanted(fragment.charFormat().anchorHref()):
                click_at(chat, fragment.position() + 1)
                return
            it += 1
        block = block.next()
    # the message actions are icon buttons over the document (shown as on hover)
    if not isinstance(target, str):
        href = link(target, number if target.numbered else None) if number is not None or \
            not target.numbered else None
        if href is None:  # the first button of that action, whatever its number
            for row in reversed(view._rows):
                for candidate in [s.href for s in view._specs(row, row is view.lastBar.row)[0]]:
                    found = parse(candidate)
                    if found is not None and found.action is target:
                        href = candidate
                        break
                branch = view._specs(row, row is view.lastBar.row)[1]
                if href is None and branch is not None:
                    href = {Action.PREVIOUS: branch.previous, Action.NEXT: branch.next}.get(
                        target)
                if href is not None:
                    break
        button = view.action_button(href) if href is not None else None
        if button is not None:
            button.click()
            return
    raise AssertionError(f"no anchor {target!r} {number or ''} in the transcript")


def click_at(chat: ChatDriver, position: int) -> None:
    """A mouse click on the character before `position` in the transcript."""
    view = chat.window.transcript
    cursor = QTextCursor(view.document())
    cursor.setPosition(position)
    view.setTextCursor(cursor)
    view.ensureCursorVisible()
    rect = view.cursorRect(cursor)
    point = QPoint(rect.left(), rect.center().y())
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_markdown_is_rendered_not_shown_as_source(chat: ChatDriver, server) -> None:
    stream(chat, server, REPLY)
    text = chat.transcript_text()
    assert "**bold**" not in text and "bold" in text
    assert "```" not in text
    assert "def f(x):" in text
    assert "[image: chart] http://example.com/c.png" in text  # never fetched
    html = chat.window.transcript.toHtml()
    assert "<img" not in html


def test_code_block_copy_button(chat: ChatDriver, server) -> None:
    stream(chat, server, REPLY)
    click_anchor(chat, Action.COPY_CODE, 0)
    assert chat.clipboard() == "def f(x):\n    return x * 2\n"


def test_copy_last_code_block_shortcut(chat: ChatDriver, server) -> None:
    stream(chat, server, REPLY)
    QTest.keyClick(chat.window, Qt.Key.Key_Semicolon,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert chat.clipboard() == "echo last\n"


def test_copy_reply_html_keeps_structure(chat: ChatDriver, server) -> None:
    stream(chat, server, REPLY)
    chat.copy_last_reply()
    html = chat.clipboard("text/html")
    assert '<ol start="3">' in html and "<table" in html and "<strong>bold</strong>" in html
    assert PREFIX not in html and "Copy" not in html  # no UI chrome


def test_selection_copy_has_text_but_no_chrome(chat: ChatDriver, server) -> None:
    stream(chat, server, REPLY, reasoning=["pondering"])
    view = chat.window.transcript
    view.selectAll()
    view.copy()
    plain, html = chat.clipboard(), chat.clipboard("text/html")
    assert "show me" in plain and "Intro with bold and code." in plain
    assert "return x * 2" in plain
    for chrome in ("You", "Assistant ·", "python · Copy", "Thinking"):
        assert chrome not in plain, chrome
    assert PREFIX not in html
    assert "third" in plain and "fourth" in plain


def test_partial_selection_copies_that_part(chat: ChatDriver, server) -> None:
    stream(chat, server, "Alpha beta gamma delta.")
    view = chat.window.transcript
    found = view.document().find("beta gamma")
    view.setTextCursor(found)
    view.copy()
    assert chat.clipboard() == "beta gamma"
    assert "beta gamma" in chat.clipboard("text/html")


def test_reasoning_collapses_when_done_and_expands_on_click(chat: ChatDriver, server) -> None:
    stream(chat, server, "The answer.", reasoning=["Step one.\nStep two."])
    doc = chat.window.transcript.document()
    step = doc.find("Step one.").block()
    assert not step.isVisible()
    click_anchor(chat, Action.TOGGLE)
    assert doc.find("Step one.").block().isVisible()
    assert doc.find("Step two.").block().isVisible()


def test_http_link_asks_before_opening(chat: ChatDriver, server) -> None:
    stream(chat, server, REPLY)
    click_anchor(chat, "https://example.com/page")
    dialog = chat.window.findChild(QMessageBox, "linkDialog")
    assert dialog is not None and dialog.isVisible()
    assert dialog.informativeText() == "https://example.com/page"
    dialog.reject()  # nothing is opened in tests


def test_other_schemes_are_refused(chat: ChatDriver) -> None:
    for href in ("javascript:alert(1)", "file:///etc/passwd", "myapp://x", "data:text/html,x"):
        chat.window.transcript.anchorClicked.emit(QUrl(href))
        assert "only http and https links open" in chat.window.statusBar().currentMessage()
    assert chat.window.findChild(QMessageBox, "linkDialog") is None


def test_a_reply_cannot_use_the_views_own_links(chat: ChatDriver, server) -> None:
    """A markdown link in a reply to one of the view's actions stays text: clicking it does
    nothing, and a copy keeps it."""
    stream(chat, server, "Click [here](dc-regenerate:) or <DC-edit:0> or [there](dc-copy:0).")
    view = chat.window.transcript
    for text in ("here", "DC-edit", "there"):
        click_at(chat, view.document().find(text).selectionStart() + 1)
    run_for(chat.loop, 0.2)
    assert len(server.requests) == 1 and chat.window.composer.toPlainText() == ""
    assert chat.window.statusBar().currentMessage() == ""
    view.selectAll()
    view.copy()
    assert "[here](dc-regenerate:) or <DC-edit:0> or [there](dc-copy:0)." in chat.clipboard()


def test_malformed_links_of_ours_do_nothing(chat: ChatDriver, server) -> None:
    stream(chat, server, "An answer.", reasoning=["thinking"])
    for href in ("dc-edit:abc", "dc-edit:", "dc-copy:", "dc-copy:x", "dc-copy:99",
                 "dc-toggle:99", "dc-toggle:", "dc-regenerate:1", "dc-unknown:1", "dc-"):
        chat.window.transcript.anchorClicked.emit(QUrl(href))
    run_for(chat.loop, 0.2)
    assert len(server.requests) == 1 and chat.window.composer.toPlainText() == ""
    assert chat.window.statusBar().currentMessage() == ""
    assert chat.window.findChild(QMessageBox, "linkDialog") is None


def test_scrolling_up_stops_following_and_offers_jump(chat: ChatDriver, server) -> None:
    view = chat.window.transcript
    server.push(Scenario(deltas=[f"line {i}\n\n" for i in range(400)], pace=0.005))
    chat.send("long")
    seen: dict[str, object] = {}

    def scroll_up() -> None:
        view.verticalScrollBar().setValue(0)
        seen["following"] = view.following

    chat.when(lambda: "line 60" in chat.transcript_text(), scroll_up)
    assert seen["following"] is False
    assert view.verticalScrollBar().value() == 0  # stayed where the user put it
    assert view.jumpButton.isVisible()
    view.jumpButton.click()
    assert view.following
    assert view.verticalScrollBar().value() == view.verticalScrollBar().maximum()


def test_dark_palette_rerenders_with_dark_code_colours(chat: ChatDriver, server, qapp) -> None:
    from PySide6.QtGui import QPalette

    from desktop_chat.ui.theme import dark_palette

    stream(chat, server, "```python\nx = 1\n```\n")
    assert not chat.window.transcript.theme.dark
    qapp.setPalette(dark_palette())
    try:
        assert chat.window.transcript.theme.dark
        view = chat.window.transcript
        # the code card is painted in the dark theme's colours; inline code and quotes too
        assert view._painter.theme.colors.code_background == Theme(dark=True).code_background
        assert Theme(dark=True).colors.inline_code in view.document().defaultStyleSheet()
        assert "x = 1" in chat.transcript_text()
    finally:
        qapp.setPalette(QPalette())
    assert not chat.window.transcript.theme.dark


def _layout(doc: QTextDocument) -> list[tuple[str, float, float, bool, int]]:
    rows, block = [], doc.begin()
    while block.isValid():
        fmt = block.blockFormat()
        flat = (fmt.lineHeightType() == QTextBlockFormat.LineHeightTypes.FixedHeight.value
                and fmt.lineHeight() == 0)
        if flat:  # takes no room on screen
            block = block.next()
            continue
        rows.append((block.text().strip(), fmt.topMargin(), fmt.bottomMargin(),
                     block.textList() is not None, fmt.headingLevel()))
        block = block.next()
    return rows


@pytest.mark.parametrize("step", [1, 7, 1000])
def test_a_streamed_reply_is_laid_out_like_a_one_shot_render(qapp, step: int) -> None:
    """Paragraph spacing, heading levels, quotes and lists as in a one-shot render: no
    paragraphs run together, no blank line above a list, whatever the chunking."""
    text = ("Para one.\n\nPara two.\n\n1. one\n2. two\n   - sub\n\n# Title\n\nText under.\n\n"
            "## Sub\n\n> quote\n\n- a\n- b\n\nIntro:\n\n```python\nx = 1\n```\n\n"
            "| a | b |\n|---|---|\n| 1 | 2 |\n\nend")
    view = Transcript(Theme(dark=False))
    view.begin_reply("m", 0)
    for i in range(0, len(text), step):
        view.append_reply_text(text[i:i + step])
    view.end_reply(Message.of(Role.ASSISTANT, text), 0)
    one_shot = QTextDocument()
    one_shot.setDefaultStyleSheet(view.document().defaultStyleSheet())  # the view's rhythm
    one_shot.setHtml(markdown.render(text, Theme(dark=False)).html)
    streamed = _layout(view.document())[1:-1]  # without the label and the action row
    assert streamed == _layout(one_shot)
    assert [row[0] for row in streamed][:5] == ["Para one.", "Para two.", "one", "two", "sub"]


def test_a_list_ending_in_sub_items_has_no_gap_above_them(qapp) -> None:
    """Qt put the list's closing margin under "two", the last block of the outer list,
    leaving a blank line between an item and its own sub-items."""
    doc = QTextDocument()
    doc.setHtml(markdown.render("1. one\n2. two\n   - sub\n     - subsub\n\nafter").html)
    rows = {row[0]: row for row in _layout(doc)}
    assert rows["two"][2] == 0 and rows["sub"][2] == 0  # no margin inside the list
    assert rows["subsub"][2] == 12  # the list's end, before "after"
    assert rows["subsub"][3] and rows["sub"][3]


@pytest.mark.parametrize("table", ["| a |\n|---|\n| 1 |\n", "```\ncode\n```\n"],
                         ids=["table", "code-block"])
def test_a_table_or_code_block_keeps_paragraph_spacing_above_it(qapp, table: str) -> None:
    """Qt leaves only 6 px above a table frame: the same text with a paragraph below
    instead must show (about) the same gap."""
    def gap_below_first_block(text: str) -> float:
        doc = QTextDocument()
        doc.setTextWidth(600)
        doc.setHtml(markdown.render(text).html)
        layout, first = doc.documentLayout(), doc.begin()
        bottom = layout.blockBoundingRect(first).bottom()
        frames = doc.rootFrame().childFrames()
        top = (layout.frameBoundingRect(frames[0]).top() if frames
               else layout.blockBoundingRect(first.next()).top())
        return top - bottom

    paragraphs = gap_below_first_block("para\n\nnext\n")
    assert paragraphs == 12
    assert paragraphs <= gap_below_first_block(f"para\n\n{table}") <= paragraphs + 2
