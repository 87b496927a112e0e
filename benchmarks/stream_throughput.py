"""Streaming throughput: the real window (offscreen) vs the raw SDK loop, same stream, same process.

The loopback OpenAI server runs in its own process (so it does not compete for our GIL) and
serves N markdown deltas (paragraphs, lists, tables, code fences), unpaced. Deltas are
token-sized (about 4 characters, as servers send them); --word-deltas sends a word or a code
line per delta instead (7.5 characters: the view does about twice the work per delta).
Each round streams the reply through `openai.AsyncOpenAI` alone (typed chunk models), through the
app's own client without a window (core/llm: chunks as plain JSON), then through the window
(composer -> send -> wait in the qasync loop until stopButton disables). A 5 ms QTimer runs
meanwhile: its late ticks are the event-loop gaps. Targets: GUI/raw ratio >= 0.90, max gap <= 33 ms.

    python benchmarks/stream_throughput.py [--deltas N] [--rounds R] [--word-deltas]
                                           [--same-conversation]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
import PySide6
from PySide6.QtCore import Qt, QTimer, qVersion
from PySide6.QtWidgets import QApplication

from desktop_chat.app import (
    configure_application,
    create_event_loop,
    create_main_window,
    settle_startup_objects,
    start_warm_up,
)
from desktop_chat.ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]
TICK_MS = 5.0
TARGET_RATIO, TARGET_GAP_MS = 0.90, 33.0
PROMPT = "Write a long markdown answer with paragraphs, lists and code."


def expected_text(n: int, tokens: bool) -> str:
    """What the server CLI sends for `--synthetic-deltas n`, joined."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.openai_server import synthetic_markdown_deltas

    return "".join(synthetic_markdown_deltas(n, tokens=tokens))


