"""`ChatSession` over the real client and loopback server: one turn, its outcome recorded in
the conversation, cancellation, the request it builds, and that it gives the loop back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from desktop_chat.core.chat.session import ChatSession, title_from_prompt
from desktop_chat.core.chat.turn import Turn
from desktop_chat.core.config.providers import ConversationSettings, GenerationParams
from desktop_chat.core.history.store import Store
from desktop_chat.core.llm.client import ChatClient, ChatRequest, Endpoint
from desktop_chat.core.llm.errors import ErrorKind
from desktop_chat.core.llm.events import Finished, StreamEvent, TextDelta
from desktop_chat.core.model.message import Conversation, Message, ReplyState, Role, Usage
from tests.conftest import TEST_KEY
from tests.support.openai_server import LoopbackServer, Scenario

T = TypeVar("T")
PROMPT = "Explain monads — briefly, please"
RECEIVED = ["Monads are ", "a way to ", "chain steps."]

MakeSession = Callable[..., ChatSession]


async def _no_wait(delay: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
def make_session(server: LoopbackServer) -> MakeSession:
    """A session on a fresh client; build it inside the coroutine that uses it."""

    def make(
        system_prompt: str = "", conversation: Conversation | None = None,
        read_timeout_s: float = 1.0,
    ) -> ChatSession:
        endpoint = Endpoint(server.base_url, TEST_KEY, connect_timeout_s=2.0,
                            read_timeout_s=read_timeout_s)
        client = ChatClient(endpoint, sleep=_no_wait)
        return ChatSession(client, "test-model", system_prompt, conversation)

    return make


async def one_turn(session: ChatSession, prompt: str = PROMPT) -> Turn:
    try:
        turn = session.start(prompt)
        await session.run(turn)
        return turn
    finally:
        await session.client.aclose()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# -- a turn ------------------------------------------------------------------------------------


def test_turn_appends_user_and_assistant_messages(
    server: LoopbackServer, make_session: MakeSession
) -> None:
    server.push(Scenario(reasoning=["thinking"], deltas=RECEIVED,
                         usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}))
    session = make_session()
    turn = run(one_turn(session))
    assert turn.reply.state is ReplyState.COMPLETE
    assert turn.reply.content == "".join(RECEIVED)
    assert turn.reply.reasoning == "thinking"
    assert turn.reply.finish_reason == "stop"
    assert turn.reply.usage == Usage(5, 3, 8)
    assert turn.reply.error is None and turn.error_kind is None
    user, assistant = session.conversation.messages
    assert (user.role, user.content) == (Role.USER, PROMPT)
    assert assistant == Message.of(
        Role.ASSISTANT, "".join(RECEIVED), reasoning="thinking", state=ReplyState.COMPLETE,
        model="test-model", usage=Usage(5, 3, 8), error=None, finish_reason="stop",
    )
    assert session.conversation.title == PROMPT


def test_second_turn_sends_the_history(server: LoopbackServer, make_session: MakeSession) -> None:
    server.push(Scenario(deltas=["first answer"]), Scenario(deltas=["second answer"]))

    async def go() -> ChatSession:
        session = make_session(system_prompt="Be brief.")
        try:
            await session.run(session.start("one"))
            await session.run(session.start("two"))
        finally:
            await session.client.aclose()
        return session

    session = run(go())
    assert server.requests[1].body is not None
    assert server.requests[1].body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "two"},
    ]
    assert [m.content for m in session.conversation.messages] == [
        "one", "first answer", "two", "second answer"]
    assert session.conversation.title == "one"  # set by the first prompt only


def test_reply_text_is_the_exact_concatenation(
    server: LoopbackServer, make_session: MakeSession
) -> None:
    deltas = ["# Title\n", "", "Grüße 🌍 ", "  spaced  ", "\r\n", "```py\n", "x = 1\n", "```",
              "\n\n| a | b |", "\u200b", "end"]
    server.push(Scenario(deltas=deltas))
    turn = run(one_turn(make_session()))
    assert turn.reply.content == "".join(deltas)
    assert turn.reply.content == "".join(deltas)


def test_retry_notice_is_shown_while_waiting_and_cleared_after(
    server: LoopbackServer,
) -> None:
    server.push(Scenario(status=429, headers={"Retry-After": "3"}), Scenario(deltas=["ok"]))
    notices: list[str | None] = []
    reply_box: list[Turn] = []

    async def sleep(delay: float) -> None:
        notices.append(reply_box[0].notice)

    async def go() -> Turn:
        endpoint = Endpoint(server.base_url, TEST_KEY, 2.0, 1.0)
        session = ChatSession(ChatClient(endpoint, sleep=sleep), "test-model")
        reply_box.append(session.start(PROMPT))
        try:
            await session.run(reply_box[0])
            return reply_box[0]
        finally:
            await session.client.aclose()

    turn = run(go())
    assert notices == ["Rate limited by the server — retrying in 3 s…"]
    assert turn.notice is None
    assert turn.reply.state is ReplyState.COMPLETE
    assert turn.reply.content == "ok"


# -- outcomes ----------------------------------------------------------------------------------


def test_failed_reply_withdraws_the_prompt_and_resets_the_title(
    server: LoopbackServer, make_session: MakeSession
) -> None:
    server.push(Scenario(status=500))
    session = make_session()
    turn = run(one_turn(session))
    assert turn.reply.state is ReplyState.FAILED
    assert turn.error_kind is ErrorKind.SERVER
    error = turn.reply.error
    assert error is not None and error.startswith("The server had an internal error (HTTP 500)")
    assert not turn.reply.has_text
    assert session.conversation.messages == []
    assert session.conversation.title == ""


def test_failed_reply_keeps_earlier_history_and_title(
    server: LoopbackServer, make_session: MakeSession
) -> None:
    history = [Message.of(Role.USER, "earlier"), Message.of(Role.ASSISTANT, "answer")]
    conversation = Conversation(list(history), title="Earlier chat")
    server.push(Scenario(status=401))
    session = make_session(conversation=conversation)
    turn = run(one_turn(session))
    assert turn.reply.state is ReplyState.FAILED
    assert turn.error_kind is ErrorKind.AUTH
    assert session.conversation.messages == history
    assert session.conversation.title == "Earlier chat"


def test_stream_with_no_text_and_no_finish_is_failed(
    server: LoopbackServer, make_session: MakeSession
) -> None:
    server.push(Scenario(deltas=[], finish_reason=None))
    session = make_session()
    turn = run(one_turn(session))
    assert turn.reply.state is ReplyState.FAILED
    assert turn.error_kind is ErrorKind.INTERRUPTED
    assert session.conversation.messages == []


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [
        (Scenario(deltas=[*RECEIVED, "x" * 400], disconnect_after_bytes=700),
         ErrorKind.INTERRUPTED),
        (Scenario(deltas=[*RECEIVED, "never"], malformed_after_events=3), ErrorKind.MALFORMED),
        (Scenario(deltas=[*RECEIVED, "never"], stream_error_after_events=3),
         ErrorKind.STREAM_ERROR),
        (Scenario(deltas=RECEIVED, finish_reason=None, send_done=False), ErrorKind.INTERRUPTED),
    ],
    ids=["disconnect", "malformed", "in-stream-error", "no-finish"],
)
def test_interrupted_reply_keeps_partial_text(
    server: LoopbackServer, make_session: MakeSession, scenario: Scenario, kind: ErrorKind
) -> None:
    server.push(scenario)
    session = make_session()
    turn = run(one_turn(session))
    assert turn.reply.state is ReplyState.INTERRUPTED
    assert turn.error_kind is kind
    assert turn.reply.content == "".join(RECEIVED)
    user, assistant = session.conversation.messages
    assert user.content == PROMPT
    assert assistant.content == "".join(RECEIVED)
    assert assistant.state is ReplyState.INTERRUPTED
    assert assistant.error == turn.reply.error
    assert assistant.error is not None and assistant.error.endswith(
        "" if kind is ErrorKind.STREAM_ERROR else "The text received so far is kept.")
    assert session.conversation.title == PROMPT


def test_cancel_stops_keeps_partial_text_and_closes_the_response(
    server: LoopbackServer, make_session: MakeSession
) -> None:
    server.push(Scenario(deltas=[f"tok{i} " for i in range(200)], pace=0.05))
    session = make_session(read_timeout_s=5.0)
    turn = session.start(PROMPT)

    async def go() -> bool:
        task = asyncio.create_task(session.run(turn))
        try:
            deadline = time.monotonic() + 5
            while not turn.reply.has_text and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            assert turn.reply.has_text, "no text arrived"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await asyncio.to_thread(server.wait_for_disconnect, 5.0)
        finally:
            await session.client.aclose()

    closed = run(go())
    assert closed, "the HTTP response stayed open after the reply was stopped"
    assert turn.reply.state is ReplyState.STOPPED
    assert turn.reply.content.startswith("tok0 ")
    assert len(turn.reply.content) < len("".join(f"tok{i} " for i in range(200)))
    user, assistant = session.conversation.messages
    assert user.content == PROMPT
    assert assistant.state is ReplyState.STOPPED
    assert assistant.content == turn.reply.content


def test_cancel_before_any_text_keeps_the_prompt(
    server: LoopbackServer, make_session: MakeSession
) -> None:
    server.push(Scenario(stall_before_headers=True))
    session = make_session(read_timeout_s=5.0)
    turn = session.start(PROMPT)

    async def go() -> None:
        task = asyncio.create_task(session.run(turn))
        try:
            deadline = time.monotonic() + 5
            while not server.requests and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await session.client.aclose()

    run(go())
    assert turn.reply.state is ReplyState.STOPPED
    user, assistant = session.conversation.messages
    assert user.content == PROMPT
    assert (assistant.state, assistant.content) == (ReplyState.STOPPED, "")
    # the empty stopped reply is not sent back to the model
    assert session.conversation.request_messages() == [{"role": "user", "content": PROMPT}]


# -- the loop keeps running ----------------------------------------------------------------------


class Ticker:
    """Counts how often a concurrent task gets the loop while a reply is streaming."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.ticks = 0
        self.max_gap_s = 0.0
        self.done = False

    async def run(self) -> None:
        last = time.perf_counter()
        while not self.done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            if self.turn.reply.has_text and self.turn.reply.state is ReplyState.STREAMING:
                self.ticks += 1
                self.max_gap_s = max(self.max_gap_s, now - last)
            last = now


