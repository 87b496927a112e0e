"""LocalEngine with real child processes standing in for the engine host (one that never
answers, one that fails, one that serves /v1/models), and the parent watchdog that keeps an
app killed by SIGKILL from leaving an engine behind. No llama.cpp needed: these always run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from desktop_chat.core.engine.offline import EngineError, Launch, LocalEngine
from desktop_chat.core.engine.process import failure_from_output
from tests.integration.engine_support import (
    FAKE_HOST,
    alive,
    gguf_bytes,
    python,
    wait_gone,
    write,
)

ROOT = Path(__file__).resolve().parents[2]


def test_startup_timeout_kills_an_engine_that_never_answers(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    local = LocalEngine(command=python(code, str(pid_file)), startup_timeout_s=1.5)

    async def scenario() -> int:
        with pytest.raises(EngineError, match=r"did not become ready within 1\.5 s"):
            await local.start(write(tmp_path, gguf_bytes()))
        pid = int(pid_file.read_text())
        assert await wait_gone(pid)
        return pid

    asyncio.run(scenario())
    assert not local.running and local.base_url is None


@pytest.mark.parametrize(
    ("output", "code", "expected"),
    [
        ("llama_model_load: error loading model: tensor 'token_embd.weight' data is not within "
         "the file bounds, model is corrupted or incomplete", 1, "damaged or incomplete"),
        ("ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size "
         "8589934592", 1, "not enough memory"),
        ("llama_model_load: error loading model: unknown model architecture: 'grok9'", 1,
         "does not know the model type 'grok9'"),
        ("Traceback (most recent call last):\nImportError: libgomp.so.1: cannot open", 3,
         "exit code 3): ImportError: libgomp.so.1: cannot open"),
    ],
    ids=["damaged", "memory", "architecture", "other"],
)
def test_engine_that_exits_early_is_explained(
    tmp_path: Path, output: str, code: int, expected: str,
) -> None:
    script = f"import sys; print({output!r}, file=sys.stderr); sys.exit({code})"
    local = LocalEngine(command=python(script))
    with pytest.raises(EngineError) as caught:
        asyncio.run(local.start(write(tmp_path, gguf_bytes())))
    assert expected in caught.value.message
    assert output.splitlines()[-1] in caught.value.detail
    assert not local.running


def test_out_of_memory_kill_is_explained() -> None:
    error = failure_from_output(["llama_model_loader: loaded meta data"], -9, Path("big.gguf"))
    assert "not enough memory to run big.gguf" in error.message


def test_start_reports_progress_serves_and_stop_leaves_no_process(tmp_path: Path) -> None:
    progress: list[str] = []

    def command(launch: Launch) -> list[str]:
        assert launch.host == "127.0.0.1" and launch.parent_pid == os.getpid()
        return [sys.executable, "-c", FAKE_HOST, str(launch.port)]

    local = LocalEngine(command=command)

    async def scenario() -> tuple[str, bytes]:
        url = await local.start(write(tmp_path, gguf_bytes(), "tiny.gguf"), progress.append)
        pid = local.pid
        assert pid is not None and local.running
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url + "/models").read())
        await local.stop()
        assert await wait_gone(pid, 5.0)
        return url, body

    url, body = asyncio.run(scenario())
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert json.loads(body)["data"][0]["id"] == "tiny"
    assert (local.model_id, local.context_size, local.chat_format) == ("tiny", 2048, "gemma")
    assert progress[0].startswith("Starting the offline engine for tiny.gguf")
    assert "Loading tiny.gguf… 50%" in progress
    assert progress[-1] == "Offline engine ready (tiny.gguf)."
    assert not local.running and local.base_url is None and local.pid is None


def test_stop_kills_an_engine_that_ignores_terminate(tmp_path: Path) -> None:
    stubborn = FAKE_HOST.replace(
        "import http.server", "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "import http.server")
    local = LocalEngine(command=lambda launch: [sys.executable, "-c", stubborn,
                                                str(launch.port)], stop_timeout_s=0.5)

    async def scenario() -> None:
        await local.start(write(tmp_path, gguf_bytes()))
        pid = local.pid
        assert pid is not None
        await local.stop()
        assert await wait_gone(pid, 5.0)

    asyncio.run(scenario())
    assert not local.running


SLEEPER = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"


async def loading_engine(local: LocalEngine, tmp_path: Path) -> tuple[asyncio.Task[str], int]:
    """Start an engine that never answers; return its start task and pid once it runs."""
    task = asyncio.create_task(local.start(write(tmp_path, gguf_bytes())))
    pid_file = tmp_path / "pid"
    while not pid_file.exists() or not pid_file.read_text():
        await asyncio.sleep(0.02)
    return task, int(pid_file.read_text())


def test_cancelled_start_leaves_no_process(tmp_path: Path) -> None:
    local = LocalEngine(command=python(SLEEPER, str(tmp_path / "pid")))

    async def scenario() -> None:
        task, pid = await loading_engine(local, tmp_path)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await wait_gone(pid)

    asyncio.run(scenario())
    assert not local.running


def test_stop_during_start_ends_the_loading_engine(tmp_path: Path) -> None:
    """The user switches provider or quits while the model is still loading."""
    local = LocalEngine(command=python(SLEEPER, str(tmp_path / "pid")))

    async def scenario() -> None:
        task, pid = await loading_engine(local, tmp_path)
        await local.stop()
        with pytest.raises(EngineError, match="stopped before it was ready"):
            await task
        assert await wait_gone(pid)

    asyncio.run(scenario())
    assert not local.running


# -- no orphans ---------------------------------------------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_watchdog_ends_the_engine_when_the_app_is_killed(tmp_path: Path) -> None:
    """The app (middle) starts a process guarded as engine_host guards itself, then dies by
    SIGKILL: the guarded process must not outlive it."""
    guarded = ("import sys, time; from desktop_chat.engine_host import watch_parent; "
               "watch_parent(int(sys.argv[1])); print('watching', flush=True); time.sleep(60)")
    app = ("import os, subprocess, sys, time; "
           f"child = subprocess.Popen([sys.executable, '-c', {guarded!r}, str(os.getpid())], "
           "stdout=subprocess.PIPE); "
           "assert child.stdout.readline() == b'watching\\n'; "
           "print(child.pid, flush=True); time.sleep(60)")
    middle = subprocess.Popen([sys.executable, "-c", app], stdout=subprocess.PIPE, cwd=ROOT)
    assert middle.stdout is not None
    engine_pid = int(middle.stdout.readline())
    assert alive(engine_pid)
    middle.send_signal(signal.SIGKILL)
    middle.wait(10)
    assert asyncio.run(wait_gone(engine_pid, 10.0))
