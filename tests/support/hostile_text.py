"""Replies no reasonable model writes but any server can send: what the window must show
without freezing, with the text all there and copied exactly. Each case is built at a
`scale` of its named size (1 = as named), for tests (small) and benchmarks/hostile_output.py.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.support.openai_server import synthetic_markdown_deltas


def prose(size: int) -> str:
    """Ordinary markdown (paragraphs, lists, tables, code), repeated to `size` characters."""
    base = "".join(synthetic_markdown_deltas(20_000, tokens=False))
    return (base * (size // len(base) + 1))[:size]


def table(size: int) -> str:
    row = "| cell a | 12.5 | **bold** | `code` |\n"
    return "| name | value | note | more |\n|---|---:|---|---|\n" + row * max(1, size // len(row))


def code(size: int) -> str:
    line = "def f(x):\n    return [x * 2 for x in range(10)]  # comment\n"
    return "```python\n" + line * max(1, size // len(line)) + "```\n"


def long_line(size: int) -> str:
    return ("abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[:size]


CASES: dict[str, Callable[[float], str]] = {
    "10MB reply": lambda s: prose(int(10_000_000 * s)),
    "1MB line": lambda s: long_line(int(1_000_000 * s)),
    "5MB table": lambda s: table(int(5_000_000 * s)),
    "lists 10k deep": lambda s: "- " * max(30, int(10_000 * s)) + "deep\n",
    "quotes 10k deep": lambda s: "> " * max(30, int(10_000 * s)) + "deep\n",
    "* x 100k": lambda s: "*" * int(100_000 * s),
    "[ x 50k": lambda s: "[" * int(50_000 * s),
    "2MB code": lambda s: code(int(2_000_000 * s)),
}


def chunks(text: str, size: int) -> list[str]:
    """`text` as deltas of `size` characters."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]
