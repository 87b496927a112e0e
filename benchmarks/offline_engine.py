"""The built-in offline engine on this machine: start time, tokens/s, and the window's share.

Starts the real window as `desktop-chat --gguf PATH` does (the demo model by default): the
app's own Connections start the engine and report when it is ready. Then per round: the raw
SDK streams a reply from that engine (`openai.AsyncOpenAI`, max_tokens N), and the window
(offscreen, composer -> send) streams the same prompt until it has as much text, then stops.
Both sample greedily (temperature 0: the window through its settings), so both get the same
text. Tokens are counted by the engine's own tokenizer (/extras/tokenize) on each side's text,
and the rate is decode speed: tokens after the first / time from first to last text. The ratio
GUI ÷ raw says what the window costs on top of the engine (both share this machine's CPUs).

    python benchmarks/offline_engine.py [--gguf PATH] [--rounds R] [--tokens N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import openai
from PySide6.QtWidgets import QApplication

from desktop_chat.app import (
    close_window_services,
    configure_application,
    create_event_loop,
    create_main_window,
    settle_startup_objects,
)
from desktop_chat.core.config.settings import SETTINGS_FILE
from desktop_chat.core.engine.offline import demo_model
from desktop_chat.ui.main_window import MainWindow

# Greedy, the demo model answers this with a long (looping) reply: N tokens every round.
PROMPT = "Count from one to fifty in words."


def count_tokens(base_url: str, model: str, text: str) -> int:
    root = base_url.removesuffix("/v1")
    request = urllib.request.Request(
        root + "/extras/tokenize", json.dumps({"input": text, "model": model}).encode(),
        {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return len(json.loads(response.read())["tokens"])


def rate(tokens: int, first: float | None, last: float | None) -> float:
    if first is None or last is None or last <= first or tokens < 2:
        return 0.0
    return (tokens - 1) / (last - first)


async def raw_round(client: openai.AsyncOpenAI, model: str, tokens: int) -> dict[str, Any]:
    parts: list[str] = []
    first = last = None
    t0 = time.perf_counter()
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], stream=True,
        max_tokens=tokens, temperature=0)
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta is not None and choice.delta.content:
                last = time.perf_counter()
                first = first or last
                parts.append(choice.delta.content)
    return {"text": "".join(parts), "first": first, "last": last,
            "first_token_s": (first or t0) - t0, "chunks": len(parts)}


async def gui_round(window: MainWindow, chars: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    parts: list[str] = []
    times: list[float] = []

    def on_text(text: str) -> None:
        times.append(time.perf_counter())
        parts.append(text)
        if sum(map(len, parts)) >= chars and window.stopButton.isEnabled():
            window.controller.stop()  # as much text as the raw round: Stop, as a user would

    def on_streaming(streaming: bool) -> None:
        if not streaming and not finished.done():
            finished.set_result(None)

    window.controller.text_arrived.connect(on_text)
    window.controller.streaming_changed.connect(on_streaming)
    window.composer.setPlainText(PROMPT)
    t0 = time.perf_counter()
    window.send()
    if not window.stopButton.isEnabled():
        raise RuntimeError("send() did not start a reply")
    await asyncio.wait_for(finished, timeout=600)
    window.controller.text_arrived.disconnect(on_text)
    window.controller.streaming_changed.disconnect(on_streaming)
    return {"text": "".join(parts), "first": times[0] if times else None,
            "last": times[-1] if times else None,
            "first_token_s": (times[0] if times else t0) - t0}


async def start_window(args: argparse.Namespace, data_dir: Path) -> tuple[MainWindow, float]:
    """The window on the offline engine, as `desktop-chat --gguf` starts it; returns once the
    engine answers, with the time that took (window built to /v1/models answering)."""
    gguf = args.gguf or (await asyncio.to_thread(demo_model, data_dir)).path
    (data_dir / SETTINGS_FILE).write_text(json.dumps({"params": {"temperature": 0}}), "utf-8")
    t0 = time.perf_counter()
    window = create_main_window(["--data-dir", str(data_dir), "--gguf", str(gguf)])
    window.resize(1000, 720)
    window.show()
    assert window.connections is not None
    offline = window.connections.offline
    while not (offline.engine is not None and offline.engine.base_url
               and window.controller.blocked_reason is None):
        if window.errorBanner.isVisible():
            raise RuntimeError(window.errorBanner.text())
        await asyncio.sleep(0.01)
    return window, time.perf_counter() - t0


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    window, start_s = await start_window(args, data_dir)
    local = window.connections.offline.engine  # type: ignore[union-attr]
    url = local.base_url
    gguf = local.model_path
    print(f"engine: {gguf.name}, ready in {start_s:.2f} s at {url} "
          f"(n_ctx {local.context_size}, chat format {local.chat_format})", flush=True)
    settle_startup_objects()
    client = openai.AsyncOpenAI(base_url=url, api_key="no-key-set", max_retries=0)
    rounds: list[dict[str, Any]] = []
    print(f"{'round':>5} | {'raw tok':>7} {'tok/s':>7} {'1st tok':>7} | "
          f"{'GUI tok':>7} {'tok/s':>7} {'1st tok':>7} | ratio", flush=True)
    try:
        for i in range(args.rounds):
            raw = await raw_round(client, local.model_id, args.tokens)
            raw_tokens = await asyncio.to_thread(count_tokens, url, local.model_id, raw["text"])
            await asyncio.sleep(0.5)
            window.controller.new_chat()
            gui = await gui_round(window, len(raw["text"]))
            gui_tokens = await asyncio.to_thread(count_tokens, url, local.model_id, gui["text"])
            raw_rate = rate(raw_tokens, raw["first"], raw["last"])
            gui_rate = rate(gui_tokens, gui["first"], gui["last"])
            rounds.append({"raw_tokens": raw_tokens, "raw_rate": raw_rate,
                           "raw_first_s": raw["first_token_s"], "gui_tokens": gui_tokens,
                           "gui_rate": gui_rate, "gui_first_s": gui["first_token_s"],
                           "ratio": gui_rate / raw_rate if raw_rate else 0.0})
            r = rounds[-1]
            print(f"{i + 1:>5} | {raw_tokens:>7} {raw_rate:>7.1f} {r['raw_first_s']:>6.2f}s | "
                  f"{gui_tokens:>7} {gui_rate:>7.1f} {r['gui_first_s']:>6.2f}s | "
                  f"{r['ratio']:.3f}", flush=True)
            await asyncio.sleep(0.5)
    finally:
        await client.close()
        window.close()
        await close_window_services(window)  # stops the engine, as quitting the app does
    summary = {key: statistics.median(r[key] for r in rounds)
               for key in ("raw_rate", "gui_rate", "ratio", "raw_first_s", "gui_first_s")}
    return {"engine_start_s": start_s, "rounds": rounds, "median": summary,
            "model": gguf.name, "cpus": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="model file (default: the demo model)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128, help="max_tokens of the raw reply")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication([sys.argv[0]])
    configure_application(app)
    loop = create_event_loop(app)
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as data_dir, loop:
        result = loop.run_until_complete(run(args, Path(data_dir)))
    m = result["median"]
    print(f"\nmedians over {len(result['rounds'])} rounds ({result['model']}, "
          f"{result['cpus']} CPUs):\n"
          f"  engine start      {result['engine_start_s']:.2f} s (window built -> engine "
          "answering)\n"
          f"  raw SDK           {m['raw_rate']:.1f} tokens/s (first token after "
          f"{m['raw_first_s']:.2f} s)\n"
          f"  GUI window        {m['gui_rate']:.1f} tokens/s (first text after "
          f"{m['gui_first_s']:.2f} s)\n"
          f"  GUI ÷ raw         {m['ratio']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
