"""Start-up: the app vs a bare PySide6 + qasync window, each started as a fresh process.

Each run starts a new Python process that shows its window (offscreen unless QT_QPA_PLATFORM
says otherwise) under tests/support/startup_probe.py, which reports the first frame's time,
the event loop's longest gap during the next --settle seconds and the resident memory after
them (the idle window, empty conversation). First paint = the time from spawning the process
to the end of the main window's first paint (both read from the system's monotonic clock);
whole = to the moment the app's window has every part (app.finish_window), with the
conversation left open shown (`--history`).
The two kinds of process alternate, both in this one run, after one unmeasured warm-up of
each (which also creates the app's data folder and compiles the bytecode: later runs are a
normal second start of an installed app).

The app runs with a configured profile pointed at the loopback OpenAI server (its own
process; the model list loads from it during start-up), and the default keychain.
Targets (issue #18): first paint <= 2x bare, idle RSS <= 1.6x bare, gaps <= 33 ms.

    python benchmarks/startup.py [--runs N] [--settle S]
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parents[1]
TARGET_PAINT, TARGET_RSS, TARGET_GAP_MS = 2.0, 1.6, 33.0


def start_server() -> tuple[subprocess.Popen[str], str]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.openai_server import spawn

    return spawn()


def child_env(bytecode_dir: str) -> dict[str, str]:
    """Both kinds of process start as an installed app does: with compiled bytecode. pip
    compiles every module when it installs (and PyInstaller ships bytecode), but a shell
    with PYTHONDONTWRITEBYTECODE set would make the app alone compile its ~100 modules from
    source on every start (~180 ms here) while the bare window's PySide6 and qasync come
    compiled from site-packages. The bytecode goes to a temporary folder, not the checkout."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = bytecode_dir
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["PYTHONPATH"] = os.pathsep.join(  # this checkout's code, whatever else is installed
        [str(ROOT / "src"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["OPENAI_API_KEY"] = "sk-startup-benchmark"
    env.pop("OPENAI_BASE_URL", None)
    return env


def fill_history(data_dir: Path) -> str:
    """benchmarks/history.py's history, its big conversation open as the user left it."""
    from benchmarks.history import build_history
    from desktop_chat.core.history.store import HISTORY_FILE

    big, _, chars, _ = build_history(data_dir / HISTORY_FILE)
    (data_dir / "window.ini").write_text(f"[General]\nconversation={big}\n", encoding="utf-8")
    return f"the open conversation has {chars:,} characters"


def one_start(what: str, app_args: list[str], settle_s: float,
              env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tests.support.startup_probe", what, "--settle", str(settle_s),
           "--", *app_args]
    spawned = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{result.stdout}"
                           f"\n{result.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(lines[-1])
    report["paint_s"] = report["first_paint"] - spawned
    report["whole_s"] = report.get("whole", report["first_paint"]) - spawned
    return report


def load_average() -> str:
    """The machine's load (1, 5, 15 min): shared machines make every number noisier."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def median(reports: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in reports)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="measured starts of each (default 7)")
    parser.add_argument("--history", action="store_true",
                        help="start with a history (benchmarks/history.py's: 1,000 chats and a "
                        "1,000-message conversation, which is the one open at the start)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds after the first frame that the loop is watched, before "
                        "memory is read (default 3)")
    args = parser.parse_args()
    server, url = start_server()
    print(f"{platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {load_average()}; loopback server {url}")
    try:
        with tempfile.TemporaryDirectory(prefix="startup-bench-") as data_dir, \
                tempfile.TemporaryDirectory(prefix="startup-bytecode-") as bytecode_dir:
            env = child_env(bytecode_dir)
            if args.history:
                print(f"history: {fill_history(Path(data_dir))}")
            print(f"QPA {env['QT_QPA_PLATFORM']}; bytecode cached in {bytecode_dir}")
            app_args = ["--data-dir", data_dir, "--base-url", url, "--model", "test-model"]
            runs: dict[str, list[dict[str, Any]]] = {"bare": [], "app": []}
            for what in ("bare", "app"):  # warm-up: file caches, the data folder
                one_start(what, app_args, min(args.settle, 1.0), env)
            for i in range(args.runs):
                order = ("bare", "app") if i % 2 == 0 else ("app", "bare")
                for what in order:
                    report = one_start(what, app_args, args.settle, env)
                    runs[what].append(report)
                    rss = report["rss_kib"]
                    memory = f"RSS {rss / 1024:.0f} MiB" if rss else "RSS n/a"
                    print(f"  run {i + 1} {what:4}: first paint {report['paint_s']:.3f} s, "
                          f"max gap {report['max_gap_ms']:.0f} ms (GUI thread CPU "
                          f"{report['max_gap_cpu_ms']:.0f} ms of it), {memory}", flush=True)
    finally:
        server.terminate()
        server.wait(5)
    bare, app = runs["bare"], runs["app"]
    print(f"load average at the end: {load_average()}")
    paint_ratio = median(app, "paint_s") / median(bare, "paint_s")
    print(f"\nfirst paint, median of {args.runs}: app {median(app, 'paint_s'):.3f} s, bare "
          f"{median(bare, 'paint_s'):.3f} s -> ratio {paint_ratio:.2f} (target <= "
          f"{TARGET_PAINT:g})")
    print(f"the app's window whole (every part made, the last conversation shown), median: "
          f"{median(app, 'whole_s'):.3f} s, {median(app, 'whole_s') - median(app, 'paint_s'):.3f}"
          " s after its first frame")
    if all(r["rss_kib"] for r in app + bare):
        rss_ratio = median(app, "rss_kib") / median(bare, "rss_kib")
        print(f"idle RSS {args.settle:g} s after the first frame, median: app "
              f"{median(app, 'rss_kib') / 1024:.0f} MiB, bare {median(bare, 'rss_kib') / 1024:.0f}"
              f" MiB -> ratio {rss_ratio:.2f} (target <= {TARGET_RSS:g})")
    else:
        print("idle RSS: not available on this platform (no /proc)")
    gaps = [r["max_gap_ms"] for r in app]
    print(f"event loop, first {args.settle:g} s after the first frame (time between 5 ms timer "
          f"ticks): app max {max(gaps):.0f} ms, median of the runs' max "
          f"{statistics.median(gaps):.0f} ms; bare max {max(r['max_gap_ms'] for r in bare):.0f}"
          f" ms (target <= {TARGET_GAP_MS:g} ms)")
    longest = [r.get("long_gaps", []) for r in app]
    print("app gaps over 30 ms per run, [ms after the first frame, gap ms, GUI thread CPU ms]: "
          + "; ".join(str(gaps) for gaps in longest))
    loaded = sorted({m for r in app for m in r["imported_at_first_paint"]} & set(WATCHED_NAMES))
    print(f"loaded at the app's first frame (of {', '.join(WATCHED_NAMES)}): "
          f"{', '.join(loaded) or 'none'}")
    return 0


WATCHED_NAMES = ("openai", "markdown_it", "pygments", "keyring")

if __name__ == "__main__":
    sys.exit(main())
