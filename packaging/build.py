#!/usr/bin/env python3
"""Build the double-clickable app: dist/desktop-chat/ (and dist/Desktop Chat.app on macOS).

    python3 packaging/build.py                  build, print the size and what dominates it
    python3 packaging/build.py --check          ... then prove the frozen app works (CI)
    python3 packaging/build.py --measure-cuts   ... also rebuild without each size cut

Every build starts from a clean virtual environment, build/venv, created here: the project
is installed into it as a user would get it (`pip install .`, not editable) together with
PyInstaller and Pillow (icons), and PyInstaller runs packaging/desktop_chat.spec from there.
Nothing from the developer's own environment leaks in.

--check runs the frozen app's --self-test offscreen (and on a real X server when Xvfb is
installed), sends one prompt through the frozen window to the loopback test server
(tests/support/openai_server.py) and checks the streamed reply, runs the import helper
(--import-host) on the small ChatGPT export, scans the bundle for
libraries that do not resolve, and times the start of the frozen app against the same code
run by Python. Exit status 0 only if everything passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "desktop_chat.spec"
BUILD = ROOT / "build"
VENV = BUILD / "venv"
WORK = BUILD / "pyinstaller"
DIST = ROOT / "dist"
APP = "desktop-chat"
MACOS_APP = "Desktop Chat.app"
WINDOWS = sys.platform == "win32"
MACOS = sys.platform == "darwin"
LINUX = sys.platform.startswith("linux")
# A windowed Windows executable has no stdout: its checks are judged by the exit status.
SILENT = WINDOWS and os.environ.get("DESKTOP_CHAT_CONSOLE") != "1"

BUILD_REQUIREMENTS = ["pyinstaller>=6.10,<7", "pyinstaller-hooks-contrib>=2024.8", "pillow>=10"]
TARGET_MB = 120  # the target for the Linux bundle
MAX_START_RATIO = 1.5  # frozen start may take at most this times the source start ...
START_SLACK_S = 0.25  # ... unless the difference is below timing noise
SMOKE_DELTAS = ["The frozen ", "build ", "**streams**", " a reply."]
MIB = 1024 * 1024


class Failed(Exception):
    pass


# --- helpers -------------------------------------------------------------------------------

def log(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    log(f"\n== {text}")


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if WINDOWS else "bin/python")


def frozen_executable() -> Path:
    if MACOS and (DIST / MACOS_APP).is_dir():
        return DIST / MACOS_APP / "Contents" / "MacOS" / APP
    return DIST / APP / (f"{APP}.exe" if WINDOWS else APP)


def bundle_dir() -> Path:
    return DIST / MACOS_APP if MACOS and (DIST / MACOS_APP).is_dir() else DIST / APP


def run(cmd: Sequence[str | os.PathLike[str]], **kwargs: object) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)  # type: ignore[call-overload]


def mib(n: int) -> str:
    return f"{n / MIB:7.1f} MiB"


def files_of(top: Path) -> list[tuple[Path, int]]:
    """Every regular file under `top` with its size; symlinks count as nothing."""
    found = []
    for dirpath, _dirs, names in os.walk(top):
        for name in names:
            path = Path(dirpath) / name
            if not path.is_symlink():
                found.append((path, path.stat().st_size))
    return found


# --- build ---------------------------------------------------------------------------------

def make_venv(reuse: bool) -> None:
    heading("clean build environment")
    if not reuse:
        # setuptools builds the wheel through build/lib, where files deleted from src/ linger
        for stale in [VENV, BUILD / "lib", *BUILD.glob("bdist.*")]:
            shutil.rmtree(stale, ignore_errors=True)
    if not venv_python().exists():
        run([sys.executable, "-m", "venv", VENV])
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_PROGRESS_BAR": "off"}
        run([venv_python(), "-m", "pip", "install", "-qq", ROOT, *BUILD_REQUIREMENTS], env=env)
    out = subprocess.run([venv_python(), "-m", "pip", "list", "--format=json"], check=True,
                         capture_output=True, text=True).stdout
    versions = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(out)}
    log("  " + ", ".join(f"{n} {versions.get(n, '?')}" for n in (
        "desktop-chat", "pyside6-essentials", "openai", "pyinstaller",
        "pyinstaller-hooks-contrib")))


def pyinstaller(dist: Path, work: Path, cuts: str = "all", quiet: bool = False) -> None:
    """Run the spec. The log goes to <work>.log; its tail is shown if PyInstaller fails."""
    work.parent.mkdir(parents=True, exist_ok=True)
    log_file = work.parent / f"{work.name}.log"
    env = {**os.environ, "DESKTOP_CHAT_CUTS": cuts, "QT_QPA_PLATFORM": "offscreen"}
    cmd = [venv_python(), "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
           "--distpath", dist, "--workpath", work, SPEC]
    if not quiet:
        log("$ " + " ".join(str(c) for c in cmd) + f"  (DESKTOP_CHAT_CUTS={cuts})")
    with log_file.open("w") as out:
        result = subprocess.run([str(c) for c in cmd], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)
    lines = log_file.read_text(errors="replace").splitlines()
    if result.returncode != 0:
        log("\n".join(lines[-40:]))
        raise Failed(f"PyInstaller failed (exit {result.returncode}); full log: {log_file}")
    warnings = [ln for ln in lines if " WARNING: " in ln]
    if not quiet:
        log(f"  {len(warnings)} PyInstaller warnings (mostly libraries of plugins this "
            f"machine lacks), see {log_file.relative_to(ROOT)}")


# --- size report ---------------------------------------------------------------------------

def group_of(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    if "/plugins/" in f"/{rel}":
        return "Qt plugins"
    if name.startswith(("libicu", "icu")):
        return "ICU (Unicode/locale data Qt Core links)"
    if name.startswith(("libQt6", "Qt6")) or "/Qt/lib/" in f"/{rel}" or ".framework/" in rel:
        return "Qt libraries"
    if rel.startswith(("_internal/PySide6/", "_internal/shiboken6/")) or name.startswith(
            ("libpyside6", "libshiboken6", "pyside6", "shiboken6")):
        return "PySide6/shiboken bindings"
    if name in (APP, f"{APP}.exe"):
        return "executable + Python code (PYZ)"
    if name.startswith(("libpython", "python3")) or "lib-dynload" in rel or name in (
            "base_library.zip",):
        return "Python runtime"
    if name.startswith(("libssl", "libcrypto")):
        return "OpenSSL (Python's ssl)"
    if ".so" in name or name.endswith((".dll", ".dylib", ".pyd")):
        if "/" in rel.removeprefix("_internal/"):
            return "Python packages' extensions"
        return "other system libraries"
    return "data, metadata, icons"


def size_report(top: int = 15) -> int:
    heading("bundle size")
    bundle = bundle_dir()
    files = files_of(bundle)
    total = sum(size for _p, size in files)
    log(f"  {bundle.relative_to(ROOT)}: {mib(total)} ({total / 1e6:.1f} MB) in {len(files)} "
        f"files; target for Linux <= {TARGET_MB} MB")
    log(f"\n  top {top} files:")
    for path, size in sorted(files, key=lambda f: -f[1])[:top]:
        log(f"  {mib(size)}  {path.relative_to(bundle).as_posix()}")
    groups: dict[str, int] = {}
    for path, size in files:
        rel = path.relative_to(bundle).as_posix()
        groups[group_of(rel)] = groups.get(group_of(rel), 0) + size
    log("\n  by kind:")
    for name, size in sorted(groups.items(), key=lambda g: -g[1]):
        log(f"  {mib(size)}  {100 * size / total:4.1f}%  {name}")
    archive = BUILD / f"{APP}.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=bundle.name)
    log(f"\n  compressed for download (tar.gz): {mib(archive.stat().st_size)}")
    archive.unlink()
    return total


def cuts_report() -> None:
    report_file = WORK / "desktop_chat" / "prune-report.json"
    if not report_file.is_file():
        return
    cuts = json.loads(report_file.read_text())
    heading("what the pruning step cut (sizes of the files left out)")
    total = 0
    for name, cut in sorted(cuts.items(), key=lambda c: -c[1]["bytes"]):
        total += cut["bytes"]
        log(f"  {mib(cut['bytes'])} {cut['files']:4d} files  {name}: {cut.get('why', '')}")
    log(f"  {mib(total)}             total")


def measure_cuts(final_size: int) -> None:
    """Rebuild with the cuts switched on one after the other: what each really saves,
    including what the module excludes keep PyInstaller from collecting at all."""
    heading("what each cut saves (separate builds)")
    steps = [("none", "nothing cut"), ("excludes", "+ module excludes"),
             ("excludes,qt-prune", "+ Qt/library pruning")]
    sizes = []
    for cuts, label in steps:
        dist, work = BUILD / "measure" / cuts.replace(",", "+"), BUILD / "measure" / "work"
        started = time.monotonic()
        pyinstaller(dist, work, cuts, quiet=True)
        size = sum(s for _p, s in files_of(dist / (MACOS_APP if MACOS else APP)))
        sizes.append((label, size))
        log(f"  built {label!r} in {time.monotonic() - started:.0f} s: {mib(size)}")
        shutil.rmtree(dist, ignore_errors=True)
    sizes.append(("+ strip debug symbols (Linux) = the real build", final_size))
    log("")
    previous = None
    for label, size in sizes:
        saved = f"saves {mib(previous - size)}" if previous is not None else ""
        log(f"  {mib(size)}  {label:48s} {saved}")
        previous = size
    shutil.rmtree(BUILD / "measure", ignore_errors=True)


# --- checks --------------------------------------------------------------------------------

def check_libraries() -> list[str]:
    """Linux: every bundled ELF file's dependencies must resolve. A library missing from the
    bundle that PyInstaller would have collected means pruning went too far (failure); a
    host library this build machine lacks is reported for the README's build prerequisites."""
    if not LINUX or shutil.which("ldd") is None:
        return []
    heading("library resolution (ldd)")
    internal = DIST / APP / "_internal"
    env = {**os.environ,
           "LD_LIBRARY_PATH": f"{internal}:{internal / 'PySide6' / 'Qt' / 'lib'}"}
    missing: dict[str, set[str]] = {}
    for path, _size in files_of(internal):
        if ".so" not in path.name:
            continue
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env).stdout
        for line in out.splitlines():
            if "=> not found" in line:
                missing.setdefault(line.split()[0], set()).add(path.name)
    ours = [lib for lib in missing if lib.startswith(
        ("libQt6", "libicu", "libpyside6", "libshiboken6", "libpython"))]
    for lib, users in sorted(missing.items()):
        where = "MISSING FROM THE BUNDLE" if lib in ours else "not on this build machine"
        log(f"  {lib}: {where} (needed by {', '.join(sorted(users)[:3])}"
            f"{', ...' if len(users) > 3 else ''})")
    if not missing:
        log("  every dependency resolves")
    return [f"libraries missing from the bundle: {', '.join(ours)}"] if ours else []


