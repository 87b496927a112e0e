"""Token counts and cost: the server's figures when it sends them, an offline estimate when not.

Why a heuristic and not a tokenizer: `tiktoken` downloads its encodings on first use (no good
offline, behind a proxy or in a frozen app), and local models use other tokenizers anyway.
The estimate follows how byte-pair tokenizers (OpenAI's cl100k/o200k, Llama's) cut text:

- a Latin-script word is one token, plus one per further 8 letters (common words are single
  tokens; long identifiers split into a few pieces), plus one per 2 accented letters;
- a run of digits is one token per 3 digits (numbers are split in groups of three);
- a word in another alphabetic script (Cyrillic, Greek, Arabic, Devanagari ...) is one token
  per 2 characters (those scripts get fewer merges);
- each CJK ideograph, kana or Hangul syllable is one token;
- punctuation and symbols are one token per 2 characters (`):`, `->`, `");` merge);
  a character outside ASCII (emoji, arrows) counts 2;
- whitespace is free except a run that contains a line break, which is one token
  (indentation merges with it).

It is deliberately simple and errs high rather than low (a trimmed request that still fits
beats one the server refuses). The tests pin it against a few texts whose cl100k counts are
known; expect it to be off by some tens of percent on unusual text. That is enough for what
it is used for: an order of magnitude in the status line, labelled "estimated", and context
trimming with a safety margin. Images count a fixed `IMAGE_TOKENS`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from desktop_chat.core.config.providers import Profile
from desktop_chat.core.model.message import Usage

# What OpenAI charges for one 1024 x 1024 image at high detail (85 + 4 tiles x 170). Images are
# not decoded here, so every image counts this much.
IMAGE_TOKENS = 765
# Chat formats wrap each message in a few control tokens, and the reply is primed with a few
# (the figures OpenAI documents for its chat models).
MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3

_CJK = (r"\u1100-\u11ff\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3130-\u318f"
        r"\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef")
_PIECES = re.compile(
    rf"(?P<cjk>[{_CJK}])"
    r"|(?P<digits>\d+)"
    r"|(?P<latin>[A-Za-z_\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+)"
    rf"|(?P<word>[^\W\d_{_CJK}]+)"
    r"|(?P<newline>\s*\n\s*)"
    r"|(?P<symbols>[^\w\s]+)"
)


# In ASCII text the pieces above never overlap, and each counts one token per so many
# characters of its run: bounded runs counted in one pass of the regex engine give the same
# figure, five times faster (a 150 kB reply: 5 ms instead of 25, at the end of the reply).
_ASCII_PIECES = re.compile(r"[A-Za-z_]{1,8}|[0-9]{1,3}|\s*\n\s*|[^\w\s]{1,2}")


@functools.lru_cache(maxsize=4096)
def estimate_tokens(text: str) -> int:
    """Tokens in `text` by the heuristic above (0 for an empty text). Cached: each send
    re-counts the same history, and a message's text is the same string object each time,
    so a hit costs a pointer comparison (about 0.2 s per MB otherwise)."""
    if text.isascii():
        return len(_ASCII_PIECES.findall(text))
    return _count_pieces(text)


def _count_pieces(text: str) -> int:
    count = 0
    for match in _PIECES.finditer(text):
        kind, piece = match.lastgroup, match.group()
        if kind == "cjk":
            count += 1
        elif kind == "digits":
            count += math.ceil(len(piece) / 3)
        elif kind == "latin":
            accented = sum(1 for c in piece if ord(c) > 127)
            count += 1 + (len(piece) - 1) // 8 + accented // 2
        elif kind == "word":
            count += math.ceil(len(piece) / 2)
        elif kind == "newline":
            count += 1
        elif kind == "symbols":
            wide = sum(1 for c in piece if ord(c) > 127)
            count += math.ceil((len(piece) - wide) / 2) + 2 * wide
    return count


def estimate_message_tokens(message: Mapping[str, Any]) -> int:
    """One Chat Completions message: its text, a fixed figure per image, and the overhead."""
    content = message.get("content")
    tokens = MESSAGE_OVERHEAD
    if isinstance(content, str):
        return tokens + estimate_tokens(content)
    for part in content or ():
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            tokens += estimate_tokens(str(part.get("text", "")))
        elif part.get("type") in ("image_url", "input_image"):
            tokens += IMAGE_TOKENS
    return tokens


def estimate_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    return REPLY_PRIMING + sum(estimate_message_tokens(m) for m in messages)


def estimate_usage(messages: Iterable[Mapping[str, Any]], reply_text: str,
                   reasoning: str = "") -> Usage:
    """What a request and its reply cost, flagged as an estimate."""
    prompt = estimate_prompt_tokens(messages)
    completion = estimate_tokens(reply_text) + estimate_tokens(reasoning)
    return Usage(prompt, completion, prompt + completion, estimated=True)


def cost(usage: Usage | None, profile: Profile | None) -> float | None:
    """USD for one reply at the profile's prices (per million tokens); None when the
    profile has no prices or the usage has no figures to price."""
    if usage is None or profile is None or not profile.has_prices:
        return None
    if usage.prompt_tokens is None and usage.completion_tokens is None:
        return None
    return ((usage.prompt_tokens or 0) * profile.input_price
            + (usage.completion_tokens or 0) * profile.output_price) / 1_000_000


@dataclass(frozen=True, slots=True)
class ConversationTotals:
    """A conversation's token use so far: what the status line shows."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    replies: int = 0  # replies that have a usage figure
    estimated: bool = False  # at least one figure is an offline estimate
    cost: float | None = None  # USD, when the profile has prices

    def describe(self) -> str:
        """E.g. "1,234 tokens · $0.0012", "≈ 56 tokens (estimated)"; "" with nothing to show."""
        if not self.replies:
            return ""
        approx = "≈ " if self.estimated else ""
        text = f"{approx}{self.total_tokens:,} tokens"
        if self.cost is not None:
            text += f" · {approx}{format_cost(self.cost)}"
        return text + (" (estimated)" if self.estimated else "")


