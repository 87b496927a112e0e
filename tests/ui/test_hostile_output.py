"""Replies no model should write but any server can send (tests/support/hostile_text.py):
the window shows them all, ends the reply, copies the text exactly as received, and opens
them again from the history. Sizes here are cut down, yet each is past the size or cost at
which the view gives up formatting a block (core/render/guard.py) and slices its work
(ui/progressive.py). How long the window stalls is measured by benchmarks/hostile_output.py,
not asserted here."""

from __future__ import annotations

import pytest

from desktop_chat.core.render.markdown import ZWSP
from desktop_chat.ui import plain_text
from tests.support.hostile_text import CASES, chunks
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, wait_until

SCALES = {
    "10MB reply": 0.03,  # 300,000 characters: saved and counted off the GUI thread too
    "1MB line": 0.1,
    "5MB table": 0.01,
    "lists 10k deep": 1,
    "quotes 10k deep": 1,
    "* x 100k": 1,
    "[ x 50k": 1,
    "2MB code": 0.02,
}


def flat(text: str) -> str:
    """Without white space: a long line is shown in pieces."""
    return "".join(text.replace(ZWSP, "").split())


def shown_whole(chat: ChatDriver, text: str) -> bool:
    """The end of the reply is in the view, markdown marks aside."""
    last = [w.strip("*[]`|>-#_ ") for w in text.strip().splitlines()[-1].split()]
    words = [w[-200:] for w in last if w][-3:]
    view = flat(chat.transcript_text())
    return all(w in view for w in words)


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_reply_completes_and_copies_exactly(
        chat: ChatDriver, server: LoopbackServer, case: str) -> None:
    text = CASES[case](SCALES[case])
    server.push(Scenario(deltas=chunks(text, 2_000)))
    chat.send("Say something hostile.")
    chat.wait_for_reply(timeout=120)
    window = chat.window
    assert window.controller.last_reply_text() == text
    chat.copy_last_reply()
    assert chat.clipboard() == text
    assert chat.clipboard("text/markdown") == text
    assert chat.clipboard("text/html")  # rendered, or the text itself when too big to render
    wait_until(chat.loop, lambda: not window.transcript.backlog.busy, timeout=120)
    assert shown_whole(chat, text)

    conversation = window.controller.conversation_id
    window.controller.new_chat()
    window.controller.open_chat(conversation)
    wait_until(chat.loop, lambda: window.controller.conversation_id == conversation
               and not window.transcript.backlog.busy, timeout=120)
    assert window.controller.last_reply_text() == text  # as stored
    assert shown_whole(chat, text)
    chat.copy_last_reply()
    assert chat.clipboard() == text


def test_a_runaway_block_is_shown_as_plain_text_then_formatting_resumes(
        chat: ChatDriver, server: LoopbackServer) -> None:
    table = CASES["5MB table"](0.01)
    text = f"Before **it**.\n\n{table}\nAfter **it**.\n"
    server.push(Scenario(deltas=chunks(text, 500)))
    chat.send("A big table, please.")
    chat.wait_for_reply(timeout=60)
    wait_until(chat.loop, lambda: not chat.window.transcript.backlog.busy, timeout=60)
    view = chat.transcript_text()
    assert plain_text.NOTE in view
    assert "| cell a | 12.5 | **bold** | `code` |" in view  # as sent, not as a table
    assert "Before it." in view and "After it." in view  # formatted around it
    chat.copy_last_reply()
    assert chat.clipboard() == text


def test_nesting_beyond_the_parsers_limit_loses_no_text(
        chat: ChatDriver, server: LoopbackServer) -> None:
    """markdown-it drops what lies deeper than 20 levels: such a block is shown as text."""
    text = "> " * 40 + "the bottom of the well\n\nAnd a **paragraph** after it."
    server.push(Scenario(deltas=[text]))
    chat.send("Deep?")
    chat.wait_for_reply()
    view = chat.transcript_text()
    assert "the bottom of the well" in view
    assert "And a paragraph after it." in view
