"""Export to Markdown and JSON, lossless JSON round trips, the ChatGPT import, and imports
that are all or nothing (malformed files, failures late in a file, cancel)."""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from desktop_chat.core.history.chatgpt import UID_PREFIX, import_chatgpt
from desktop_chat.core.history.store import Store, StoreError
from desktop_chat.core.history.transfer import (
    FORMAT,
    TransferError,
    export_json,
    export_markdown,
    export_markdown_all,
    import_file,
    import_json,
    read_json,
)
from desktop_chat.core.model.message import ReplyState, Role, Usage
from tests.conftest import DATA
from tests.support.history import add, begin_reply, finish, progress

CHATGPT_FIXTURE = DATA / "chatgpt_export_small.json"


def fill(store: Store) -> dict[str, int]:
    """Branches, every reply state, usage, reasoning, settings and an empty chat."""
    ids: dict[str, int] = {}
    c = ids["branches"] = store.create_conversation("Branches", "gpt-x",
                                                    extra={"system_prompt": "Be brief."})
    q = ids["q"] = add(store, c, None, Role.USER, "What is **WAL**?")
    a = ids["complete"] = begin_reply(store, c, q, "gpt-x")
    finish(store, a, ReplyState.COMPLETE, "Write-ahead logging.", "They ask about WAL.",
                       Usage(12, 4, 16), "stop")
    again = ids["stopped"] = begin_reply(store, c, q, "gpt-y")
    finish(store, again, ReplyState.STOPPED, "WAL is a jour")
    edited = add(store, c, None, Role.USER, "What is WAL mode in SQLite?")
    failed = begin_reply(store, c, edited, "gpt-x")
    finish(store, failed, ReplyState.FAILED, "", error="The server said no (HTTP 500).")
    store.set_active_leaf(c, again)
    other = ids["unicode"] = store.create_conversation("Ünïcödé ✓ and `code`")
    p = add(store, other, None, Role.SYSTEM, "You are terse.")
    p = add(store, other, p, Role.USER, "Print hi in Rust 🦀")
    r = begin_reply(store, other, p, "local")
    progress(store, r, '```rust\nfn main() { println!("hi"); }\n```')
    finish(store, r, ReplyState.INTERRUPTED, '```rust\nfn main() { println!("hi"); }\n```',
                       error="Connection lost.")
    ids["empty"] = store.create_conversation("Nothing yet")
    return ids


def normalized(export: dict[str, Any]) -> dict[str, Any]:
    """The export with database ids replaced by positions, which an import may change."""
    out = copy.deepcopy(export)
    out.pop("exported_at")
    for conversation in out["conversations"]:
        position = {m["id"]: i for i, m in enumerate(conversation["messages"])}
        for message in conversation["messages"]:
            message["id"] = position[message["id"]]
            message["parent"] = position.get(message["parent"])
        conversation["active_leaf"] = position.get(conversation["active_leaf"])
    return out


def snapshot(store: Store) -> tuple[dict[str, Any], int]:
    count = store._conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    return normalized(export_json(store)), count


# -- Markdown ----------------------------------------------------------------------------------


def test_markdown_shows_the_active_path_with_who_model_and_time(store: Store) -> None:
    ids = fill(store)
    text = export_markdown(store, ids["branches"])
    assert text.startswith("# Branches\n\nModel: gpt-x · Started 20")  # the last one used
    assert "## You — version 1 of 2 · " in text and "What is **WAL**?" in text
    assert "## Assistant (gpt-y) — version 2 of 2 · " in text
    assert "WAL is a jour\n\n*Stopped before the end.*" in text
    assert "Write-ahead logging." not in text  # another branch
    assert "WAL mode in SQLite" not in text
    unicode = export_markdown(store, ids["unicode"])
    assert "## System" in unicode and "🦀" in unicode
    assert "*Interrupted. Connection lost.*" in unicode
    store.set_active_leaf(ids["branches"], ids["complete"])
    assert "> **Reasoning**\n>\n> They ask about WAL." in export_markdown(store, ids["branches"])


def test_markdown_of_everything_is_one_file_per_conversation(store: Store,
                                                             tmp_path: Path) -> None:
    fill(store)
    seen: list[tuple[int, int]] = []
    files = export_markdown_all(store, tmp_path / "md", lambda *p: seen.append(p))
    assert len(files) == 3 and seen[-1] == (3, 3)
    assert all(f.exists() and f.suffix == ".md" and "`" not in f.name for f in files)
    with pytest.raises(TransferError):
        export_markdown(store, 999)