def test_consumer_yields_to_the_loop_on_a_fast_stream(
    server: LoopbackServer, make_session: MakeSession
) -> None:
    server.push(Scenario(deltas=["x"] * 20_000))
    session = make_session(read_timeout_s=10.0)
    turn = session.start(PROMPT)
    ticker = Ticker(turn)

    async def go() -> None:
        task = asyncio.create_task(ticker.run())
        try:
            await one_turn_with(session, turn)
        finally:
            ticker.done = True
            await task

    run(go())
    assert turn.reply.state is ReplyState.COMPLETE
    assert turn.reply.content == "x" * 20_000
    # A count, not a timing threshold. The SDK also yields whenever the socket runs dry, so this
    # alone would not catch a consumer that never yields; the in-memory test below does.
    assert ticker.ticks >= 20, f"ran {ticker.ticks} times; max gap {ticker.max_gap_s:.3f} s"


async def one_turn_with(session: ChatSession, turn: Turn) -> Turn:
    try:
        return await session.run(turn)
    finally:
        await session.client.aclose()


class InMemoryClient:
    """Stands in for ChatClient (not the SDK): a stream that never waits on I/O, so any turn
    the loop gets during it comes from the session itself."""

    def __init__(self, count: int) -> None:
        self.count = count

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        for _ in range(self.count):
            yield TextDelta("x")
        yield Finished("stop")


