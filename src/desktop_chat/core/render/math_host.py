"""Formulas are drawn in a helper process, so that drawing never stalls the window.

Why a process and not a thread: ziamath is pure Python. A thread drawing formulas holds the
GIL in 5 ms slices, and the GUI thread, which gives the GIL up for every Qt call, waits a slice
each time it wants it back: measured here, loop gaps of 15-45 ms all the while a thread draws,
and 70-190 ms while it imports ziamath (0.4 s, under the import lock). A helper process has its
own GIL; the thread waiting for its answer sleeps in `readline`.

The helper is this module (`python -m desktop_chat.core.render.math_host`, or the frozen app's
own executable with `MATH_HOST_FLAG`). It reads one JSON request per line on stdin,
`[latex, display, size_px, color]`, and answers each with one line, `[svg, width, height, depth]`
or `null` (cannot be drawn). It ends when stdin closes (the app quit). If it cannot be started
or dies, formulas are drawn in the app's own process instead: slower to stream, never lost.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from desktop_chat.core.helper_flags import MATH_HOST_FLAG
from desktop_chat.core.render.math import DrawnMath, draw

log = logging.getLogger("desktop_chat.math")



def host_command() -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, MATH_HOST_FLAG]
    return [sys.executable, "-m", __name__]


class MathHost:
    """Draws formulas in the helper, started on the first one. Thread-safe; blocking (call
    `draw` from a worker thread)."""

    def __init__(self, command: list[str] | None = None) -> None:
        self._command = command or host_command()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._broken = False

    def draw(self, key: tuple[str, bool, float, str]) -> DrawnMath | None:
        latex, display, size, color = key
        with self._lock:
            if not self._broken:
                try:
                    return self._ask(key)
                except (OSError, ValueError) as exc:
                    self._broken = True
                    log.warning("the formula helper failed (%s); drawing in the app instead",
                                exc)
                    self._stop()
        return draw(latex, display=display, size_px=size, color=color)

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ask(self, key: tuple[str, bool, float, str]) -> DrawnMath | None:
        proc = self._proc if self._proc is not None and self._proc.poll() is None else None
        if proc is None:
            proc = self._proc = subprocess.Popen(
                self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=_host_env())
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(list(key)).encode() + b"\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise OSError(f"the helper ended (status {proc.poll()})")
        answer = json.loads(line)
        if answer is None:
            return None
        svg, width, height, depth = answer
        return DrawnMath(str(svg), float(width), float(height), float(depth))

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the helper ends when its input does
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _host_env() -> dict[str, str]:
    """The app's environment, with this package importable however the app was started."""
    env = dict(os.environ)
    if not getattr(sys, "frozen", False):
        root = str(Path(__file__).resolve().parents[3])  # the directory holding desktop_chat
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    for line in iter(requests.readline, b""):
        answer: Any = None
        try:
            latex, display, size, color = json.loads(line)
            drawn = draw(str(latex), display=bool(display), size_px=float(size), color=str(color))
            if drawn is not None:
                answer = [drawn.svg, drawn.width, drawn.height, drawn.depth]
        except (ValueError, TypeError):
            answer = None  # a malformed request: "cannot be drawn", the app shows the source
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()


def main(_argv: list[str] | None = None) -> int:
    serve(sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
