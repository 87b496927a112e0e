"""Fitting a long conversation into the model's context window.

When the request would not fit, the oldest exchanges are left out, whole: a user message
with the replies to it goes or stays together, because a reply without its question (or a
question without its answer) misleads the model more than a missing exchange. System messages
are always kept (they say how to behave), and so is the latest exchange (the question being
asked), even if that alone does not fit: the server then says so, which beats sending nothing.

The history itself is never changed: only the request leaves turns out, and the reply records
how many (`Turn.trimmed_turns`) so the window can say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from desktop_chat.core.chat.usage import REPLY_PRIMING, estimate_message_tokens

# Room kept for the reply when no max_tokens is set: a typical answer, at most a quarter of a
# small window.
DEFAULT_RESERVE = 1024

Message = Mapping[str, Any]


def reserve_for(context_window: int, max_tokens: int | None) -> int:
    """Tokens to keep free for the reply: max_tokens when set, else a default share."""
    if max_tokens:
        return max_tokens
    return min(DEFAULT_RESERVE, context_window // 4)


def turns(messages: Sequence[Message]) -> list[list[int]]:
    """Indexes of the non-system messages grouped into turns: each user message starts one;
    what precedes the first user message is a turn of its own."""
    out: list[list[int]] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "system":
            continue
        if role == "user" or not out:
            out.append([])
        out[-1].append(index)
    return out


def trim(messages: Sequence[Message], context_window: int, reserve_tokens: int = 0,
         ) -> tuple[list[Message], int]:
    """(messages to send, number of whole turns left out). `context_window` <= 0 means
    unknown: nothing is left out. Counts are estimates (core/chat/usage.py); walking back from
    the newest turn stops once the budget is spent, so a long history costs no more than
    the window it must fit."""
    if context_window <= 0:
        return list(messages), 0
    budget = context_window - reserve_tokens - REPLY_PRIMING
    grouped = turns(messages)
    if len(grouped) <= 1:
        return list(messages), 0
    used = sum(estimate_message_tokens(m) for m in messages if m.get("role") == "system")
    used += sum(estimate_message_tokens(messages[i]) for i in grouped[-1])
    kept_from = len(grouped) - 1  # the latest turn always goes
    while kept_from > 0:
        cost = sum(estimate_message_tokens(messages[i]) for i in grouped[kept_from - 1])
        if used + cost > budget:
            break
        used += cost
        kept_from -= 1
    if kept_from == 0:
        return list(messages), 0
    dropped = {i for turn in grouped[:kept_from] for i in turn}
    return [m for i, m in enumerate(messages) if i not in dropped], kept_from


def trim_notice(trimmed_turns: int) -> str | None:
    """The line the window shows under a reply whose request left turns out."""
    if trimmed_turns <= 0:
        return None
    what = "exchange was" if trimmed_turns == 1 else "exchanges were"
    return (f"{trimmed_turns} earlier {what} left out of the request to fit the model's "
            "context window. Start a new chat, or raise the context size in the profile, to "
            "keep everything.")
