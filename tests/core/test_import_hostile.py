"""Hostile and odd import files (issue #20): each ends with an `ImportResult` or a
`TransferError` whose text names the conversation and the field, never another exception, and
a refusal leaves the history exactly as it was. A property test feeds random JSON shapes to
both importers."""

from __future__ import annotations

import copy
import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_chat.core.history import chatgpt
from desktop_chat.core.history.chatgpt import import_chatgpt
from desktop_chat.core.history.imports import ImportResult, TransferError
from desktop_chat.core.history.store import Store
from desktop_chat.core.history.transfer import FORMAT, import_file, import_json
from tests.conftest import DATA

CHATGPT_FIXTURE = DATA / "chatgpt_export_small.json"


def chatgpt_export() -> list[dict[str, Any]]:
    return json.loads(CHATGPT_FIXTURE.read_text("utf-8"))


def rust() -> dict[str, Any]:
    """The fixture's first conversation ("Rust lifetimes"), to be damaged by a test."""
    return copy.deepcopy(chatgpt_export()[0])


def ours(*conversations: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "version": 1, "conversations": list(conversations)}


def our_conversation(**message_fields: Any) -> dict[str, Any]:
    return {"uid": "u-hostile", "title": "Hostile", "created_at": 1.7e9, "messages": [
        {"id": 1, "parent": None, "role": "user", "content": "hi"},
        {"id": 2, "parent": 1, "role": "assistant", "content": "hello", **message_fields}]}


def state(store: Store) -> tuple[Any, ...]:
    """Everything an import could change, cheaply: row counts and the last ids."""
    conn = store._conn
    return tuple(conn.execute(f"SELECT count(*), max(id) FROM {table}").fetchone()[:]
                 for table in ("conversations", "messages", "attachments"))


def refused(store: Store, run: Any) -> str:
    """Run an import that must be refused: its message, with the history unchanged."""
    before = state(store)
    with pytest.raises(TransferError) as caught:
        run()
    assert state(store) == before
    message = str(caught.value)
    assert message and len(message) < 400, message  # a sentence, not a dump of the file
    return message


@pytest.fixture
def filled(store: Store) -> Store:
    import_file(store, CHATGPT_FIXTURE)
    return store


# -- one case each -----------------------------------------------------------------------------


def test_json_nested_100000_deep_is_refused_in_words(filled: Store, tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    message = refused(filled, lambda: import_file(filled, path))
    assert "conversations.json is nested too deeply" in message


def test_settings_nested_too_deep_to_store_are_refused_naming_the_conversation(
        filled: Store) -> None:
    deep: Any = {}
    for _ in range(5_000):
        deep = {"x": deep}
    conversation = our_conversation()
    conversation["extra"] = deep
    message = refused(filled, lambda: import_json(filled, ours(conversation)))
    assert message.startswith("Conversation 1 ('Hostile'): its settings ('extra')")


@pytest.mark.parametrize("field", ["role", "content_type"])
def test_a_list_where_chatgpt_has_text_is_refused_naming_it(filled: Store, field: str) -> None:
    conversation = rust()
    message = conversation["mapping"]["u1"]["message"]
    if field == "role":
        message["author"]["role"] = ["user"]
    else:
        message["content"]["content_type"] = ["text"]
    text = refused(filled, lambda: import_chatgpt(filled, [conversation]))
    assert text.startswith("Conversation 1 ('Rust lifetimes'), message 'u1': its ")
    assert ("author role (a list)" if field == "role" else "content_type (a list)") in text


@pytest.mark.parametrize(("raw", "shown"), [
    ("1e400", "inf"),  # too large for a float: JSON readers make it infinity
    ("1" + "0" * 400, "a number of 401 digits"),  # an integer no float can hold
    ("-1", "-1"),
    ("NaN", "nan"),
    ("253402300800", "253402300800"),  # the first second of the year 10000
])
def test_a_time_outside_1970_to_9999_is_refused_naming_the_field(
        filled: Store, tmp_path: Path, raw: str, shown: str) -> None:
    conversation = rust()
    conversation["mapping"]["a1"]["message"]["create_time"] = "@TIME@"
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([conversation]).replace('"@TIME@"', raw))
    message = refused(filled, lambda: import_file(filled, path))
    assert message == (f"Conversation 1 ('Rust lifetimes'), message 'a1': its create_time "
                       f"({shown}) is not a time between the years 1970 and 9999.")


def test_a_huge_time_in_our_export_is_refused_naming_the_field(filled: Store) -> None:
    conversation = our_conversation()
    conversation["updated_at"] = math.inf
    message = refused(filled, lambda: import_json(filled, ours(conversation)))
    assert message == ("Conversation 1 ('Hostile'): its updated_at (inf) is not a time "
                       "between the years 1970 and 9999.")