# -- our JSON ----------------------------------------------------------------------------------


def test_json_export_has_every_branch_and_detail(store: Store) -> None:
    ids = fill(store)
    data = export_json(store)
    assert (data["format"], data["version"]) == (FORMAT, 1)
    [branches] = [c for c in data["conversations"] if c["title"] == "Branches"]
    assert len(branches["messages"]) == 5 and branches["active_leaf"] == ids["stopped"]
    assert branches["extra"] == {"system_prompt": "Be brief."}
    first = branches["messages"][1]
    assert first["usage"] == {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
    assert (first["state"], first["reasoning"], first["finish_reason"]) == (
        "complete", "They ask about WAL.", "stop")
    assert json.loads(json.dumps(data)) == data  # plain JSON


def test_json_round_trip_is_lossless(store: Store, fresh: Store, tmp_path: Path) -> None:
    fill(store)
    original = export_json(store)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(original), "utf-8")
    result = import_file(fresh, path)
    assert (result.conversations, result.messages) == (3, 8)
    assert normalized(export_json(fresh)) == normalized(original)
    branches = fresh.list_conversations()[-1].id
    path_texts = [m.content for m in fresh.active_path(branches)]
    assert path_texts == ["What is **WAL**?", "WAL is a jour"]


def test_importing_the_same_export_twice_changes_nothing(store: Store) -> None:
    fill(store)
    before = snapshot(store)
    result = import_json(store, export_json(store))
    assert (result.conversations, result.already_present) == (0, 3)
    assert snapshot(store) == before


def test_a_reply_exported_mid_stream_imports_as_interrupted(store: Store, fresh: Store) -> None:
    c = store.create_conversation("Streaming")
    reply = begin_reply(store, c, add(store, c, None, Role.USER, "Go"), "m")
    progress(store, reply, "half")
    import_json(fresh, export_json(store))
    message = fresh.active_path(fresh.list_conversations()[0].id)[-1]
    assert (message.state, message.content) == (ReplyState.INTERRUPTED, "half")


def ours(*conversations: dict[str, Any], version: int = 1) -> dict[str, Any]:
    return {"format": FORMAT, "version": version, "conversations": list(conversations)}


def conv(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"uid": fields.pop("uid", None), "title": "t", "messages": list(messages), **fields}


def msg(key: Any, parent: Any = None, **fields: Any) -> dict[str, Any]:
    return {"id": key, "parent": parent, "role": "user", "content": "hi", **fields}


GOOD = conv(msg(1), msg(2, 1, role="assistant"))
MALFORMED_OURS = {
    "a list": [GOOD],
    "not ours": {"format": "something else", "conversations": []},
    "newer": ours(GOOD, version=2),
    "no list": {"format": FORMAT, "version": 1, "conversations": {"a": 1}},
    "not an object": ours(GOOD, "conversation"),
    "no messages": ours(GOOD, {"title": "t"}),
    "unknown role": ours(GOOD, conv(msg(1, role="wizard"))),
    "unknown state": ours(GOOD, conv(msg(1, state="exploded"))),
    "missing parent": ours(GOOD, conv(msg(1), msg(2, 7))),
    "unhashable parent": ours(GOOD, conv(msg(1), msg(2, [1]))),
    "loop": ours(GOOD, conv(msg(1, 2), msg(2, 1))),
    "repeated id": ours(GOOD, conv(msg(1), msg(1))),
    "missing id": ours(GOOD, conv({"role": "user", "content": "x"})),
    "text not a string": ours(GOOD, conv(msg(1, content=["x"]))),
    "bad settings": ours(GOOD, conv(msg(1), extra="x")),
}


@pytest.mark.parametrize("name", MALFORMED_OURS)
def test_a_malformed_export_changes_nothing(store: Store, name: str) -> None:
    fill(store)
    before = snapshot(store)
    with pytest.raises(TransferError) as caught:
        import_json(store, MALFORMED_OURS[name])
    assert str(caught.value)  # a sentence for the user
    assert snapshot(store) == before


