"""Context trimming: which messages a request keeps when the conversation outgrows the model's
context window, and the session applying it (seen in what the loopback server receives)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from desktop_chat.core.chat.context import DEFAULT_RESERVE, reserve_for, trim, trim_notice, turns
from desktop_chat.core.chat.session import ChatSession
from desktop_chat.core.chat.turn import Turn
from desktop_chat.core.chat.usage import (
    IMAGE_TOKENS,
    REPLY_PRIMING,
    estimate_message_tokens,
    estimate_prompt_tokens,
)
from desktop_chat.core.config.providers import GenerationParams
from desktop_chat.core.llm.client import ChatClient, Endpoint
from desktop_chat.core.model.message import Conversation, Message, Role
from tests.conftest import TEST_KEY
from tests.support.openai_server import LoopbackServer, Scenario

WORDS = " ".join(["word"] * 100)  # 100 tokens of text


def system(text: str = "Be brief.") -> dict[str, Any]:
    return {"role": "system", "content": text}


def user(text: str = WORDS) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str = WORDS) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def history(exchanges: int) -> list[dict[str, Any]]:
    """A system prompt, then numbered user/assistant exchanges, then the new question."""
    out = [system()]
    for n in range(exchanges):
        out += [user(f"q{n} {WORDS}"), assistant(f"a{n} {WORDS}")]
    return [*out, user("the question")]


def size(messages: list[dict[str, Any]]) -> int:
    return estimate_prompt_tokens(messages)


def test_no_window_or_enough_room_keeps_everything() -> None:
    messages = history(5)
    assert trim(messages, 0, 0) == (messages, 0)  # 0: the window is unknown
    assert trim(messages, size(messages), 0) == (messages, 0)


def test_oldest_whole_exchanges_go_first_and_system_and_question_stay() -> None:
    messages = history(5)
    window = size(messages) - 1  # one token too many: the oldest exchange goes
    kept, dropped = trim(messages, window, 0)
    assert dropped == 1
    assert kept == [messages[0], *messages[3:]]
    kept, dropped = trim(messages, size([messages[0], *messages[7:]]), 0)
    assert dropped == 3
    assert kept[0] == system() and kept[1]["content"].startswith("q3 ")
    assert kept[-1] == user("the question")
    assert all(m["role"] != "assistant" or kept[i - 1]["role"] == "user"
               for i, m in enumerate(kept))  # no reply without its question


def test_the_reserve_for_the_reply_is_left_free() -> None:
    messages = history(5)
    assert trim(messages, size(messages), 0)[1] == 0
    kept, dropped = trim(messages, size(messages), reserve_tokens=250)
    assert dropped == 2 and size(kept) + 250 <= size(messages)


def test_the_question_is_kept_even_when_it_alone_does_not_fit() -> None:
    messages = [system(), user(), assistant(), user(WORDS * 50)]
    kept, dropped = trim(messages, 100, 0)
    assert kept == [system(), user(WORDS * 50)] and dropped == 1


def test_system_messages_anywhere_are_kept() -> None:
    messages = [system(), user("old"), assistant("old answer"), system("Now speak French."),
                user("new " + WORDS), assistant(), user("question")]
    budget = size([system(), system("Now speak French."), user("new " + WORDS), assistant(),
                   user("question")])
    kept, dropped = trim(messages, budget, 0)
    assert dropped == 1
    assert [m["content"] for m in kept[:2]] == ["Be brief.", "Now speak French."]


def test_a_stopped_turn_with_two_questions_in_a_row_is_two_turns() -> None:
    messages = [user("a"), user("b"), assistant("c"), user("d")]
    assert turns(messages) == [[0], [1, 2], [3]]
    assert turns([assistant("greeting"), user("x")]) == [[0], [1]]


def test_images_count_a_fixed_estimate() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 10}}
    with_image = {"role": "user", "content": [{"type": "text", "text": "look"}, image]}
    assert estimate_message_tokens(with_image) == estimate_message_tokens(user("look")) + (
        IMAGE_TOKENS)
    messages = [with_image, assistant("a cat"), user("and now?")]
    small = size([user("and now?")]) + IMAGE_TOKENS // 2  # room for text, not the image
    kept, dropped = trim(messages, small, 0)
    assert (kept, dropped) == ([user("and now?")], 1)


def test_reserve_defaults() -> None:
    assert reserve_for(128_000, None) == DEFAULT_RESERVE
    assert reserve_for(2048, None) == 512
    assert reserve_for(8192, 3000) == 3000


def test_notice_says_how_many_and_what_to_do() -> None:
    assert trim_notice(0) is None
    assert trim_notice(1) is not None and trim_notice(1).startswith(  # type: ignore[union-attr]
        "1 earlier exchange was left out of the request to fit the model's context window.")
    assert "3 earlier exchanges were left out" in (trim_notice(3) or "")


def test_trimming_never_grows_with_history_beyond_the_window() -> None:
    big = history(2000)
    kept, dropped = trim(big, 2000, 500)
    assert size(kept) + 500 <= 2000 + REPLY_PRIMING
    assert dropped == 2000 - (len(kept) - 2) // 2 and kept[-1] == user("the question")


# -- in a session ------------------------------------------------------------------------------


@pytest.mark.parametrize("max_tokens", [None, 300])
def test_the_session_sends_the_trimmed_request_and_says_so(server: LoopbackServer,
                                                           max_tokens: int | None) -> None:
    past: list[Message] = []
    for n in range(6):
        past += [Message.of(Role.USER, f"q{n} {WORDS}"),
                 Message.of(Role.ASSISTANT, f"a{n} {WORDS}")]
    conversation = Conversation(list(past), title="Long")
    full = [*conversation.request_messages("Be brief."), user("the question")]
    window = size(full) - 1 + reserve_for(size(full), max_tokens)  # just too small
    server.push(Scenario(deltas=["ok"]))
    session = ChatSession(ChatClient(Endpoint(server.base_url, TEST_KEY, 2.0, 2.0)), "m",
                          "Be brief.", conversation, context_window=window,
                          params=GenerationParams(max_tokens=max_tokens))

    async def go() -> Turn:
        try:
            turn = session.start("the question")
            await session.run(turn)
            return turn
        finally:
            await session.client.aclose()

    turn = asyncio.run(go())
    assert turn.trimmed_turns >= 1
    body = server.requests[0].body
    assert body is not None
    sent = body["messages"]
    assert sent[0] == system() and sent[-1] == user("the question")
    assert len(sent) == len(full) - 2 * turn.trimmed_turns
    assert sent[1]["content"].startswith(f"q{turn.trimmed_turns} ")
    assert len(session.messages) == 14  # the history itself keeps everything


def test_without_a_window_the_session_sends_everything(server: LoopbackServer) -> None:
    conversation = Conversation([Message.of(Role.USER, WORDS * 30),
                                 Message.of(Role.ASSISTANT, "x")])
    server.push(Scenario(deltas=["ok"]))
    session = ChatSession(ChatClient(Endpoint(server.base_url, TEST_KEY, 2.0, 2.0)), "m",
                          conversation=conversation)

    async def go() -> Turn:
        try:
            turn = session.start("next")
            await session.run(turn)
            return turn
        finally:
            await session.client.aclose()

    turn = asyncio.run(go())
    body = server.requests[0].body
    assert turn.trimmed_turns == 0 and body is not None and len(body["messages"]) == 3