@pytest.mark.parametrize("value", [2**64, 2**63, -1])
def test_a_usage_count_no_database_holds_is_refused(filled: Store, value: int) -> None:
    conversation = our_conversation(usage={"prompt_tokens": 3, "completion_tokens": value})
    message = refused(filled, lambda: import_json(filled, ours(conversation)))
    assert message == (f"Conversation 1 ('Hostile'), message 2: its usage completion_tokens "
                       f"({value}) is not a token count (a whole number from 0 to 2^63 - 1).")


def test_the_largest_usage_count_sqlite_holds_is_kept(store: Store) -> None:
    conversation = our_conversation(usage={"total_tokens": 2**63 - 1})
    assert import_json(store, ours(conversation)).messages == 2
    reply = store.active_path(store.list_conversations()[0].id)[-1]
    assert reply.usage is not None and reply.usage.total_tokens == 2**63 - 1


def test_a_number_with_thousands_of_digits_is_refused_in_words(filled: Store,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    path.write_text('[{"title": "big", "mapping": {}, "n": ' + "7" * 5000 + "}]")
    message = refused(filled, lambda: import_file(filled, path))
    assert message == ("conversations.json holds a number with thousands of digits, which no "
                       "chat export has; it was not read.")


def test_lone_surrogates_become_replacement_characters(store: Store, tmp_path: Path) -> None:
    conversation = rust()
    conversation["title"] = "Broken \ud83d emoji"
    conversation["mapping"]["u1"]["message"]["content"]["parts"] = ["half an emoji: \udca9!"]
    conversation["default_model_slug"] = "gpt-\udfff"
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([conversation]))  # escaped as \ud83d: valid JSON
    assert import_file(store, path).conversations == 1
    [summary] = store.list_conversations()
    assert summary.title == "Broken \ufffd emoji" and summary.model == "gpt-\ufffd"
    texts = [m.content for m in store.all_messages(summary.id)]
    assert "half an emoji: \ufffd!" in texts


def test_lone_surrogates_in_our_export_are_replaced_everywhere(store: Store) -> None:
    conversation = our_conversation(error="bad \ud800", reasoning="think \udbff",
                                    model="m\udc00", finish_reason="stop\ud800")
    conversation["extra"] = {"system_prompt": "be \udfff brief", "\ud800key": ["\udc00"]}
    conversation["uid"] = "uid-\ud800"
    assert import_json(store, ours(conversation)).messages == 2
    [summary] = store.list_conversations()
    stored = store.conversation(summary.id)
    assert stored is not None and stored.uid == "uid-\ufffd"
    assert stored.extra == {"system_prompt": "be \ufffd brief", "\ufffdkey": ["\ufffd"]}
    reply = store.active_path(summary.id)[-1]
    assert (reply.error, reply.reasoning, reply.model, reply.finish_reason) == (
        "bad \ufffd", "think \ufffd", "m\ufffd", "stop\ufffd")


def test_a_huge_title_is_quoted_shortened_in_the_refusal(filled: Store) -> None:
    conversation = rust()
    conversation["title"] = "T" * 10_000_000
    conversation["mapping"]["u1"]["message"]["author"]["role"] = {"not": "text"}
    message = refused(filled, lambda: import_chatgpt(filled, [conversation]))
    assert message.startswith("Conversation 1 ('" + "T" * 60 + "…'), message 'u1': its author "
                              "role (an object) is not text.")