class GapMeter:
    """A 5 ms precise QTimer; a tick later than 5 ms after the previous one is a gap."""

    def __init__(self) -> None:
        self._timer = QTimer(interval=int(TICK_MS), timerType=Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._ticks: list[float] = []

    def _tick(self) -> None:
        self._ticks.append(time.perf_counter())

    def start(self) -> None:
        self._ticks = [time.perf_counter()]
        self._timer.start()

    def stop(self) -> dict[str, float]:
        """max and p99 of how late each tick came (ms); stopping counts as a last tick."""
        self._timer.stop()
        self._ticks.append(time.perf_counter())
        gaps = [max(0.0, (b - a) * 1000 - TICK_MS) for a, b in itertools.pairwise(self._ticks)]
        p99 = statistics.quantiles(gaps, n=100, method="inclusive")[98] if gaps[1:] else gaps[0]
        return {"max_gap_ms": max(gaps), "p99_gap_ms": p99, "ticks": len(gaps)}


def start_server(deltas: int, tokens: bool) -> tuple[subprocess.Popen[str], str]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.openai_server import spawn

    return spawn("--synthetic-deltas", str(deltas), "--scenario-json", '{"pace": 0}',
                 *([] if tokens else ["--word-deltas"]))


def pin_server_apart(pid: int) -> str:
    """The provider is another machine in real use: give the loopback server its own CPU so
    that it does not compete with the app (and Qt's raster threads) for the same cores."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return "no (not supported here)"
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(pid, {cpus[-1]})
    os.sched_setaffinity(0, set(cpus[:-1]))
    return f"server on CPU {cpus[-1]}, app on {cpus[:-1]}"


async def raw_round(client: openai.AsyncOpenAI, model: str, meter: GapMeter,
                    expected: str) -> dict[str, Any]:
    parts: list[str] = []
    first: float | None = None
    meter.start()
    t0 = time.perf_counter()
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], stream=True)
    async for chunk in stream:
        if first is None:
            first = time.perf_counter()
        for choice in chunk.choices:
            if choice.delta is not None and choice.delta.content is not None:
                parts.append(choice.delta.content)
    t1, gaps = time.perf_counter(), meter.stop()
    return {"deltas": len(parts), "seconds": t1 - t0, "rate": len(parts) / (t1 - t0),
            "stream_rate": len(parts) / max(t1 - (first or t1), 1e-9),
            "ok": "".join(parts) == expected, **gaps}


async def client_round(url: str, model: str, meter: GapMeter,
                       expected: str) -> dict[str, Any]:
    """The same stream through the app's own client (core/llm, no window): GUI ÷ client is
    what the window itself costs, since the client reads chunks as plain JSON and is faster
    than the raw SDK loop's typed chunk models."""
    from desktop_chat.core.config.providers import Endpoint
    from desktop_chat.core.llm.client import ChatClient, ChatRequest
    from desktop_chat.core.llm.events import TextDelta

    client = ChatClient(Endpoint(url, "x"))
    parts: list[str] = []
    meter.start()
    t0 = time.perf_counter()
    try:
        request = ChatRequest(model, [{"role": "user", "content": PROMPT}])
        async for event in client.stream(request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
    finally:
        t1, gaps = time.perf_counter(), meter.stop()
        await client.aclose()
    return {"deltas": len(parts), "seconds": t1 - t0, "rate": len(parts) / (t1 - t0),
            "ok": "".join(parts) == expected, **gaps}


async def gui_round(window: MainWindow, deltas: int, meter: GapMeter,
                    expected: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()

    def on_streaming(streaming: bool) -> None:
        if not streaming and not finished.done():
            finished.set_result(None)

    # connected after the window's own slot, so the stop button is already disabled here
    window.controller.streaming_changed.connect(on_streaming)
    window.composer.setPlainText(PROMPT)
    frames = FrameCosts(window)
    meter.start()
    t0 = time.perf_counter()
    window.send()
    if not window.stopButton.isEnabled():
        raise RuntimeError("send() did not start a reply")
    await asyncio.wait_for(finished, timeout=600)
    t1, gaps = time.perf_counter(), meter.stop()
    window.controller.streaming_changed.disconnect(on_streaming)
    assert not window.stopButton.isEnabled()
    return {"deltas": deltas, "seconds": t1 - t0, "rate": deltas / (t1 - t0),
            "ok": window.controller.last_reply_text() == expected, **gaps, **frames.done()}


class FrameCosts:
    """Render cost of each paint (ms per 1,000 characters painted), to see whether it
    stays flat from the start of a long reply to its end."""

    def __init__(self, window: MainWindow) -> None:
        self._window = window
        self._samples: list[tuple[float, int]] = []
        window.controller.text_arrived.disconnect(window.transcript.append_reply_text)
        window.controller.text_arrived.connect(self._paint)

    def _paint(self, text: str) -> None:
        started = time.perf_counter()
        self._window.transcript.append_reply_text(text)
        self._samples.append(((time.perf_counter() - started) * 1000, len(text)))

    def done(self) -> dict[str, float]:
        controller, transcript = self._window.controller, self._window.transcript
        controller.text_arrived.disconnect(self._paint)
        controller.text_arrived.connect(transcript.append_reply_text)
        per_kchar = [ms * 1000 / max(chars, 1) for ms, chars in self._samples]
        fifth = max(1, len(per_kchar) // 5)
        start, end = statistics.median(per_kchar[:fifth]), statistics.median(per_kchar[-fifth:])
        return {"frames": len(per_kchar), "paint_ms_median": statistics.median(
                    ms for ms, _ in self._samples),
                "paint_ms_per_kchar_start": start, "paint_ms_per_kchar_end": end,
                "paint_end_over_start": end / start}


async def run_rounds(window: MainWindow, url: str, args: argparse.Namespace,
                     expected: str) -> list[dict[str, Any]]:
    meter = GapMeter()
    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    rounds: list[dict[str, Any]] = []
    print(f"{'round':>5} | {'raw d/s':>8} {'stream':>8} {'max gap':>8} | "
          f"{'GUI d/s':>8} {'ratio':>6} {'max gap':>8} {'p99 gap':>8} {'ticks':>6} | "
          f"{'client':>7} {'GUI÷cl':>6} | text")
    try:
        for i in range(args.rounds):
            raw = await raw_round(client, args.model, meter, expected)
            own = await client_round(url, args.model, meter, expected)
            if i and not args.same_conversation:
                window.controller.new_chat()
            await asyncio.sleep(0.3)
            gui = await gui_round(window, args.deltas, meter, expected)
            rounds.append({"round": i + 1, "raw": raw, "client": own, "gui": gui,
                           "ratio": gui["rate"] / raw["rate"],
                           "client_ratio": gui["rate"] / own["rate"]})
            print_round(rounds[-1])
            await asyncio.sleep(0.2)
    finally:
        await client.close()
    return rounds


def print_round(r: dict[str, Any]) -> None:
    raw, gui = r["raw"], r["gui"]
    own = r["client"]
    ok = ("OK" if raw["ok"] and gui["ok"] and own["ok"] else
          f"MISMATCH (raw {raw['ok']}, client {own['ok']}, gui {gui['ok']})")
    print(f"{r['round']:>5} | {raw['rate']:>8.0f} {raw['stream_rate']:>8.0f} "
          f"{raw['max_gap_ms']:>6.1f}ms | {gui['rate']:>8.0f} {r['ratio']:>6.3f} "
          f"{gui['max_gap_ms']:>6.1f}ms {gui['p99_gap_ms']:>6.1f}ms {gui['ticks']:>6} | "
          f"{own['rate']:>7.0f} {r['client_ratio']:>6.3f} | {ok}",
          flush=True)


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def med(side: str, key: str) -> float:
        return statistics.median(r[side][key] for r in rounds)

    raw_rate, gui_rate = med("raw", "rate"), med("gui", "rate")
    return {
        "raw_rate": raw_rate, "raw_stream_rate": med("raw", "stream_rate"), "gui_rate": gui_rate,
        "ratio_of_medians": gui_rate / raw_rate,
        "client_rate": med("client", "rate"),
        "client_ratio": statistics.median(r["client_ratio"] for r in rounds),
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "gui_max_gap_ms": max(r["gui"]["max_gap_ms"] for r in rounds),
        "gui_median_max_gap_ms": med("gui", "max_gap_ms"),
        "gui_median_p99_gap_ms": med("gui", "p99_gap_ms"),
        "raw_max_gap_ms": max(r["raw"]["max_gap_ms"] for r in rounds),
        "paint_ms_median": med("gui", "paint_ms_median"),
        "paint_start": med("gui", "paint_ms_per_kchar_start"),
        "paint_end": med("gui", "paint_ms_per_kchar_end"),
        "paint_end_over_start": med("gui", "paint_end_over_start"),
        "all_ok": all(r["raw"]["ok"] and r["client"]["ok"] and r["gui"]["ok"] for r in rounds),
    }


def machine_facts() -> dict[str, Any]:
    return {"python": platform.python_version(), "pyside6": PySide6.__version__, "qt": qVersion(),
            "openai": openai.__version__, "qasync": importlib.metadata.version("qasync"),
            "cpus": os.cpu_count(), "platform": platform.platform(),
            "qpa": os.environ.get("QT_QPA_PLATFORM", "")}


def print_summary(s: dict[str, Any], n: int) -> None:
    print(f"\nmedians over {n} rounds:")
    print(f"  raw SDK      {s['raw_rate']:>9.0f} deltas/s   (first chunk to end: "
          f"{s['raw_stream_rate']:.0f}/s; max gap {s['raw_max_gap_ms']:.1f} ms)")
    print(f"  app client   {s['client_rate']:>9.0f} deltas/s   (core/llm without the window)")
    print(f"  GUI window   {s['gui_rate']:>9.0f} deltas/s")
    print(f"  ratio        {s['ratio_of_medians']:>9.3f} (of medians)   "
          f"{s['median_ratio']:.3f} (median of per-round ratios)   target >= {TARGET_RATIO}")
    print(f"  GUI ÷ client {s['client_ratio']:>9.3f} (median of per-round ratios: what the "
          f"window itself costs)")
    print(f"  GUI gaps     max {s['gui_max_gap_ms']:.1f} ms (worst round; median round "
          f"{s['gui_median_max_gap_ms']:.1f} ms)   p99 {s['gui_median_p99_gap_ms']:.1f} ms "
          f"(median)   target max <= {TARGET_GAP_MS:g} ms")
    print(f"  paint cost   {s['paint_ms_median']:.2f} ms per paint (median); per 1,000 chars: "
          f"{s['paint_start']:.2f} ms in the first fifth of the reply, {s['paint_end']:.2f} ms "
          f"in the last; end/start {s['paint_end_over_start']:.2f}   target <= 1.5")
    ok_ratio, ok_gap = s["ratio_of_medians"] >= TARGET_RATIO, s["gui_max_gap_ms"] <= TARGET_GAP_MS
    print(f"  text         {'OK' if s['all_ok'] else 'MISMATCH'}\n  verdict      ratio "
          f"{'PASS' if ok_ratio else 'FAIL'}, max gap {'PASS' if ok_gap else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="test-model")
    parser.add_argument("--word-deltas", action="store_true",
                        help="a word or code line per delta (twice the text), not token-sized")
    parser.add_argument("--same-conversation", action="store_true",
                        help="keep one conversation across GUI rounds (measures growth)")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the server process share CPUs with the app")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["OPENAI_API_KEY"] = "sk-benchmark-dummy"
    facts = machine_facts()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    expected = expected_text(args.deltas, tokens=not args.word_deltas)
    server, url = start_server(args.deltas, tokens=not args.word_deltas)
    pinned = pin_server_apart(server.pid) if not args.no_pin else "no"
    print(f"server: {url} ({args.deltas} deltas, {len(expected)} chars = "
          f"{len(expected) / args.deltas:.1f} per delta, pace 0; "
          f"pinned apart: {pinned})\n", flush=True)
    app = QApplication([sys.argv[0]])
    configure_application(app)
    loop = create_event_loop(app)  # the app's own qasync loop setup (sets it as current)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as data_dir, loop:
            window = create_main_window(["--data-dir", data_dir, "--base-url", url,
                                         "--model", args.model])
            window.resize(1000, 720)
            window.show()
            settle_startup_objects()  # as app.main does
            start_warm_up().join()  # done while the user types the first prompt
            try:
                rounds = loop.run_until_complete(run_rounds(window, url, args, expected))
            finally:
                loop.run_until_complete(window.controller.aclose())
                window.close()
    finally:
        server.terminate()
        server.wait(5)
    summary = summarize(rounds)
    print_summary(summary, len(rounds))
    if args.json:
        result = {"machine": facts, "args": vars(args) | {"json": str(args.json)},
                  "rounds": rounds, "summary": summary}
        args.json.write_text(json.dumps(result, indent=2), "utf-8")
    return 0 if summary["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