def totals(usages: Iterable[Usage | None], profile: Profile | None = None,
           ) -> ConversationTotals:
    """Sum per-reply usages; the cost uses the given (current) profile's prices."""
    out = ConversationTotals(cost=0.0 if profile is not None and profile.has_prices else None)
    for usage in usages:
        out = add(out, usage, profile)
    return out


def add(current: ConversationTotals, usage: Usage | None, profile: Profile | None = None,
        ) -> ConversationTotals:
    """`current` plus one reply: for updating the status line after each turn."""
    if usage is None or (usage.prompt_tokens is None and usage.completion_tokens is None
                         and usage.total_tokens is None):
        return current
    prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
    total = usage.total_tokens if usage.total_tokens is not None else prompt + completion
    reply_cost = cost(usage, profile)
    return ConversationTotals(
        prompt_tokens=current.prompt_tokens + prompt,
        completion_tokens=current.completion_tokens + completion,
        total_tokens=current.total_tokens + total,
        replies=current.replies + 1,
        estimated=current.estimated or usage.estimated,
        cost=current.cost if reply_cost is None else (current.cost or 0.0) + reply_cost,
    )


def describe_usage(usage: Usage | None, profile: Profile | None = None) -> str:
    """One reply, e.g. "Last reply: 42 tokens · $0.0001" or "Last reply: ≈ 40 tokens
    (estimated)"; "" when there is nothing to say."""
    if usage is None or usage.completion_tokens is None:
        return ""
    approx = "≈ " if usage.estimated else ""
    text = f"Last reply: {approx}{usage.completion_tokens:,} tokens"
    price = cost(usage, profile)
    if price is not None:
        text += f" · {approx}{format_cost(price)}"
    return text + (" (estimated)" if usage.estimated else "")


def format_cost(usd: float) -> str:
    """Small amounts keep enough digits to be non-zero: $0.0004, $0.012, $1.25."""
    if usd == 0:
        return "$0.00"
    if usd < 0.0001:
        return "< $0.0001"
    if usd < 0.01:
        return f"${usd:.4f}"
    if usd < 1:
        return f"${usd:.3f}"
    return f"${usd:,.2f}"


def describe_context(usage: Usage | None, window: int) -> str:
    """How much of the model's context the conversation fills now: the last request and
    its reply (what the next request carries again), against the window when known. E.g.
    "Context: 2,310 of 8,192 tokens (28 %)"; "" before any reply."""
    if usage is None:
        return ""
    prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
    used = usage.total_tokens if usage.total_tokens is not None else prompt + completion
    if not used:
        return ""
    approx = "≈ " if usage.estimated else ""
    if window > 0:
        share = min(999, round(100 * used / window))
        return f"Context: {approx}{used:,} of {window:,} tokens ({share} %)"
    return f"Context: {approx}{used:,} tokens"


def describe_spend(spent: ConversationTotals) -> str:
    """What the conversation's requests cost together (every request and branch), e.g.
    "Spent: 18,448 tokens · $0.0120"; "" with nothing to show."""
    whole = spent.describe()
    return f"Spent: {whole}" if whole else ""
