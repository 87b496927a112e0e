"""Math while streaming: a reply with a formula every few lines vs the same kind of reply
without math, back to back through the real window, each against the raw SDK loop.

The loopback servers run in their own processes and serve N token-sized deltas, unpaced: the
plain reply of benchmarks/stream_throughput.py, and that reply with a formula (inline `$…$`,
`\\(…\\)` or display `$$…$$`, `\\[…\\]`, from tests/data/math_corpus.tex) put in at every
`--every`-th paragraph. Each round: raw plain, GUI plain, raw math, GUI math. Round 1 starts
with nothing drawn (every formula drawn for the first time, on the worker thread, while the
reply streams); later rounds find the drawings cached, as a conversation reopened does.
Targets for the math reply: GUI/raw ratio >= 0.90, max loop gap <= 33 ms. Then, less moved by
a busy machine, the GUI thread's CPU time to render each reply (no network), and the cost of
a formula: first render (ziamath + QtSvg raster) and cached render (the HTML hook per paint).

    python benchmarks/formulas.py [--deltas N] [--rounds R] [--every K] [--distinct D] [--sample S]
"""

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and "math" would be this file
# for every module that imports the standard library's math (statistics, random, ...).
ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == ROOT / "benchmarks":
    sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import openai  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from tests.support.openai_server import spawn, synthetic_markdown_deltas  # noqa: E402

from benchmarks.stream_throughput import (  # noqa: E402
    TARGET_GAP_MS,
    TARGET_RATIO,
    GapMeter,
    gui_round,
    machine_facts,
    raw_round,
)
from desktop_chat.app import (  # noqa: E402
    configure_application,
    create_event_loop,
    create_main_window,
    settle_startup_objects,
    start_warm_up,
)
from desktop_chat.core.render.math import Formula  # noqa: E402
from desktop_chat.ui.main_window import MainWindow  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "math_corpus.tex"
PINNED_APART: set[int] = set()  # the servers' CPU (and the formula helper's)
FORMS = (("$", "$"), ("$$", "$$"), ("\\(", "\\)"), ("\\[", "\\]"))


def corpus_formulas() -> list[str]:
    lines = CORPUS.read_text("utf-8").split("% cannot draw")[0].splitlines()
    return [line for line in lines if line.strip() and not line.startswith("%")]


def math_deltas(n: int, every: int, distinct: int) -> tuple[list[str], int]:
    """The plain synthetic reply with a formula (a paragraph of its own) before every
    `every`-th paragraph start outside code blocks; returns the deltas and how many formulas
    they hold."""
    formulas = corpus_formulas()[:distinct]
    out: list[str] = []
    paragraphs = placed = fences = 0
    for delta in synthetic_markdown_deltas(n):
        if delta.startswith("\n\n") and fences % 2 == 0:
            paragraphs += 1
            if paragraphs % every == 0:
                opener, closer = FORMS[placed % len(FORMS)]
                latex = formulas[placed % len(formulas)]
                lead = "\n\n" if opener in ("$$", "\\[") else "\n\nSo "
                text = f"{lead}{opener}{latex}{closer}"
                out += [text[i : i + 4] for i in range(0, len(text), 4)]
                placed += 1
        fences += delta.count("```")
        out.append(delta)
    return out[:n], placed