def test_raising_from_progress_cancels_the_whole_import(store: Store) -> None:
    class Cancelled(Exception):
        pass

    def progress(done: int, total: int) -> None:
        if done == 2:
            raise Cancelled

    data = ours(*(conv(msg(1), uid=f"u{i}") for i in range(5)))
    with pytest.raises(Cancelled):
        import_json(store, data, progress)
    assert store.list_conversations() == []
    assert import_json(store, data).conversations == 5


# -- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not a valid JSON file"),
    (b"\xff\xfe\x00garbage", "not a valid JSON file"),
    (b'{"hello": "world"}', "neither a desktop-chat export nor a ChatGPT"),
])
def test_files_that_are_not_exports_give_a_clear_error(store: Store, tmp_path: Path,
                                                      content: bytes, message: str) -> None:
    path = tmp_path / "conversations.json"
    path.write_bytes(content)
    with pytest.raises(TransferError, match=message):
        import_file(store, path)
    with pytest.raises(TransferError, match="could not be read"):
        read_json(tmp_path / "missing.json")


# -- ChatGPT -----------------------------------------------------------------------------------


def test_chatgpt_export_keeps_its_branches(store: Store) -> None:
    calls: list[tuple[int, int]] = []
    result = import_file(store, CHATGPT_FIXTURE, lambda *p: calls.append(p))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert (result.conversations, result.messages, result.empty_conversations) == (2, 9, 1)
    assert result.skipped_messages == 5  # system x2, tool call, tool output, reasoning
    [haiku, rust] = store.list_conversations()
    assert (rust.title, rust.model, rust.created_at, rust.updated_at) == (
        "Rust lifetimes", "gpt-4o", 1714557600.0, 1714558200.0)
    assert store.conversation(rust.id).uid == UID_PREFIX + "6630a1b2-0000-4000-8000-00000000000a"

    by_text = {m.content.split("?")[0][:30]: m for m in store.all_messages(rust.id)}
    first = by_text["What is a lifetime in Rust"]
    edited = by_text["What is a lifetime in Rust, in"]
    assert first.parent_id is None and edited.parent_id is None  # the edit: sibling roots
    assert store.siblings(first.id) == [first.id, edited.id]
    replies = store.siblings(by_text["A lifetime is the scope for wh"].id)
    assert len(replies) == 2  # the regenerated reply

    path = store.active_path(rust.id)  # current_node, reached through skipped tool nodes
    assert [m.role for m in path] == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]
    assert path[1].content.startswith("Lifetimes describe")
    assert path[2].content == "[image]\n\nWhat does this compiler error mean?"
    assert path[2].parent_id == path[1].id and path[3].parent_id == path[2].id
    assert (path[3].state, path[3].model, path[3].created_at) == (
        ReplyState.STOPPED, "gpt-4o", 1714557660.0)
    assert [(m.sibling_index, m.sibling_count) for m in path] == [(0, 2), (1, 2), (0, 1), (0, 1)]
    assert by_text["A lifetime is how long a borro"].finish_reason == "length"

    [prompt, poem] = store.active_path(haiku.id)
    assert prompt.created_at == haiku.created_at  # no create_time: the conversation's
    assert poem.content.endswith("spring in a small bowl\n\n[some_future_part]")
    assert poem.model == "o1" and poem.parent_id == prompt.id
    assert store.search("borrowed")[0].conversation_id == rust.id


def test_a_chatgpt_export_imported_twice_is_not_duplicated(store: Store) -> None:
    import_file(store, CHATGPT_FIXTURE)
    again = import_file(store, CHATGPT_FIXTURE)
    assert (again.conversations, again.already_present) == (0, 2)
    assert len(store.list_conversations()) == 2


def chatgpt_fixture() -> list[dict[str, Any]]:
    return json.loads(CHATGPT_FIXTURE.read_text("utf-8"))


def malformed_chatgpt() -> dict[str, Any]:
    good = chatgpt_fixture()[0]
    no_mapping = {k: v for k, v in good.items() if k != "mapping"}
    loop = copy.deepcopy(good)
    loop["mapping"]["root"]["parent"] = "a2"
    loop["conversation_id"] = "loop"
    bad_node = copy.deepcopy(good)
    bad_node["mapping"]["u1"] = "not a node"
    return {
        "not a list": {"conversations": [good]},
        "entry not an object": [good, 42],
        "no mapping": [good, no_mapping],
        "mapping not an object": [good, {**good, "mapping": ["x"]}],
        "node not an object": [good, bad_node],
        "loop": [good, loop],
    }


