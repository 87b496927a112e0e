"""Exporting never fails on a conversation the store holds, whatever its times say: a value
an old import let in (1e308, 1e400 read as infinity), a negative one, one past year 9999.
Such rows are written straight into the database, as a damaged or old file would have them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from desktop_chat.core.history.store import Store
from desktop_chat.core.history.transfer import export_json, export_markdown, export_markdown_all
from desktop_chat.core.model.message import ReplyState, Role
from tests.support.history import add, begin_reply, finish

ODD_TIMES = [1e308, math.inf, -math.inf, -1e308, -1.0, -62135596801.0, 1e12, 2**63 - 1,
             -(2**63)]


def odd_conversation(store: Store, when: float) -> int:
    """A normal conversation whose every time is `when`."""
    conversation = store.create_conversation("Odd times", "gpt-x")
    prompt = add(store, conversation, None, Role.USER, "When was this?")
    reply = begin_reply(store, conversation, prompt, "gpt-x")
    finish(store, reply, ReplyState.COMPLETE, "Who knows.")
    with store._conn:
        store._conn.execute("UPDATE conversations SET created_at = ?, updated_at = ?",
                            (when, when))
        store._conn.execute("UPDATE messages SET created_at = ?, updated_at = ?",
                            (when, when))
    return conversation


def strict_json(text: str) -> object:
    """What any JSON reader accepts: no NaN or Infinity, which Python writes by default."""
    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("when", ODD_TIMES, ids=repr)
def test_markdown_export_never_fails_on_odd_times(store: Store, when: float) -> None:
    conversation = odd_conversation(store, when)
    text = export_markdown(store, conversation)
    assert "When was this?" in text and "Who knows." in text
    assert "## You" in text and "## Assistant (gpt-x)" in text


@pytest.mark.parametrize("when", [1e308, math.inf, 1e12, -(2**63)], ids=repr)
def test_a_time_no_calendar_holds_is_said_to_be_unknown(store: Store, when: float) -> None:
    text = export_markdown(store, odd_conversation(store, when))
    assert text.startswith("# Odd times\n\nModel: gpt-x · Start date unknown\n")
    assert "## You\n\nWhen was this?" in text


@pytest.mark.parametrize("when", ODD_TIMES, ids=repr)
def test_markdown_export_of_everything_writes_every_file(store: Store, when: float,
                                                         tmp_path: Path) -> None:
    odd_conversation(store, when)
    (written,) = export_markdown_all(store, tmp_path / "md")
    assert "Who knows." in written.read_text(encoding="utf-8")


@pytest.mark.parametrize("when", ODD_TIMES, ids=repr)
def test_json_export_of_odd_times_is_strict_json(store: Store, when: float) -> None:
    odd_conversation(store, when)
    data = export_json(store)
    (conversation,) = strict_json(json.dumps(data))["conversations"]  # type: ignore[index]
    assert [m["content"] for m in conversation["messages"]] == ["When was this?", "Who knows."]
    times = [conversation["created_at"], *(m["created_at"] for m in conversation["messages"])]
    # a time that JSON can hold is kept as it is; infinity cannot be written: it is left out
    assert times == [float(when) if math.isfinite(when) else None] * 3


def test_a_normal_time_is_still_shown(store: Store) -> None:
    conversation = odd_conversation(store, 1_700_000_000.0)  # November 2023
    assert "Started 2023-11-1" in export_markdown(store, conversation)