def test_consumer_yields_even_when_the_stream_never_waits() -> None:
    client: Any = InMemoryClient(200_000)
    session = ChatSession(client, "test-model")
    turn = session.start(PROMPT)
    ticker = Ticker(turn)

    async def go() -> None:
        task = asyncio.create_task(ticker.run())
        await asyncio.sleep(0)  # the ticker is running before the reply starts
        try:
            await session.run(turn)
        finally:
            ticker.done = True
            await task

    run(go())
    assert turn.reply.state is ReplyState.COMPLETE
    assert len(turn.reply.content) == 200_000
    assert ticker.ticks >= 1, "the session never gave the loop back while consuming"


# -- building the request ----------------------------------------------------------------------


def test_request_messages_with_system_prompt_skip_empty_assistant_messages() -> None:
    conversation = Conversation([
        Message.of(Role.USER, "first"),
        Message.of(Role.ASSISTANT, "", state=ReplyState.STOPPED),
        Message.of(Role.USER, "second"),
        Message.of(Role.ASSISTANT, "an answer", reasoning="not sent"),
        Message.of(Role.USER, ""),
    ])
    assert conversation.request_messages("You are terse.") == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": ""},
    ]
    assert conversation.request_messages()[0] == {"role": "user", "content": "first"}


def test_request_carries_the_system_prompt(
    server: LoopbackServer, make_session: MakeSession
) -> None:
    run(one_turn(make_session(system_prompt="Answer in French.")))
    assert server.requests[0].body is not None
    assert server.requests[0].body["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": PROMPT},
    ]
    assert server.requests[0].body["model"] == "test-model"