@pytest.mark.parametrize("name", malformed_chatgpt())
def test_a_malformed_chatgpt_export_changes_nothing(store: Store, name: str) -> None:
    fill(store)
    before = snapshot(store)
    with pytest.raises(TransferError) as caught:
        import_chatgpt(store, malformed_chatgpt()[name])
    assert " 2 " in str(caught.value) or "list" in str(caught.value)  # says which one
    assert snapshot(store) == before


def test_a_write_error_mid_import_rolls_back(store: Store, monkeypatch: pytest.MonkeyPatch,
                                            ) -> None:
    from desktop_chat.core.history import db

    calls = 0
    real = db.BulkWriter.add_message

    def failing(self: db.BulkWriter, *args: Any, **kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 8:
            raise StoreError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(db.BulkWriter, "add_message", failing)
    with pytest.raises(TransferError, match="Nothing was imported"):
        import_file(store, CHATGPT_FIXTURE)
    assert store.list_conversations() == []


# -- large imports -----------------------------------------------------------------------------


def many_chatgpt_conversations(count: int) -> list[dict[str, Any]]:
    def node(key: str, parent: str | None, role: str | None, text: str) -> dict[str, Any]:
        message = None if role is None else {
            "author": {"role": role}, "create_time": 1.7e9,
            "content": {"content_type": "text", "parts": [text]}, "metadata": {}}
        return {"id": key, "parent": parent, "children": [], "message": message}

    out = []
    for i in range(count):
        chain = [node("r", None, None, ""), node("u1", "r", "user", f"question {i}"),
                 node("a1", "u1", "assistant", f"answer {i} " * 20),
                 node("u2", "a1", "user", "thanks"), node("a2", "u2", "assistant", "welcome")]
        out.append({"title": f"chat {i}", "create_time": 1.7e9 + i, "update_time": 1.7e9 + i,
                    "conversation_id": f"c{i}", "current_node": "a2",
                    "mapping": {n["id"]: n for n in chain}})
    return out


def test_thousands_of_conversations_import_with_progress(store: Store, fresh: Store) -> None:
    data = many_chatgpt_conversations(2000)
    calls: list[tuple[int, int]] = []
    started = time.perf_counter()
    result = import_chatgpt(store, data, lambda *p: calls.append(p))
    chatgpt_s = time.perf_counter() - started
    assert (result.conversations, result.messages) == (2000, 8000)
    assert len(calls) == 2001 and calls[-1] == (2000, 2000)

    started = time.perf_counter()
    exported = export_json(store)
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    assert import_json(fresh, exported).messages == 8000
    ours_s = time.perf_counter() - started
    print(f"\n2,000 conversations: ChatGPT import {chatgpt_s:.2f} s, JSON export "
          f"{export_s:.2f} s, JSON import {ours_s:.2f} s")
    assert fresh.search("question 1999")[0].title == "chat 1999"


def test_the_store_stays_readable_while_an_import_runs_in_a_thread(store: Store) -> None:
    chat_id = store.create_conversation("already here")
    halfway, resume = threading.Event(), threading.Event()

    def progress(done: int, total: int) -> None:
        if done == total // 2:
            halfway.set()
            assert resume.wait(10)

    worker = threading.Thread(target=import_chatgpt,
                              args=(store, many_chatgpt_conversations(200), progress))
    worker.start()
    try:
        assert halfway.wait(10)
        started = time.perf_counter()
        assert [s.id for s in store.list_conversations()] == [chat_id]  # not blocked
        assert time.perf_counter() - started < 1.0
        with Store(store.path, busy_timeout_s=0.05) as impatient, pytest.raises(StoreError):
            impatient.rename_conversation(chat_id, "writes wait for the import")
    finally:
        resume.set()
        worker.join()
    assert len(store.list_conversations(limit=None)) == 201


def test_markdown_export_keeps_latex_exactly(store: Store) -> None:
    latex = ("Inline $x^2$, \\(e^{i\\pi}\\), a price $5 and\n\n$$\\int_0^1 x\\,dx$$\n\n"
             "\\[\\frac{a}{b}\\]")
    c = store.create_conversation("Math")
    q = add(store, c, None, Role.USER, "math?")
    a = begin_reply(store, c, q, "m")
    finish(store, a, ReplyState.COMPLETE, latex)
    assert f"\n{latex}\n" in export_markdown(store, c)
