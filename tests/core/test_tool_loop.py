"""The tool loop over the real client, the loopback server emitting tool calls, and a real
MCP server (stdio, written with the SDK): model -> tool calls -> consent -> results -> model."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from desktop_chat.core.chat.session import ChatSession
from desktop_chat.core.config.providers import ApiFlavour, ConversationSettings, Endpoint
from desktop_chat.core.history.store import Store
from desktop_chat.core.llm.client import ChatClient
from desktop_chat.core.llm.errors import ErrorKind
from desktop_chat.core.model.message import ReplyState, ToolCall, ToolCallState
from desktop_chat.core.tools.consent import Decision, ToolSettings
from desktop_chat.core.tools.host import ToolHost, ToolInfo
from desktop_chat.core.tools.toolbox import ToolBox
from tests.conftest import TEST_KEY
from tests.support.openai_server import LoopbackServer, Scenario
from tests.support.tools import settled, stdio_config


def call(call_id: str, name: str, **arguments: Any) -> dict[str, str]:
    return {"id": call_id, "name": name, "arguments": json.dumps(arguments)}


class Harness:
    def __init__(self, server: LoopbackServer, flavour: ApiFlavour = ApiFlavour.CHAT,
                 settings: ToolSettings | None = None,
                 answers: list[Decision] | None = None, store: Store | None = None) -> None:
        self.server = server
        self.settings = settings or ToolSettings()
        self.answers = list(answers or [])
        self.asked: list[tuple[ToolCall, ToolInfo]] = []
        self.flavour = flavour
        self.store = store

    async def ask(self, call: ToolCall, tool: ToolInfo) -> Decision:
        self.asked.append((call, tool))
        return self.answers.pop(0)

    def remember(self, settings: ToolSettings) -> None:
        self.settings = settings

    async def run(self, prompt: str, *, before: Callable[[ChatSession], None] | None = None,
                  cancel_after_s: float | None = None, **config: object) -> ChatSession:
        host = ToolHost(asyncio.get_running_loop())
        host.start([stdio_config("test", **config)])
        try:
            await settled(host)
            box = ToolBox(host, lambda: self.settings, self.remember, self.ask)
            endpoint = Endpoint(self.server.base_url, TEST_KEY, 2.0, 10.0, api=self.flavour)
            session = ChatSession(ChatClient(endpoint), "test-model", tools=box,
                                  store=self.store)
            if before:
                before(session)
            turn = self.turn = session.start(prompt)
            task = asyncio.ensure_future(session.run(turn))
            if cancel_after_s is not None:
                await asyncio.sleep(cancel_after_s)
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await session.client.aclose()
            return session
        finally:
            await host.aclose()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.parametrize("flavour", [ApiFlavour.CHAT, ApiFlavour.RESPONSES])
def test_parallel_calls_run_and_their_results_go_back(server: LoopbackServer,
                                                      flavour: ApiFlavour) -> None:
    server.push(Scenario(deltas=["Let me add."], tool_calls=[
        call("c1", "test__add", a=2, b=3), call("c2", "test__echo", text="héllo")]),
        Scenario(deltas=["2 + 3 = 5"]))
    harness = Harness(server, flavour, answers=[Decision.ALLOW_ONCE, Decision.ALLOW_ONCE])
    session = run(harness.run("add 2 and 3"))
    reply = session.messages[-1]
    assert reply.state is ReplyState.COMPLETE
    assert [(c.label, c.state, c.result) for c in reply.tool_calls] == [
        ("test › add", ToolCallState.DONE, "5"), ("test › echo", ToolCallState.DONE, "héllo")]
    assert reply.content == "Let me add.\n\n2 + 3 = 5"
    assert [c.tool for c, _ in harness.asked] == ["add", "echo"]
    first, second = server.replies_asked
    assert first.body is not None and second.body is not None
    if flavour is ApiFlavour.CHAT:
        names = [t["function"]["name"] for t in first.body["tools"]]
        assert "test__add" in names and "test__crash" in names
        assistant, *results = second.body["messages"][-3:]
        assert assistant["tool_calls"][0]["function"] == {"name": "test__add",
                                                          "arguments": '{"a": 2, "b": 3}'}
        assert assistant["content"] == "Let me add."
        assert results == [{"role": "tool", "tool_call_id": "c1", "content": "5"},
                           {"role": "tool", "tool_call_id": "c2", "content": "héllo"}]
    else:
        assert {t["name"] for t in first.body["tools"]} >= {"test__add", "test__echo"}
        items = second.body["input"][-5:]
        assert [i.get("type") for i in items[1:]] == [
            "function_call", "function_call", "function_call_output", "function_call_output"]
        assert items[3] == {"type": "function_call_output", "call_id": "c1", "output": "5"}


def test_denied_call_tells_the_model_and_always_allow_is_remembered(
        server: LoopbackServer) -> None:
    server.push(Scenario(tool_calls=[call("c1", "test__echo", text="secret")]),
                Scenario(tool_calls=[call("c2", "test__add", a=1, b=1)]),
                Scenario(tool_calls=[call("c3", "test__add", a=2, b=2)]),
                Scenario(deltas=["done"]))
    harness = Harness(server, answers=[Decision.DENY, Decision.ALLOW_ALWAYS])
    session = run(harness.run("go"))
    calls = session.messages[-1].tool_calls
    assert [c.state for c in calls] == [ToolCallState.DENIED, ToolCallState.DONE,
                                        ToolCallState.DONE]
    assert len(harness.asked) == 2  # the third call was allowed by the remembered choice
    assert ("test", "add") in harness.settings.always_allowed
    denied = server.replies_asked[1].body["messages"][-1]  # type: ignore[index]
    assert denied["tool_call_id"] == "c1" and "denied" in denied["content"]


def test_trusted_server_and_read_only_opt_in_skip_the_question(server: LoopbackServer) -> None:
    server.push(Scenario(tool_calls=[call("c1", "test__clock")]), Scenario(deltas=["ok"]))
    harness = Harness(server, settings=ToolSettings(auto_allow_read_only=True))
    session = run(harness.run("time?"))
    assert session.messages[-1].tool_calls[0].state is ToolCallState.DONE
    assert not harness.asked
    server.push(Scenario(tool_calls=[call("c1", "test__echo", text="x")]),
                Scenario(deltas=["ok"]))
    harness = Harness(server)
    session = run(harness.run("echo", trusted=True))
    assert session.messages[-1].tool_calls[0].state is ToolCallState.DONE
    assert not harness.asked


def test_faults_end_in_words_the_model_and_user_see(server: LoopbackServer) -> None:
    server.push(Scenario(tool_calls=[
        {"id": "c1", "name": "test__echo", "arguments": '{"text": "unterminated'},
        call("c2", "nope__missing"), call("c3", "test__fail"),
        call("c4", "test__sleep", seconds=5)]), Scenario(deltas=["sorry"]))
    harness = Harness(server, answers=[Decision.ALLOW_ONCE] * 2)
    session = run(harness.run("break things", timeout_s=0.5))
    c1, c2, c3, c4 = session.messages[-1].tool_calls
    assert c1.state is ToolCallState.FAILED and "not valid JSON" in c1.result
    assert c2.state is ToolCallState.FAILED and "no tool named 'nope__missing'" in c2.result
    assert c3.state is ToolCallState.FAILED and "fail" in c3.result
    assert c4.state is ToolCallState.FAILED and "did not answer within 0.5 s" in c4.result
    assert session.messages[-1].state is ReplyState.COMPLETE


def test_crash_mid_call_and_huge_result(server: LoopbackServer) -> None:
    size = 5 * 1024 * 1024
    server.push(Scenario(tool_calls=[call("c1", "test__huge", size=size)]),
                Scenario(tool_calls=[call("c2", "test__crash")]), Scenario(deltas=["ok"]))
    harness = Harness(server, settings=ToolSettings().allow_always("test", "huge")
                      .allow_always("test", "crash"))
    session = run(harness.run("big"))
    huge, crash = session.messages[-1].tool_calls
    assert huge.state is ToolCallState.DONE and len(huge.result) == size
    assert crash.state is ToolCallState.FAILED and "stopped while running 'crash'" in crash.result


def test_step_limit_ends_the_turn_with_a_message(server: LoopbackServer) -> None:
    server.push(*[Scenario(tool_calls=[call(f"c{i}", "test__add", a=i, b=i)])
                  for i in range(4)])
    harness = Harness(server, settings=ToolSettings(step_limit=2).allow_always("test", "add"))
    session = run(harness.run("loop"))
    reply = session.messages[-1]
    assert len(reply.tool_calls) == 2 and len(server.replies_asked) == 2
    assert reply.state is ReplyState.INTERRUPTED and "2 steps" in (reply.error or "")


def test_stop_while_a_tool_runs_cancels_it_and_keeps_everything(
        server: LoopbackServer, store: Store) -> None:
    server.push(Scenario(deltas=["Waiting."], tool_calls=[call("c1", "test__sleep",
                                                               seconds=30)]))
    harness = Harness(server, settings=ToolSettings().allow_always("test", "sleep"),
                      store=store)
    session = run(harness.run("sleep", cancel_after_s=1.5))
    reply = session.messages[-1]
    assert reply.state is ReplyState.STOPPED and reply.content == "Waiting."
    assert reply.tool_calls[0].state is ToolCallState.CANCELLED
    stored = store.active_path(session.conversation_id)[-1]  # type: ignore[arg-type]
    assert stored.tool_calls == reply.tool_calls and stored.content == "Waiting."


def test_tools_off_in_a_conversation_sends_none(server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["plain"]))
    session = run(Harness(server).run(
        "hi", before=lambda s: s.set_overrides(ConversationSettings(tools_off=True))))
    assert "tools" not in server.replies_asked[0].body  # type: ignore[operator]
    assert session.messages[-1].content == "plain"


def test_a_server_that_rejects_tools_says_how_to_turn_them_off(server: LoopbackServer) -> None:
    server.push(Scenario(status=400, error_body={"error": {
        "message": "tools is not supported for this model", "type": "invalid_request_error"}}))
    harness = Harness(server)
    session = run(harness.run("hi"))
    assert session.messages == []  # the prompt goes back to the composer
    assert harness.turn.error_kind is ErrorKind.TOOLS_REJECTED
    assert "Turn tools off for this conversation" in (harness.turn.reply.error or "")


def test_tool_calls_survive_the_history_and_the_exports(server: LoopbackServer,
                                                        store: Store) -> None:
    from desktop_chat.core.history import transfer

    server.push(Scenario(deltas=["Checking."], tool_calls=[call("c1", "test__echo",
                                                                text="``` fenced")]),
                Scenario(deltas=["It said so."]))
    harness = Harness(server, settings=ToolSettings().allow_always("test", "echo"), store=store)
    session = run(harness.run("echo please"))
    conversation_id = session.conversation_id
    assert conversation_id is not None
    stored = store.active_path(conversation_id)[-1]
    assert [type(p).__name__ for p in stored.parts] == ["Text", "ToolCall", "Text"]
    assert stored.parts == session.messages[-1].parts
    # sent back correctly in a later request of the conversation
    assert stored.request_messages()[1] == {"role": "tool", "tool_call_id": "c1",
                                            "content": "``` fenced"}
    exported = transfer.export_json(store)
    message = exported["conversations"][0]["messages"][-1]
    assert message["tool_calls"][0]["result"] == "``` fenced"
    assert message["tool_calls"][0]["at"] == len("Checking.")
    markdown = transfer.export_markdown(store, conversation_id)
    assert "**Tool: test › echo** · done" in markdown
    assert "````\n``` fenced\n````" in markdown
    other = Store(store.path.with_name("other.sqlite3"))
    try:
        transfer.import_json(other, exported)
        imported = other.active_path(other.list_conversations(limit=None)[0].id)[-1]
        assert imported.parts == stored.parts
    finally:
        other.close()


def test_a_call_open_when_the_app_died_comes_back_interrupted(store: Store) -> None:
    from desktop_chat.core.model.message import Message, Role

    conversation = store.create_conversation("t", "m")
    prompt = Message.of(Role.USER, "go")
    store.add_message(conversation, prompt)
    reply = Message(Role.ASSISTANT, state=ReplyState.STREAMING, parent_id=prompt.id)
    store.add_message(conversation, reply)
    reply.append_text("Running it.")
    reply.parts.append(ToolCall("c1", "test__sleep", '{"seconds": 9}', "test", "sleep", 1,
                                ToolCallState.RUNNING))
    store.save_progress(reply)
    store.close()
    reopened = Store(store.path)
    try:
        reopened.mark_interrupted_on_start()
        found = reopened.active_path(conversation)[-1]
        assert found.state is ReplyState.INTERRUPTED
        assert found.tool_calls[0].state is ToolCallState.INTERRUPTED
        assert "interrupted" in found.request_messages()[1]["content"]
    finally:
        reopened.close()
