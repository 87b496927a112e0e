"""Damaging a history file the ways disks and sync tools do, reproducibly (seeded), and
opening it as the app does. Used by the fault campaign in tests/core/test_recovery.py; run
`python -m tests.support.damage` for the campaign's table."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from desktop_chat.core.history import recovery
from desktop_chat.core.history.store import HISTORY_FILE, Store, StoreError
from desktop_chat.core.model.message import Message, Role

PAGE = 4096
CONVERSATIONS, MESSAGES_EACH = 40, 8


def build(path: Path, seed: int = 0) -> dict[int, str]:
    """A history of several pages per table; returns every message's text by id."""
    rng = random.Random(seed)
    texts: dict[int, str] = {}
    with Store(path) as store:
        for n in range(CONVERSATIONS):
            conversation = store.create_conversation(f"Conversation {n}", "m")
            parent = None
            for k in range(MESSAGES_EACH):
                text = f"message {n}.{k}: " + " ".join(
                    rng.choice(("alpha", "beta", "gamma", "delta", "sqlite", "page"))
                    for _ in range(rng.randint(20, 200)))
                message = Message.of(Role.USER if k % 2 == 0 else Role.ASSISTANT, text,
                                     parent_id=parent)
                parent = store.add_message(conversation, message)
                texts[parent] = text
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return texts


def damage_pages(path: Path, blocks: int, seed: int) -> None:
    """Overwrite `blocks` random pages (never the 100-byte file header) with random bytes."""
    rng = random.Random(seed)
    size = path.stat().st_size
    pages = size // PAGE
    with path.open("r+b") as file:
        for _ in range(blocks):
            page = rng.randrange(1, pages)
            file.seek(page * PAGE)
            file.write(rng.randbytes(PAGE))


def truncate(path: Path) -> None:
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)


def zero_header(path: Path) -> None:
    with path.open("r+b") as file:
        file.write(bytes(100))


def wal_garbage(path: Path, seed: int = 0) -> None:
    path.with_name(path.name + "-wal").write_bytes(random.Random(seed).randbytes(3 * PAGE))


@dataclass(frozen=True, slots=True)
class Outcome:
    case: str
    starts: bool
    recovered: int  # messages shown after opening, each with its original text
    garbled: int  # messages shown whose text differs from what was written
    reported_lost: int  # rows the notice says could not be read
    messages: int  # messages before the damage
    notice: str | None


def open_damaged(path: Path, texts: dict[int, str], case: str) -> Outcome:
    """Open as the app does and read every conversation as the window would."""
    store, notice = recovery.open_history(path)
    if store is None:
        return Outcome(case, False, 0, 0, 0, len(texts), notice)
    shown: dict[int, str] = {}
    try:
        for summary in store.list_conversations(limit=None):
            with contextlib.suppress(StoreError):  # the window says so where it was clicked
                shown.update((m.id, m.content) for m in store.all_messages(summary.id)
                             if m.id is not None)
    finally:
        store.close()
    same = sum(1 for i, text in shown.items() if texts.get(i) == text)
    lost = _reported_lost(notice)
    return Outcome(case, True, same, len(shown) - same, lost, len(texts), notice)


def _reported_lost(notice: str | None) -> int:
    if not notice or "could not be read" not in notice:
        return 0
    words = notice.split(" damaged ")[0].split()
    return int(words[-1]) if words and words[-1].isdigit() else 0


CASES = (
    [(f"{blocks} damaged pages, seed {seed}", "pages", blocks, seed)
     for blocks in (1, 5, 20) for seed in range(10)]
    + [("truncated to half", "truncate", 0, 0), ("zeroed header", "header", 0, 0),
       ("garbage -wal file", "wal", 0, 0)]
)


def run_case(folder: Path, kind: str, blocks: int, seed: int, case: str) -> Outcome:
    path = folder / HISTORY_FILE
    texts = build(path, seed)
    if kind == "pages":
        damage_pages(path, blocks, seed)
    elif kind == "truncate":
        truncate(path)
    elif kind == "header":
        zero_header(path)
    else:
        wal_garbage(path, seed)
    return open_damaged(path, texts, case)


def main() -> int:
    import tempfile

    print(f"{'case':<28} {'starts':>6} {'recovered':>9} {'garbled':>7} {'reported lost':>13} "
          f"{'messages':>8}")
    for case, kind, blocks, seed in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            o = run_case(Path(tmp), kind, blocks, seed, case)
        print(f"{o.case:<28} {'yes' if o.starts else 'NO':>6} {o.recovered:>9} {o.garbled:>7} "
              f"{o.reported_lost:>13} {o.messages:>8}")
    return 0


if __name__ == "__main__":
    sqlite3.enable_callback_tracebacks(True)
    sys.exit(main())
