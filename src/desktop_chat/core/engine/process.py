"""Watching the engine process: its output, what a failure means, whether it answers yet.

The host (desktop_chat.engine_host) prints status lines `engine-host: {json}` between
llama.cpp's own log lines. All output is drained on a thread, because a child blocked on a full
pipe would hang mid-reply; the last lines are kept to explain a failure in the user's words.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("desktop_chat.engine")

STATUS_PREFIX = "engine-host: "
_MEMORY = re.compile(r"failed to allocate|unable to allocate|cannot allocate memory|bad_alloc|"
                     r"MemoryError|out of memory|failed to create context", re.IGNORECASE)
_LOAD_ERROR = re.compile(r"error loading model:\s*(.+)")
_ARCH = re.compile(r"unknown model architecture:\s*'?([^']+)'?")
_KILLED = (-9, 137)  # SIGKILL: on Linux, the kernel's out-of-memory killer


class EngineError(Exception):
    """The offline engine could not do what was asked; `message` is the text for the user."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __repr__(self) -> str:
        return f"EngineError({self.message!r}, detail={self.detail!r})"


class EngineOutput:
    """Drains the child's merged stdout/stderr on a daemon thread."""

    def __init__(self, stream: IO[bytes], keep_lines: int = 200) -> None:
        self._tail: collections.deque[str] = collections.deque(maxlen=keep_lines)
        self._status: collections.deque[dict[str, Any]] = collections.deque()
        self._closed = threading.Event()
        threading.Thread(target=self._drain, args=(stream,), name="engine-output",
                         daemon=True).start()

    def _drain(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                self._tail.append(line)
                if line.startswith(STATUS_PREFIX):
                    log.info("%s", line)
                    with contextlib.suppress(ValueError):
                        self._status.append(json.loads(line[len(STATUS_PREFIX):]))
        except (OSError, ValueError):  # the pipe was closed under us: the process is gone
            pass
        finally:
            self._closed.set()

    def progress(self) -> list[tuple[str, dict[str, Any]]]:
        """Status lines that arrived since the last call, as (text for the user, data)."""
        found = []
        while self._status:
            status = self._status.popleft()
            text = progress_text(status)
            if text:
                found.append((text, status))
        return found

    def tail(self) -> list[str]:
        return list(self._tail)

    async def wait_closed(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self._closed.is_set() and loop.time() < deadline:
            await asyncio.sleep(0.02)


def progress_text(status: dict[str, Any]) -> str:
    event, model = status.get("event"), status.get("model", "the model")
    if event == "loading":
        return f"Loading {model}…"
    if event == "progress":
        return f"Loading {model}… {int(status.get('percent', 0))}%"
    if event == "loaded":
        return f"{model} is loaded; starting the local server…"
    return ""


def failure_from_output(lines: list[str], returncode: int | None, model: Path) -> EngineError:
    """Why the engine exited during start-up, in words the user can act on."""
    text = "\n".join(lines)
    detail = "\n".join(lines[-30:])
    reason = ""
    for line in lines:
        if match := _LOAD_ERROR.search(line):
            reason = match.group(1).strip()
    if _MEMORY.search(text) or returncode in _KILLED:
        return EngineError(
            f"There is not enough memory to run {model.name}. Close other programs, or pick "
            "a smaller model (fewer parameters, or a stronger quantization such as Q4_K_M).",
            detail=detail)
    if arch := _ARCH.search(reason):
        return EngineError(
            f"The built-in engine does not know the model type '{arch.group(1)}' of "
            f"{model.name}. Update the engine (pip install -U llama-cpp-python) or pick "
            "another model.", detail=detail)
    if reason or "failed to load model" in text.lower():
        return EngineError(
            f"The model file {model.name} could not be loaded: it looks damaged or incomplete"
            f"{f' ({reason})' if reason else ''}. Download it again, or pick another GGUF file.",
            detail=detail)
    if "address already in use" in text.lower():
        return EngineError("The offline engine could not get a network port on this computer. "
                           "Try again.", detail=detail)
    last = next((line for line in reversed(lines) if line.strip()
                 and not line.startswith((" ", "\t", STATUS_PREFIX))), "no output")
    return EngineError(f"The offline engine stopped while starting (exit code {returncode}): "
                       f"{last}. The log file has the details.", detail=detail)


async def exited(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait without blocking the loop (Popen has no awaitable wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while process.poll() is None:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def answers_models(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """GET /v1/models answers 200. Raw asyncio sockets: no HTTP library, nothing blocks."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET /v1/models HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Connection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout_s)
        return status_line.split()[1:2] == [b"200"]
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), timeout_s)