@pytest.mark.parametrize(
    ("prompt", "title"),
    [
        ("Hello", "Hello"),
        ("  several\n\nlines\tand   spaces ", "several lines and spaces"),
        ("", ""),
        ("word " * 30, "word word word word word word word word word word word…"),
        ("x" * 100, "x" * 59 + "…"),
    ],
    ids=["short", "whitespace", "empty", "long-words", "one-long-word"],
)
def test_title_from_prompt(prompt: str, title: str) -> None:
    assert title_from_prompt(prompt) == title
    assert len(title_from_prompt(prompt)) <= 60


def test_title_from_prompt_limit_is_exact() -> None:
    exact = "a" * 60
    assert title_from_prompt(exact) == exact
    assert title_from_prompt("ab cd ef", limit=5) == "ab…"


# -- Turn -------------------------------------------------------------------------------------


def test_take_pending_returns_what_arrived_since_the_last_call() -> None:
    turn = Turn(Message.of(Role.USER, "prompt"), "m")
    assert turn.take_pending() == ("", "")
    turn.add_reasoning("think ")
    turn.add_reasoning("hard")
    turn.add_text("Hel")
    turn.add_text("lo")
    assert turn.take_pending() == ("Hello", "think hard")
    assert turn.take_pending() == ("", "")
    turn.add_text(" world")
    assert turn.reply.content == "Hello world"  # reading the text does not consume pending text
    assert turn.take_pending() == (" world", "")
    assert turn.reply.content == "Hello world"  # taking pending text does not change the reply
    assert turn.reply.reasoning == "think hard"


def test_reply_text_stays_exact_across_reads() -> None:
    turn = Turn(Message.of(Role.USER, "prompt"), "m")
    assert turn.reply.content == "" and not turn.reply.has_text
    pieces = ["a", "", "b", "\n", "🌍", "c"]
    expected = ""
    for piece in pieces:
        turn.add_text(piece)
        expected += piece
        assert turn.reply.content == expected
    turn.add_text("")
    assert turn.reply.content == expected
    assert turn.reply.has_text


