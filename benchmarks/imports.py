"""Importing a big ChatGPT export in the real window (offscreen, qasync loop): does the GUI stay
responsive?

Generates a ChatGPT `conversations.json` of about --mb megabytes in a temporary directory (never
kept), opens the window on an empty data dir, imports the file through the File menu's path
(`FileMenu.import_from`) and measures, with a 5 ms precise QTimer, the longest event-loop gap
from the start of the import until the status line says how it ended, the conversation list was
refreshed and 150 ms more have passed (late layout and paint work counts). Also prints the wall
time of the import and the outcome line. With --hostile, also imports a few small hostile files
(a 10 MB title, a 100 MB string, JSON nested 100,000 deep) and prints each one's gap and
outcome. Target: max gap <= 100 ms.

    python benchmarks/imports.py [--mb 200] [--hostile]
    python benchmarks/imports.py --mb 1          # a smoke run (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also run as a plain script
    sys.path.insert(0, str(ROOT))

from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks.stream_throughput import GapMeter, machine_facts  # noqa: E402
from desktop_chat.app import (  # noqa: E402
    configure_application,
    create_event_loop,
    create_main_window,
    settle_startup_objects,
)
from desktop_chat.ui.main_window import MainWindow  # noqa: E402

TARGET_GAP_MS = 100.0
PROSE = ("the model streams tokens while the window keeps rendering markdown blocks and users "
         "scroll back through years of history to find an answer they half remember")
WORDS = PROSE.split(" ")
DONE = ("Imported ", "Nothing was imported")


def _node(key: str, parent: str | None, children: list[str], message: dict[str, Any] | None,
          ) -> dict[str, Any]:
    return {"id": key, "message": message, "parent": parent, "children": children}


def _message(key: str, role: str, text: str, at: float) -> dict[str, Any]:
    return {"id": key, "author": {"role": role, "name": None, "metadata": {}},
            "create_time": at, "update_time": None,
            "content": {"content_type": "text", "parts": [text]},
            "status": "finished_successfully", "end_turn": role == "assistant", "weight": 1.0,
            "metadata": ({"model_slug": "gpt-4o", "finish_details": {"type": "stop"}}
                         if role == "assistant" else {}),
            "recipient": "all"}


def chatgpt_conversation(rng: random.Random, number: int, messages: int = 24,
                         prefix: str = "bench") -> dict[str, Any]:
    """A conversation as ChatGPT exports it: an empty root, a hidden system message, then
    user and assistant turns (~300 and ~1,500 characters) in one branch."""
    at = 1_700_000_000.0 + number * 3600
    keys = ["root", "sys", *(f"m{number}-{i}" for i in range(messages))]
    mapping = {}
    for i, key in enumerate(keys):
        parent = keys[i - 1] if i else None
        children = [keys[i + 1]] if i + 1 < len(keys) else []
        if key == "root":
            message = None
        elif key == "sys":
            message = _message(key, "system", "", at)
            message["metadata"] = {"is_visually_hidden_from_conversation": True}
        else:
            role = "user" if i % 2 == 0 else "assistant"
            words = 50 if role == "user" else 250
            text = " ".join(rng.choice(WORDS) for _ in range(words))
            message = _message(key, role, text, at + i)
        mapping[key] = _node(key, parent, children, message)
    return {"title": f"Conversation {number}", "create_time": at, "update_time": at + messages,
            "conversation_id": f"{prefix}-{number:08d}", "id": f"{prefix}-{number:08d}",
            "default_model_slug": "gpt-4o", "current_node": keys[-1], "mapping": mapping}


def write_export(path: Path, megabytes: float) -> tuple[int, int]:
    """Write conversations until the file has about `megabytes` MB; (conversations, bytes)."""
    rng, target, written, count = random.Random(20), megabytes * 1e6, 0, 0
    with open(path, "w", encoding="utf-8") as file:
        file.write("[")
        while written < target or count == 0:
            chunk = ("," if count else "") + json.dumps(chatgpt_conversation(rng, count),
                                                        ensure_ascii=False)
            file.write(chunk)
            written += len(chunk)
            count += 1
        file.write("]")
    return count, path.stat().st_size


def write_hostile(directory: Path) -> dict[str, Path]:
    """Small files that used to freeze the window or kill the import."""
    rng = random.Random(5)
    files = {}
    big_title = chatgpt_conversation(rng, 1, messages=2, prefix="hostile")
    big_title["title"] = "A very long title " * 600_000  # ~10 MB
    files["10 MB title"] = _dump(directory / "title.json", [big_title])
    big_string = chatgpt_conversation(rng, 2, messages=2, prefix="hostile")
    big_string["mapping"]["m2-1"]["message"]["content"]["parts"] = ["x" * 100_000_000]
    files["100 MB string"] = _dump(directory / "string.json", [big_string])
    deep = directory / "deep.json"
    with open(deep, "w") as file:
        _write_deep(file, 100_000)
    files["nested 100,000 deep"] = deep
    return files


def _dump(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _write_deep(file: IO[str], depth: int) -> None:
    file.write('[{"title": "deep", "mapping": {}, "extra": ' + "[" * depth + "]" * depth + "}]")


async def import_one(window: MainWindow, path: Path, meter: GapMeter) -> dict[str, Any]:
    """Import `path`; the loop gaps from the start until the outcome is shown, the list is
    refreshed and 150 ms more have passed."""
    status = window.statusBar()
    banner = window.errorBanner
    window.statusBar().clearMessage()
    meter.start()
    t0 = time.perf_counter()
    window.fileMenu.import_from(path)
    while True:
        shown = status.currentMessage()
        if shown.startswith(DONE[0]) or (banner.isVisible() and DONE[1] in banner.text()):
            break
        if time.perf_counter() - t0 > 1800:
            raise TimeoutError(f"the import of {path.name} did not end within 30 minutes")
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - t0
    await asyncio.sleep(0.15)
    gaps = meter.stop()
    outcome = shown if shown.startswith(DONE[0]) else banner.text()
    window._hide_error()  # type: ignore[attr-defined]  # the next import's outcome is new
    return {"s": seconds, "max_gap_ms": gaps["max_gap_ms"], "p99_gap_ms": gaps["p99_gap_ms"],
            "outcome": outcome[:160] + ("…" if len(outcome) > 160 else "")}


async def measure(window: MainWindow, export: Path, hostile: dict[str, Path]) -> bool:
    meter = GapMeter()
    await asyncio.sleep(0.5)  # start-up work out of the way
    result = await import_one(window, export, meter)
    listed = window.conversationList.count()
    ok = result["max_gap_ms"] <= TARGET_GAP_MS and result["outcome"].startswith(DONE[0])
    print(f"import {export.stat().st_size / 1e6:.1f} MB ChatGPT export: {result['s']:.1f} s; "
          f"max loop gap {result['max_gap_ms']:.1f} ms (p99 {result['p99_gap_ms']:.1f} ms)   "
          f"target <= {TARGET_GAP_MS:g} ms; {listed} listed\n  -> {result['outcome']}",
          flush=True)
    for name, path in hostile.items():
        result = await import_one(window, path, meter)
        ok = ok and result["max_gap_ms"] <= TARGET_GAP_MS
        print(f"import {name:<22} {result['s']:6.1f} s; max loop gap "
              f"{result['max_gap_ms']:7.1f} ms\n  -> {result['outcome']}", flush=True)
    print(f"verdict: max gap {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0, help="size of the export (MB)")
    parser.add_argument("--hostile", action="store_true",
                        help="also import a 10 MB title, a 100 MB string, 100,000-deep JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["OPENAI_API_KEY"] = "sk-benchmark-dummy"
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine_facts().items()))
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as tmp:
        t0 = time.perf_counter()
        export = Path(tmp) / "conversations.json"
        count, size = write_export(export, args.mb)
        print(f"export: {count} conversations, {size / 1e6:.1f} MB, written in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        hostile = write_hostile(Path(tmp)) if args.hostile else {}
        app = QApplication([sys.argv[0]])
        configure_application(app)
        loop = create_event_loop(app)
        with loop:
            window = create_main_window(["--data-dir", str(Path(tmp) / "data"),
                                         "--base-url", "http://127.0.0.1:9/v1",
                                         "--model", "test-model"])
            window.resize(1000, 720)
            window.show()
            settle_startup_objects()
            try:
                loop.run_until_complete(measure(window, export, hostile))
            finally:
                loop.run_until_complete(window.controller.aclose())
                window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
