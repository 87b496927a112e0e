"""Token usage: the offline estimate, cost from profile prices, conversation totals, and the
session filling (and the store keeping) an estimate when the server reports no usage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_chat.core.chat import usage
from desktop_chat.core.chat.session import ChatSession
from desktop_chat.core.chat.turn import Turn
from desktop_chat.core.chat.usage import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    ConversationTotals,
    add,
    cost,
    describe_context,
    describe_spend,
    describe_usage,
    estimate_message_tokens,
    estimate_tokens,
    estimate_usage,
    format_cost,
    totals,
)
from desktop_chat.core.config.providers import Profile
from desktop_chat.core.history.store import Store
from desktop_chat.core.history.transfer import export_json, import_json
from desktop_chat.core.llm.client import ChatClient, Endpoint
from desktop_chat.core.model.message import Attachment, ReplyState, Role, Usage
from tests.conftest import TEST_KEY
from tests.support import history
from tests.support.openai_server import LoopbackServer, Scenario

PRICED = Profile("p", "Priced", input_price=2.5, output_price=10.0)  # USD per million
FREE = Profile("f", "Local")


# -- the estimate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cl100k"),
    [("Hello, world!", 4), ("The quick brown fox jumps over the lazy dog.", 10)],
    ids=["greeting", "pangram"],
)
def test_estimate_matches_a_real_tokenizer_on_plain_english(text: str, cl100k: int) -> None:
    assert estimate_tokens(text) == cl100k


@pytest.mark.parametrize(
    "code", ["def f(x):\n    return x ** 2\n", 'fn main() { println!("hi"); }',
             "for (let i = 0; i < n; i++) {\n  total += a[i];\n}\n"],
    ids=["python", "rust", "js"],
)
def test_code_counts_its_symbols(code: str) -> None:
    # byte-pair tokenizers give code about 2-4 characters per token (dense symbols: fewer);
    # splitting on whitespace would count far fewer
    assert len(code) / 5 <= estimate_tokens(code) <= len(code) / 1.5
    assert estimate_tokens(code) > len(code.split())


def test_each_cjk_character_counts_as_a_token() -> None:
    assert estimate_tokens("你好世界") == 4
    assert estimate_tokens("こんにちは") == 5
    assert estimate_tokens("안녕하세요") == 5
    # whitespace-split words would say 1 for a whole sentence written without spaces
    assert estimate_tokens("我今天很高兴见到你。") >= 9


def test_other_scripts_numbers_and_whitespace() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("   ") == 0  # spaces merge with the next word
    assert estimate_tokens("a\n\n    b") == 3  # a line break (with indentation) is one
    assert estimate_tokens("1234567") == 3  # digits go in threes
    assert estimate_tokens("Привет") == 3  # two letters a token outside Latin script
    assert estimate_tokens("🦀") == 2
    assert estimate_tokens("supercalifragilistic") == 3  # long words split


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_the_ascii_fast_count_equals_the_piece_by_piece_count(text: str) -> None:
    assert estimate_tokens.__wrapped__(text) == usage._count_pieces(text)


def test_markdown_with_code_counts_the_same_both_ways() -> None:
    text = "# Title\n\n- item 12345, **bold** `x_y`\n\n```py\nfor i in range(10):\n    f(i)\n```\n"
    assert text.isascii()
    assert estimate_tokens.__wrapped__(text) == usage._count_pieces(text) > 20


def test_longer_text_never_estimates_lower() -> None:
    text = "Some words, some `code()`, 数字 123 and more.\n"
    counts = [estimate_tokens(text * n) for n in range(1, 6)]
    assert counts == sorted(counts) and counts[-1] >= 5 * counts[0] - 5


def test_messages_count_overhead_and_a_fixed_figure_per_image() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    text = {"role": "user", "content": "Hello, world!"}
    parts = {"role": "user", "content": [{"type": "text", "text": "Hello, world!"}, image,
                                         image]}
    assert estimate_message_tokens(text) == MESSAGE_OVERHEAD + 4
    assert estimate_message_tokens(parts) == MESSAGE_OVERHEAD + 4 + 2 * IMAGE_TOKENS


def test_estimate_usage_is_flagged() -> None:
    usage = estimate_usage([{"role": "user", "content": "Hello, world!"}], "Hi there!",
                           reasoning="Greet back.")
    assert usage == Usage(REPLY_PRIMING + MESSAGE_OVERHEAD + 4, 3 + 3, usage.total_tokens,
                          estimated=True)
    assert usage.total_tokens == (usage.prompt_tokens or 0) + (usage.completion_tokens or 0)


# -- cost and totals ---------------------------------------------------------------------------


def test_cost_uses_the_profile_prices_per_million_tokens() -> None:
    assert cost(Usage(1_000_000, 100_000, 1_100_000), PRICED) == pytest.approx(3.5)
    assert cost(Usage(1000, None, None), PRICED) == pytest.approx(0.0025)
    assert cost(Usage(1000, 100, 1100), FREE) is None  # no prices: no cost shown
    assert cost(Usage(None, None, 50), PRICED) is None
    assert cost(None, PRICED) is None and cost(Usage(1, 1, 2), None) is None


def test_totals_add_up_replies_and_remember_estimates() -> None:
    usages = [Usage(100, 20, 120), None, Usage(None, None, None), Usage(150, 30, 180, True)]
    summed = totals(usages, PRICED)
    assert summed == ConversationTotals(250, 50, 300, replies=2, estimated=True,
                                        cost=pytest.approx((250 * 2.5 + 50 * 10) / 1e6))
    assert totals(usages[:1], FREE).cost is None
    assert totals([]).describe() == ""
    assert add(totals(usages[:1]), Usage(1, 2, None)).total_tokens == 123  # total derived
    assert not totals(usages[:1]).estimated


def test_descriptions_mark_estimates() -> None:
    assert totals([Usage(1000, 234, 1234)], PRICED).describe() == "1,234 tokens · $0.0048"
    assert totals([Usage(10, 46, 56, True)]).describe() == "≈ 56 tokens (estimated)"
    assert describe_usage(Usage(10, 42, 52), FREE) == "Last reply: 42 tokens"
    assert describe_usage(Usage(10, 40, 50, True), PRICED) == (
        "Last reply: ≈ 40 tokens · ≈ $0.0004 (estimated)")
    assert describe_usage(None) == describe_usage(Usage(5, None, None)) == ""
    assert [format_cost(x) for x in (0, 0.00042, 0.0123, 1234.5)] == [
        "$0.00", "$0.0004", "$0.012", "$1,234.50"]


# -- in a session ------------------------------------------------------------------------------


def make_session(server: LoopbackServer, store: Store | None = None) -> ChatSession:
    return ChatSession(ChatClient(Endpoint(server.base_url, TEST_KEY, 2.0, 2.0)), "m",
                       store=store)


async def turns(session: ChatSession, *prompts: str) -> list[Turn]:
    try:
        started = []
        for prompt in prompts:
            started.append(session.start(prompt))
            await session.run(started[-1])
        return started
    finally:
        await session.client.aclose()


def test_a_reply_without_server_usage_gets_a_flagged_estimate(server: LoopbackServer,
                                                              store: Store) -> None:
    server.push(Scenario(deltas=["Hello", ", world!"], usage=None))
    session = make_session(server, store)
    [turn] = asyncio.run(turns(session, "Say hello"))
    expected = estimate_usage([{"role": "user", "content": "Say hello"}], "Hello, world!")
    assert turn.reply.usage == expected and expected.estimated
    assert session.messages[-1].usage == expected
    assert session.conversation_id is not None
    assert store.active_path(session.conversation_id)[-1].usage == expected  # flag kept
    assert session.usage_totals().estimated


def test_server_usage_is_used_as_is(server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["ok"], usage={"prompt_tokens": 7, "completion_tokens": 1,
                                               "total_tokens": 8}))
    [turn] = asyncio.run(turns(make_session(server), "hi"))
    assert turn.reply.usage == Usage(7, 1, 8) and not turn.reply.usage.estimated


def test_a_reply_that_failed_before_any_text_gets_no_estimate(server: LoopbackServer) -> None:
    server.push(Scenario(status=500))
    [turn] = asyncio.run(turns(make_session(server), "hi"))
    assert turn.reply.state is ReplyState.FAILED and turn.reply.usage is None


def test_conversation_totals_count_every_branch(server: LoopbackServer, store: Store) -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    server.push(Scenario(deltas=["a"], usage=usage), Scenario(deltas=["b"], usage=usage),
                Scenario(deltas=["c"], usage=None))
    session = make_session(server, store)

    async def go() -> None:
        try:
            await session.run(session.start("one"))
            await session.run(session.start_regenerate())  # replaces the shown turn
            await session.run(session.start("two"))
        finally:
            await session.client.aclose()

    asyncio.run(go())
    summed = session.usage_totals(PRICED)
    estimate = session.messages[-1].usage
    assert estimate is not None and estimate.estimated
    assert summed.replies == 3 and summed.estimated
    assert summed.total_tokens == 30 + (estimate.total_tokens or 0)
    assert summed.cost == pytest.approx(cost(Usage(20, 10, 30), PRICED)
                                        + (cost(estimate, PRICED) or 0))
    # without a store, only what the session holds (the active path)
    assert ChatSession(session.client, "m", conversation=session.conversation
                       ).usage_totals().replies == 2


def test_estimated_usage_survives_export_and_import(store: Store, tmp_path: Path) -> None:
    c = store.create_conversation("Estimated")
    q = history.add(store, c, None, Role.USER, "hi")
    history.add(store, c, q, Role.ASSISTANT, "hello", usage=Usage(5, 2, 7, estimated=True))
    data = export_json(store)
    assert data["conversations"][0]["messages"][1]["usage"]["estimated"] is True
    with Store(tmp_path / "other.sqlite3") as other:
        import_json(other, data)
        [usage] = other.conversation_usages(other.list_conversations()[0].id)
    assert usage == Usage(5, 2, 7, estimated=True)


def test_attachments_count_in_the_estimate(server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["a picture"], usage=None))
    session = make_session(server)
    image = Attachment("image/png", b"\x89PNG\r\n\x1a\n" + bytes(100), "x.png")

    async def go() -> Turn:
        try:
            turn = session.start("what?", [image])
            await session.run(turn)
            return turn
        finally:
            await session.client.aclose()

    turn = asyncio.run(go())
    assert turn.reply.usage is not None and turn.reply.usage.prompt_tokens is not None
    assert turn.reply.usage.prompt_tokens >= IMAGE_TOKENS


def test_context_in_use_and_spend_are_told_apart() -> None:
    """Issue #14, defect 8: the context the conversation fills now, against the window, and
    what all its requests spent, each labelled."""
    assert describe_context(Usage(2000, 310, 2310), 8192) == (
        "Context: 2,310 of 8,192 tokens (28 %)")
    assert describe_context(Usage(10, 40, None, True), 0) == "Context: ≈ 50 tokens"
    assert describe_context(None, 8192) == ""
    spent = totals([Usage(1000, 234, 1234), Usage(2000, 100, 2100)], PRICED)
    assert describe_spend(spent).startswith("Spent: 3,334 tokens · $")
    assert describe_spend(totals([])) == ""
