"""Imports run in a helper process, so that no file can freeze or end the app.

Why a process and not a thread: `json.load` of a 200 MB export is one C call of ~3 s that holds
the GIL, and so does decoding one 100 MB string; a thread doing it stops the GUI thread for as
long (measured: 3.2 s for a 200 MB ChatGPT export). A helper process has its own GIL and its
own memory (the ~2 GB a big export takes while parsed is given back when it ends), and
whatever it meets (a crash, memory running out) ends it, not the app: the transaction it has
not committed is rolled back by SQLite, so the history is unchanged.

The helper is this module (`python -m desktop_chat.core.history.import_process DB FILE`, or
the frozen app's own executable with `IMPORT_HOST_FLAG`). It reads the keys to redact as one
JSON line on stdin and then watches stdin: when it closes (the app quit, or cancelled) the
helper exits at once without committing. It writes JSON lines to stdout: `{"progress": [done,
total]}` now and then, and last `{"result": {...}}` or `{"refused": "text for the user"}`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from desktop_chat.core import logs
from desktop_chat.core.helper_flags import IMPORT_HOST_FLAG
from desktop_chat.core.history import transfer
from desktop_chat.core.history.imports import ImportResult, Progress, TransferError
from desktop_chat.core.history.store import Store, StoreError

log = logging.getLogger("desktop_chat.imports")

PROGRESS_EVERY_S = 0.05
_GONE = 3  # the helper's exit status when the app went away (stdin closed) before the end


def host_command(db_path: Path, file_path: Path) -> list[str]:
    """The helper's command line. A frozen app has no `python -m`: it runs its own executable
    with `--import-host` (app.main routes that flag to `main`)."""
    if getattr(sys, "frozen", False):
        prefix = [sys.executable, IMPORT_HOST_FLAG]
    else:
        prefix = [sys.executable, "-m", __name__]
    return [*prefix, str(db_path), str(file_path)]


def _host_env() -> dict[str, str]:
    """The app's environment, with this package importable however the app was started."""
    env = dict(os.environ)
    if not getattr(sys, "frozen", False):
        root = str(Path(__file__).resolve().parents[3])  # the directory holding desktop_chat
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


async def import_in_process(db_path: Path, file_path: Path, progress: Progress | None = None,
                            *, secrets: Sequence[str] = ()) -> ImportResult:
    """Import `file_path` into the history at `db_path` in a helper process; returns what was
    imported or raises `TransferError` (text for the user) and leaves the history unchanged.
    `progress(done, total)` is called on this loop. Cancelling kills the helper (nothing is
    imported). `secrets`: keys the helper must redact, as the app does."""
    loop = asyncio.get_running_loop()
    proc = subprocess.Popen(host_command(db_path, file_path), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_host_env())
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    outcome: dict[str, Any] = {}
    tail: collections.deque[str] = collections.deque(maxlen=40)

    ended = False

    def on_progress(done: int, total: int) -> None:  # queued by the reader thread
        if progress is not None and not ended:  # not after the caller was told the end
            progress(done, total)

    readers = [
        threading.Thread(target=_read_lines, args=(proc.stdout, outcome, loop, on_progress),
                         name="import-output", daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, tail), name="import-errors",
                         daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        with contextlib.suppress(OSError):  # a helper that died at once: its status says why
            proc.stdin.write(json.dumps({"secrets": list(secrets)}).encode("ascii") + b"\n")
            proc.stdin.flush()
        status = await asyncio.to_thread(proc.wait)
        await asyncio.to_thread(_join, readers)
    except BaseException:  # cancelled, or this loop is closing: the import must not go on
        proc.kill()
        await asyncio.shield(asyncio.to_thread(proc.wait))
        raise
    finally:
        ended = True
        with contextlib.suppress(OSError):
            proc.stdin.close()
    if status != 0 and outcome:
        log.warning("the import helper answered, then exited with status %s:\n%s", status,
                    "\n".join(tail))
    if "result" in outcome:
        return ImportResult(**outcome["result"])
    if "refused" in outcome:
        raise TransferError(outcome["refused"])
    log.error("the import helper ended with status %s and no answer; its last lines:\n%s",
              status, "\n".join(tail))
    raise TransferError(f"The import stopped unexpectedly ({_ended(status, tail)}). The log "
                        "has the details.")


def _ended(status: int, tail: Sequence[str]) -> str:
    if any("MemoryError" in line for line in tail) or status in (-9, 137):
        return "it was killed, most likely because memory ran out"
    if status < 0:
        return f"the helper process was ended by signal {-status}"
    return f"the helper process exited with status {status}"


def _read_lines(stream: IO[bytes], outcome: dict[str, Any], loop: asyncio.AbstractEventLoop,
                progress: Callable[[int, int], None]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for raw in iter(stream.readline, b""):
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if "progress" in message:
                done, total = message["progress"]
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is told
                    loop.call_soon_threadsafe(progress, done, total)
            else:
                outcome.update(message)


def _drain(stream: IO[bytes], tail: collections.deque[str]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for raw in iter(stream.readline, b""):
            tail.append(raw.decode("utf-8", "replace").rstrip())


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(5)


# -- the helper --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """The helper: import FILE into the history DB, answering on stdout (see the module)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: import_process HISTORY_DB FILE", file=sys.stderr)
        return 2
    db_path, file_path = Path(args[0]), Path(args[1])
    _log_to_stderr()
    _read_secrets()
    threading.Thread(target=_exit_when_stdin_closes, name="import-watch", daemon=True).start()
    _say(_outcome(db_path, file_path))
    return 0


def _outcome(db_path: Path, file_path: Path) -> dict[str, Any]:
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done in (0, total) or now - last >= PROGRESS_EVERY_S:
            last = now
            _say({"progress": [done, total]})

    try:
        with Store(db_path) as store:
            result = transfer.import_file(store, file_path, progress)
    except (TransferError, StoreError) as exc:
        return {"refused": str(exc)}
    except MemoryError:
        return {"refused": f"{file_path.name} needs more memory than is available."}
    except Exception as exc:  # a bug of ours: say so in words; the traceback goes to stderr
        log.exception("the import of %s failed", file_path.name)
        return {"refused": f"The import failed unexpectedly ({type(exc).__name__}); the log "
                           "has the details."}
    return {"result": dataclasses.asdict(result)}


_out_lock = threading.Lock()


def _say(message: dict[str, Any]) -> None:
    """One JSON line on stdout (ASCII: any text is escaped), written whole."""
    data = json.dumps(message).encode("ascii") + b"\n"
    with _out_lock:
        os.write(1, data)


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr if sys.stderr is not None else open(  # noqa: SIM115
        os.devnull, "w", encoding="utf-8"))
    handler.setFormatter(logs.RedactingFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def _read_secrets() -> None:
    """The first line of stdin. Read from the file descriptor, not `sys.stdin`: a daemon
    thread blocked in a buffered reader at exit makes Python abort."""
    line = b""
    with contextlib.suppress(OSError):
        while not line.endswith(b"\n") and (chunk := os.read(0, 1)):
            line += chunk
    try:
        secrets = json.loads(line).get("secrets", []) if line.strip() else []
    except (ValueError, AttributeError):
        secrets = []
    for secret in secrets if isinstance(secrets, list) else []:
        if isinstance(secret, str):
            logs.add_secret(secret)


def _exit_when_stdin_closes() -> None:
    """The app closed our stdin (it quit, or cancelled the import): stop now, without
    committing anything."""
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    os._exit(_GONE)


if __name__ == "__main__":
    sys.exit(main())