def pin_servers_apart(pids: list[int]) -> str:
    """Both servers on one CPU of their own, the app on the others (as stream_throughput)."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return "no (not supported here)"
    cpus = sorted(os.sched_getaffinity(0))
    PINNED_APART.add(cpus[-1])
    for pid in pids:
        os.sched_setaffinity(pid, {cpus[-1]})
    os.sched_setaffinity(0, set(cpus[:-1]))
    return f"servers on CPU {cpus[-1]}, app on {cpus[:-1]}"


def pin_math_helper(cpus: set[int]) -> None:
    """Move the formula helper process (a child of this one, started on the first formula) to
    the servers' CPU: it inherits the app's, where it would compete with the GUI thread for
    one core, which no machine with more than two cores would make it do. Linux only."""
    tasks = Path("/proc/self/task")
    if not cpus or not tasks.is_dir():
        return
    for task in tasks.iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in children:
            try:
                if b"math_host" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.sched_setaffinity(int(pid), cpus)
            except OSError:
                continue


async def keep_math_helper_apart(cpus: set[int]) -> None:
    while True:
        pin_math_helper(cpus)
        await asyncio.sleep(0.05)


def start_server(deltas: list[str], folder: Path, name: str) -> tuple[subprocess.Popen[str], str]:
    scenario = folder / f"{name}.json"
    scenario.write_text(json.dumps({"deltas": deltas, "pace": 0}), "utf-8")
    return spawn("--scenario-file", str(scenario))


async def one_kind(window: MainWindow, url: str, deltas: list[str], meter: GapMeter,
                   model: str, first: bool) -> dict[str, Any]:
    expected = "".join(deltas)
    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    try:
        raw = await raw_round(client, model, meter, expected)
    finally:
        await client.close()
    if not first:
        window.controller.new_chat()
    await asyncio.sleep(0.3)
    gui = await gui_round(window, len(deltas), meter, expected)
    await asyncio.sleep(0.2)
    return {"raw": raw, "gui": gui, "ratio": gui["rate"] / raw["rate"]}


def print_row(round_no: int, kind: str, r: dict[str, Any]) -> None:
    raw, gui = r["raw"], r["gui"]
    ok = "OK" if raw["ok"] and gui["ok"] else f"MISMATCH (raw {raw['ok']}, gui {gui['ok']})"
    print(f"{round_no:>5} {kind:>5} | {raw['rate']:>8.0f} {raw['max_gap_ms']:>6.1f}ms | "
          f"{gui['rate']:>8.0f} {r['ratio']:>6.3f} {gui['max_gap_ms']:>6.1f}ms "
          f"{gui['p99_gap_ms']:>6.1f}ms | {ok}", flush=True)


async def paint_cpu(kinds: dict[str, list[str]], rounds: int) -> dict[str, float]:
    """GUI-thread CPU seconds spent rendering each reply into a transcript, 40 deltas per
    paint, no network: unlike wall-clock rates, barely moved by other processes on a shared
    machine. Medians over `rounds`, kinds alternating."""
    from desktop_chat.core.render.theme import Theme
    from desktop_chat.ui.transcript import Transcript

    view = Transcript(Theme())
    view.resize(900, 700)
    view.show()
    spent: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(rounds):
        for kind, deltas in kinds.items():
            view.show_messages([])
            view.begin_reply("m", 0)
            cpu = 0.0
            for i in range(0, len(deltas), 40):
                started = time.thread_time()
                view.append_reply_text("".join(deltas[i : i + 40]))
                cpu += time.thread_time() - started
                await asyncio.sleep(0)
            while view.math.busy:
                await asyncio.sleep(0.01)
            spent[kind].append(cpu)
    view.close()
    return {kind: statistics.median(values) for kind, values in spent.items()}


def formula_costs(window: MainWindow, count: int) -> dict[str, float]:
    """Median ms per formula: first render (drawn and rasterised, nothing cached) and a
    cached one (what each paint of the streaming tail pays), on the GUI thread."""
    from PySide6.QtGui import QTextDocument

    from desktop_chat.ui.math_images import MathImages

    transcript = window.transcript
    fresh = MathImages(QTextDocument(), transcript._math_look)  # an empty cache
    sample = [Formula(latex, True, "$$", "$$") for latex in corpus_formulas()[:count]]
    first, cached = [], []
    for formula in sample:
        started = time.perf_counter()
        fresh.html(formula)  # no running loop here: drawn now, on this thread
        first.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        fresh.html(formula)
        cached.append((time.perf_counter() - started) * 1000)
    return {"formulas": len(sample), "first_ms": statistics.median(first),
            "first_max_ms": max(first), "cached_ms": statistics.median(cached),
            "cached_max_ms": max(cached)}


async def run(windows: dict[str, MainWindow], urls: dict[str, str],
              kinds: dict[str, list[str]], args: argparse.Namespace) -> list[dict[str, Any]]:
    meter = GapMeter()
    rows: list[dict[str, Any]] = []
    helper_cpus = set(args.helper_cpus)
    pinning = asyncio.get_running_loop().create_task(keep_math_helper_apart(helper_cpus))
    print(f"{'round':>5} {'kind':>5} | {'raw d/s':>8} {'max gap':>8} | {'GUI d/s':>8} "
          f"{'ratio':>6} {'max gap':>8} {'p99 gap':>8} | text")
    for i in range(args.rounds):
        for kind in ("plain", "math"):
            result = await one_kind(windows[kind], urls[kind], kinds[kind], meter, args.model,
                                    first=i == 0)
            rows.append({"round": i + 1, "kind": kind, **result})
            print_row(i + 1, kind, result)
    pinning.cancel()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--every", type=int, default=3, help="a formula every K paragraphs")
    parser.add_argument("--distinct", type=int, default=40,
                        help="how many different formulas (from the corpus) the reply uses")
    parser.add_argument("--sample", type=int, default=40,
                        help="formulas to time a first and a cached render of")
    parser.add_argument("--model", default="test-model")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write results here")
    args = parser.parse_args(argv)
    args.helper_cpus = PINNED_APART
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["OPENAI_API_KEY"] = "sk-benchmark-dummy"
    facts = machine_facts()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    kinds = {"plain": synthetic_markdown_deltas(args.deltas)}
    kinds["math"], placed = math_deltas(args.deltas, args.every, args.distinct)
    with tempfile.TemporaryDirectory(prefix="bench-math-") as folder:
        servers = {kind: start_server(deltas, Path(folder), kind) for kind, deltas in kinds.items()}
        try:
            pinned = pin_servers_apart([proc.pid for proc, _url in servers.values()])
            urls = {kind: url for kind, (_proc, url) in servers.items()}
            print(f"replies: {args.deltas} deltas each; the math one holds {placed} formulas "
                  f"({min(args.distinct, placed)} different), one every {args.every} "
                  f"paragraphs; servers pinned apart: {pinned}\n", flush=True)
            rows, costs = run_app(urls, kinds, args)
        finally:
            for proc, _url in servers.values():
                proc.terminate()
                proc.wait(5)
    return report(rows, costs, facts, args)


def run_app(urls: dict[str, str], kinds: dict[str, list[str]],
            args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """One window per reply kind (each talks to its own server), in one app and loop."""
    app = QApplication([sys.argv[0]])
    configure_application(app)
    loop = create_event_loop(app)
    with tempfile.TemporaryDirectory(prefix="bench-") as data_dir, loop:
        windows: dict[str, MainWindow] = {}
        for kind, url in urls.items():
            window = create_main_window(["--data-dir", f"{data_dir}/{kind}", "--base-url", url,
                                         "--model", args.model])
            window.resize(1000, 720)
            window.show()
            windows[kind] = window
        settle_startup_objects()
        start_warm_up().join()
        try:
            rows = loop.run_until_complete(run(windows, urls, kinds, args))
            cpu = loop.run_until_complete(paint_cpu(kinds, args.rounds))
        finally:
            for window in windows.values():
                loop.run_until_complete(window.controller.aclose())
        costs = {**formula_costs(windows["math"], args.sample),
                 **{f"paint_cpu_{kind}": seconds for kind, seconds in cpu.items()}}
        for window in windows.values():
            window.close()
    return rows, costs


def report(rows: list[dict[str, Any]], costs: dict[str, float], facts: dict[str, Any],
           args: argparse.Namespace) -> int:
    print()
    for kind in ("plain", "math"):
        mine = [r for r in rows if r["kind"] == kind]
        ratios = [r["ratio"] for r in mine]
        gaps = [r["gui"]["max_gap_ms"] for r in mine]
        print(f"{kind:>5}: ratio median {statistics.median(ratios):.3f} (round 1 "
              f"{ratios[0]:.3f}), max gap {max(gaps):.1f} ms (round 1 {gaps[0]:.1f} ms)")
    math_rows = [r for r in rows if r["kind"] == "math"]
    ratio = statistics.median(r["ratio"] for r in math_rows)
    gap = max(r["gui"]["max_gap_ms"] for r in math_rows)
    print(f"math verdict: ratio {'PASS' if ratio >= TARGET_RATIO else 'FAIL'} "
          f"(target >= {TARGET_RATIO}), max gap {'PASS' if gap <= TARGET_GAP_MS else 'FAIL'} "
          f"(target <= {TARGET_GAP_MS:g} ms)")
    print(f"per formula ({costs['formulas']} from the corpus, display style): first render "
          f"{costs['first_ms']:.1f} ms median ({costs['first_max_ms']:.1f} ms max), cached "
          f"{costs['cached_ms']:.3f} ms median ({costs['cached_max_ms']:.3f} ms max)")
    print(f"paint CPU (GUI thread, no network, median of {args.rounds}): plain "
          f"{costs['paint_cpu_plain']:.2f} s, math {costs['paint_cpu_math']:.2f} s, math/plain "
          f"{costs['paint_cpu_math'] / costs['paint_cpu_plain']:.2f}")
    ok = all(r["raw"]["ok"] and r["gui"]["ok"] for r in rows)
    print(f"text: {'OK' if ok else 'MISMATCH'}")
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "rows": rows, "costs": costs},
                                        indent=2), "utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