def run_app(cmd: Sequence[str | os.PathLike[str]], env: dict[str, str], timeout: float = 120
            ) -> tuple[int, str, float]:
    started = time.perf_counter()
    result = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                            timeout=timeout, cwd=tempfile.gettempdir())
    return result.returncode, result.stdout + result.stderr, time.perf_counter() - started


def app_env(platform: str = "offscreen", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(QT_QPA_PLATFORM=platform, OPENAI_API_KEY="sk-build-check", **extra)
    return env


def check_self_test(label: str, env: dict[str, str]) -> list[str]:
    heading(f"frozen --self-test ({label})")
    code, output, seconds = run_app([frozen_executable(), "--self-test"], env)
    log("\n".join("  " + ln for ln in output.strip().splitlines()))
    log(f"  exit {code} in {seconds:.2f} s")
    passed = code == 0 and (SILENT or "all checks OK" in output)
    return [] if passed else [f"--self-test ({label}) failed"]


class TestServer:
    """tests/support/openai_server.py in a subprocess, run from the repository root."""

    def __init__(self, deltas: list[str]) -> None:
        scenario = json.dumps({"deltas": deltas, "pace": 0.01})
        self.process = subprocess.Popen(
            [str(venv_python()), "-m", "tests.support.openai_server", "--scenario-json",
             scenario], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.close()
            raise Failed(f"test server did not start: {line!r}")
        self.url = line.split()[1]

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def smoke_command(exe: Sequence[str | os.PathLike[str]], url: str, data_dir: str
                  ) -> list[str | os.PathLike[str]]:
    return [*exe, "--data-dir", data_dir, "--base-url", url, "--model", "test-model",
            "--smoke-prompt", "Say something"]


def check_version() -> list[str]:
    """The version comes from the bundled dist-info metadata (else "0.0.0+source")."""
    heading("frozen --version")
    out = subprocess.run([venv_python(), "-c", "from importlib.metadata import version; "
                          f"print(version({APP!r}))"], capture_output=True, text=True,
                         check=True).stdout.strip()
    code, output, _seconds = run_app([frozen_executable(), "--version"], app_env())
    log(f"  {output.strip()} (installed package: {out})")
    if code != 0 or (not SILENT and f"{APP} {out}" not in output):
        return [f"--version does not report {out}"]
    return []


def check_smoke(server: TestServer) -> list[str]:
    heading("frozen --smoke-prompt against the loopback server")
    failures = []
    with tempfile.TemporaryDirectory() as data_dir:
        code, output, seconds = run_app(
            smoke_command([frozen_executable()], server.url, data_dir), app_env())
        logs = list(Path(data_dir, "logs").glob("*.log"))
        log_text = "".join(f.read_text(errors="replace") for f in logs)
    log("\n".join("  " + ln for ln in output.strip().splitlines()))
    expected = "".join(SMOKE_DELTAS)
    log(f"  exit {code} in {seconds:.2f} s; expected reply {expected!r}")
    if code != 0 or (not SILENT and expected not in output):
        failures.append("--smoke-prompt: the streamed reply did not arrive complete")
    log(f"  log in the data dir: {', '.join(f.name for f in logs) or 'NONE'}")
    if not logs:
        failures.append("--smoke-prompt wrote no log file in <data dir>/logs")
    if app_env()["OPENAI_API_KEY"] in log_text:
        failures.append("the API key appears in the log")
    return failures


def check_import() -> list[str]:
    """File → Import runs the frozen executable itself as its helper process (--import-host):
    the small ChatGPT export must be imported into a new history and answered on stdout."""
    heading("frozen --import-host (the import helper) on tests/data/chatgpt_export_small.json")
    fixture = ROOT / "tests" / "data" / "chatgpt_export_small.json"
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "history.sqlite3"
        started = time.perf_counter()
        proc = subprocess.Popen([str(frozen_executable()), "--import-host", str(db), str(fixture)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=app_env(), cwd=tmp)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b'{"secrets": []}\n')  # then kept open: closing it means "stop"
        proc.stdin.flush()
        watchdog = threading.Timer(120, proc.kill)  # a helper that hangs fails the check
        watchdog.start()
        try:
            output = b"".join(iter(proc.stdout.readline, b""))  # until the helper exits
            code = proc.wait()
        finally:
            watchdog.cancel()
            proc.stdin.close()
        seconds = time.perf_counter() - started
        conn = sqlite3.connect(db)
        try:
            imported = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
        finally:
            conn.close()
    text = output.decode("utf-8", "replace").strip()
    log("\n".join("  " + ln for ln in text.splitlines()[-5:]))
    log(f"  exit {code} in {seconds:.2f} s; {imported} conversations in the new history")
    answered = SILENT or '"result": {"conversations": 2' in text
    if code != 0 or imported != 2 or not answered:
        return ["--import-host: the import helper did not import the small ChatGPT export"]
    return []


def with_xvfb(fn):  # type: ignore[no-untyped-def]
    """Call fn(display) with an Xvfb server running, or return None without Xvfb."""
    if not LINUX or shutil.which("Xvfb") is None:
        return None
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            display = pipe.readline().strip()
        return fn(f":{display}")
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def median_time(cmd_for_run, env: dict[str, str], runs: int) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    times = []
    for i in range(runs + 1):  # the first run only warms the file cache
        with tempfile.TemporaryDirectory() as data_dir:
            code, output, seconds = run_app(cmd_for_run(data_dir), env)
        if code != 0:
            raise Failed(f"timing run failed (exit {code}):\n{output}")
        if i:
            times.append(seconds)
    return statistics.median(times), times


def check_start_times(server: TestServer, runs: int) -> list[str]:
    heading(f"start time: frozen vs source (same machine, median of {runs} after a warm-up)")
    source = [venv_python(), "-m", "desktop_chat"]
    frozen = [frozen_executable()]
    rows = []
    for what, build_cmd in (
        ("--self-test (process start -> main window shown offscreen -> exit)",
         lambda exe: lambda _d: [*exe, "--self-test"]),
        ("--smoke-prompt (start -> window -> one streamed reply -> exit)",
         lambda exe: lambda d: smoke_command(exe, server.url, d)),
    ):
        frozen_s, frozen_all = median_time(build_cmd(frozen), app_env(), runs)
        source_s, source_all = median_time(build_cmd(source), app_env(), runs)
        rows.append((what, frozen_s, source_s))
        log(f"  {what}\n    frozen {frozen_s:.2f} s {fmt(frozen_all)}; "
            f"source {source_s:.2f} s {fmt(source_all)}; ratio {frozen_s / source_s:.2f}")
    what, frozen_s, source_s = rows[0]
    if frozen_s > MAX_START_RATIO * source_s and frozen_s - source_s > START_SLACK_S:
        return [f"frozen start {frozen_s:.2f} s > {MAX_START_RATIO} x source {source_s:.2f} s"]
    return []


def fmt(times: list[float]) -> str:
    return "[" + ", ".join(f"{t:.2f}" for t in times) + "]"


def checks(runs: int) -> list[str]:
    failures = check_libraries()
    failures += check_version()
    failures += check_self_test("offscreen", app_env())
    xcb = with_xvfb(lambda display: check_self_test(
        f"xcb on Xvfb {display}", app_env("xcb", DISPLAY=display)))
    if xcb is None and LINUX:
        log("\n(Xvfb not installed: the self-test on a real X server was skipped)")
    failures += xcb or []
    server = TestServer(SMOKE_DELTAS)
    try:
        failures += check_smoke(server)
        failures += check_import()
        if runs > 0:
            failures += check_start_times(server, runs)
    finally:
        server.close()
    return failures


# --- main ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="run the frozen app's self-test and smoke prompt, time its start")
    parser.add_argument("--measure-cuts", action="store_true",
                        help="rebuild without each size cut to measure what it saves (slow)")
    parser.add_argument("--reuse-venv", action="store_true",
                        help="keep build/venv from a previous run (faster, not clean)")
    parser.add_argument("--timing-runs", type=int, default=3, metavar="N",
                        help="timed starts per variant with --check (0: skip timing)")
    args = parser.parse_args(argv)

    durations: dict[str, float] = {}
    failures: list[str] = []
    started = time.monotonic()
    try:
        make_venv(args.reuse_venv)
        durations["venv + install"] = time.monotonic() - started
        heading("PyInstaller")
        mark = time.monotonic()
        pyinstaller(DIST, WORK)
        durations["PyInstaller"] = time.monotonic() - mark
        log(f"  built {frozen_executable().relative_to(ROOT)} in "
            f"{durations['PyInstaller']:.0f} s")
        total = size_report()
        cuts_report()
        if args.measure_cuts:
            mark = time.monotonic()
            measure_cuts(total)
            durations["measuring cuts"] = time.monotonic() - mark
        if args.check:
            mark = time.monotonic()
            failures = checks(args.timing_runs)
            durations["checks"] = time.monotonic() - mark
    except (Failed, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        failures.append(str(exc))
    durations["total"] = time.monotonic() - started
    heading("summary")
    log("  " + "; ".join(f"{k} {v:.0f} s" for k, v in durations.items()))
    for failure in failures:
        log(f"  FAIL {failure}")
    if failures:
        return 1
    log(f"  OK: {bundle_dir().relative_to(ROOT)}" + (" passed every check" if args.check else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