def test_reply_with_only_empty_deltas_has_no_text() -> None:
    turn = Turn(Message.of(Role.USER, "prompt"), "m")
    turn.add_text("")
    turn.add_reasoning("thought")
    assert not turn.reply.has_text
    assert turn.reply.content == ""


def test_the_reply_streams_into_parts_of_one_message() -> None:
    turn = Turn(Message.of(Role.USER, "prompt", id=7), "m")
    turn.add_reasoning("think")
    turn.add_text("Hel")
    turn.add_text("lo")
    reply = turn.reply
    assert reply == Message.of(Role.ASSISTANT, "Hello", reasoning="think", model="m",
                               state=ReplyState.STREAMING, parent_id=7)
    assert [type(p).__name__ for p in reply.parts] == ["Reasoning", "Text"]


# -- per-conversation overrides and params -----------------------------------------------------


def test_params_and_overrides_shape_the_request(server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["ok"]))
    endpoint = Endpoint(server.base_url, TEST_KEY, 2.0, 2.0)
    session = ChatSession(
        ChatClient(endpoint), "default-model", "Default prompt.",
        params=GenerationParams(temperature=0.7, top_p=0.9),
        overrides=ConversationSettings(model="override-model", system_prompt="Be a pirate.",
                                       params=GenerationParams(temperature=0.1, max_tokens=64)))
    assert session.effective_params == GenerationParams(temperature=0.1, top_p=0.9,
                                                        max_tokens=64)
    turn = run(one_turn(session))
    body = server.requests[0].body
    assert body is not None and turn.reply.model == "override-model"
    assert body["model"] == "override-model"
    assert body["messages"][0] == {"role": "system", "content": "Be a pirate."}
    assert (body["temperature"], body["top_p"]) == (0.1, 0.9)
    assert 64 in (body.get("max_tokens"), body.get("max_completion_tokens"))
    assert session.messages[-1].model == "override-model"


def test_an_empty_system_prompt_override_sends_none(server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["ok"]))
    session = ChatSession(ChatClient(Endpoint(server.base_url, TEST_KEY, 2.0, 2.0)), "m",
                          "Default prompt.", overrides=ConversationSettings(system_prompt=""))
    run(one_turn(session))
    body = server.requests[0].body
    assert body is not None and body["messages"] == [{"role": "user", "content": PROMPT}]
    assert "temperature" not in body  # unset params are not sent


def test_overrides_set_before_the_first_message_are_saved_with_it(
        server: LoopbackServer, tmp_path: Path) -> None:
    server.push(Scenario(deltas=["one"]), Scenario(deltas=["two"]))
    overrides = ConversationSettings(model="picked", params=GenerationParams(top_p=0.5))
    with Store(tmp_path / "history.sqlite3") as store:

        async def go() -> ChatSession:
            client = ChatClient(Endpoint(server.base_url, TEST_KEY, 2.0, 2.0))
            session = ChatSession(client, "default", store=store)
            session.set_overrides(overrides)  # no conversation yet: kept until there is one
            try:
                await session.run(session.start("one"))
                assert session.conversation_id is not None
                # reopened, as the window does: the overrides come back from the store
                reopened = ChatSession(client, "default", store=store,
                                       conversation_id=session.conversation_id)
                assert reopened.overrides == overrides
                reopened.set_overrides(ConversationSettings(model="changed"))
                await reopened.run(reopened.start("two"))
                return reopened
            finally:
                await client.aclose()

        session = run(go())
        assert session.conversation_id is not None
        saved = store.conversation_settings(session.conversation_id)
    assert saved == ConversationSettings(model="changed")
    bodies = [r.body for r in server.requests if r.body]
    assert [(b["model"], b.get("top_p")) for b in bodies] == [("picked", 0.5), ("changed", None)]