def test_a_failure_nobody_foresaw_is_refused_naming_the_conversation(
        filled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(content: object) -> str:
        raise KeyError("a bug of ours")

    monkeypatch.setattr(chatgpt, "_text", broken)
    message = refused(filled, lambda: import_chatgpt(filled, chatgpt_export()))
    assert message == ("Conversation 1 ('Rust lifetimes') could not be read: it holds a value "
                       "this version does not understand (KeyError).")


def test_a_value_sqlite_refuses_is_refused_naming_the_conversation(
        filled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_chat.core.history import db

    real = db.insert_message

    def odd(conn: sqlite3.Connection, conversation_id: int, message: Any) -> int:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    monkeypatch.setattr(db, "insert_message", odd)
    message = refused(filled, lambda: import_json(filled, ours(our_conversation())))
    assert message == ("Conversation 1 ('Hostile') could not be saved: it holds a value that "
                       "cannot be stored (OverflowError).")
    monkeypatch.setattr(db, "insert_message", real)


# -- any shape whatsoever ----------------------------------------------------------------------

# text as files have it: now and then a lone surrogate, which no UTF-8 can hold
TEXT = st.text(max_size=12) | st.sampled_from(["", "\ud800", "half \udca9 emoji"])
TIME = st.floats(1e9, 2e9) | st.sampled_from([1e300, math.inf, -5, 2**80])
COUNT = st.integers(0, 10**6) | st.sampled_from([2**63, 2**64, -1])
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62)
           | st.floats(allow_nan=True, allow_infinity=True) | TEXT
           | st.sampled_from(["user", "assistant", "system", "complete", "streaming", "text",
                              "code", "thoughts", "all", "\ud800", "u1", "a1", "root"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(TEXT | st.sampled_from(
                        ["id", "parent", "role", "content", "message", "mapping", "title"]),
                        inner, max_size=4), max_leaves=20)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(value, value, value, value, value, JSON)


def chatgpt_node(key: str, parent: str | None) -> st.SearchStrategy[Any]:
    message = st.fixed_dictionaries({
        "author": maybe(st.fixed_dictionaries({"role": maybe(st.sampled_from(
            ["user", "assistant", "system", "tool"]))})),
        "content": maybe(st.fixed_dictionaries({
            "content_type": maybe(st.sampled_from(["text", "code", "thoughts"])),
            "parts": maybe(st.lists(maybe(TEXT), max_size=3)),
            "text": maybe(TEXT)})),
        "create_time": maybe(TIME),
        "update_time": maybe(st.none()),
        "metadata": maybe(st.fixed_dictionaries({"model_slug": maybe(st.just("gpt-4o"))})),
        "recipient": maybe(st.just("all")),
    })
    return maybe(st.fixed_dictionaries({
        "id": st.just(key), "parent": maybe(st.just(parent)),
        "children": maybe(st.lists(st.sampled_from(["n0", "n1", "n2", "n3"]), max_size=3)),
        "message": maybe(message)}))


CHATGPT_CONVERSATION = st.fixed_dictionaries({
    "title": maybe(TEXT),
    "create_time": maybe(TIME),
    "update_time": maybe(TIME),
    "conversation_id": maybe(st.sampled_from(["c1", "c2", "c3"])),
    "current_node": maybe(st.sampled_from(["n0", "n1", "n2", "n3"])),
    "mapping": maybe(st.fixed_dictionaries({
        "n0": chatgpt_node("n0", None), "n1": chatgpt_node("n1", "n0"),
        "n2": chatgpt_node("n2", "n1"), "n3": chatgpt_node("n3", "n1")})),
})
CHATGPT = maybe(st.lists(CHATGPT_CONVERSATION, max_size=3))

OUR_MESSAGE = st.fixed_dictionaries({
    "id": maybe(st.sampled_from([1, 2, 3, "x"])),
    "parent": maybe(st.sampled_from([None, None, 1, 2])),
    "role": maybe(st.sampled_from(["user", "assistant", "system"])),
    "content": maybe(TEXT),
    "state": maybe(st.sampled_from(["complete", "streaming", "failed"])),
    "created_at": maybe(TIME),
    "usage": maybe(st.fixed_dictionaries({"prompt_tokens": maybe(COUNT)})),
    "error": maybe(TEXT),
    "attachments": maybe(st.just([])),
})
OURS = maybe(st.fixed_dictionaries({
    "format": maybe(st.just(FORMAT)), "version": maybe(st.just(1)),
    "conversations": maybe(st.lists(st.fixed_dictionaries({
        "uid": maybe(st.sampled_from(["u1", "u2", "u3"])), "title": maybe(TEXT),
        "created_at": maybe(TIME), "extra": maybe(st.just({})),
        "active_leaf": maybe(st.sampled_from([1, 2, 3])),
        "messages": maybe(st.lists(OUR_MESSAGE, max_size=4,
                                   unique_by=lambda m: repr(m["id"])))}), max_size=3))}))


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One history for all examples: imports that succeed pile up, as they would."""
    with Store(tmp_path_factory.mktemp("property") / "history.sqlite3") as opened:
        yield opened


def one_of_two_outcomes(store: Store, run: Any) -> None:
    before = state(store)
    try:
        result = run()
    except TransferError as exc:
        assert str(exc)
        assert state(store) == before  # a refusal changes nothing
    else:
        assert isinstance(result, ImportResult)
        assert result.summary().startswith("Imported ")


PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@PROPERTY
@given(data=CHATGPT)
def test_any_shape_given_to_the_chatgpt_importer_ends_in_one_of_two_ways(
        shared_store: Store, data: Any) -> None:
    one_of_two_outcomes(shared_store, lambda: import_chatgpt(shared_store, data))


@PROPERTY
@given(data=OURS)
def test_any_shape_given_to_our_importer_ends_in_one_of_two_ways(
        shared_store: Store, data: Any) -> None:
    one_of_two_outcomes(shared_store, lambda: import_json(shared_store, data))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(CHATGPT, OURS, JSON))
def test_any_json_file_ends_in_one_of_two_ways(shared_store: Store,
                                               tmp_path_factory: pytest.TempPathFactory,
                                               data: Any) -> None:
    path = tmp_path_factory.mktemp("file") / "conversations.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    one_of_two_outcomes(shared_store, lambda: import_file(shared_store, path))
