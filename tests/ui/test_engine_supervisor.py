"""`EngineSupervisor` over a stand-in engine (the real one: tests/integration): progress, then
`ready` with where it answers; a start that fails says why (only the newest start reports);
an engine that dies while in use is reported; `stop` cancels a start; the demo model is
flagged while it is the one in use."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync

from desktop_chat.core.engine import offline as engines
from desktop_chat.ui import engine_supervisor
from desktop_chat.ui.engine_supervisor import ENGINE_DIED, EngineSupervisor
from desktop_chat.ui.tasks import Tasks
from tests.ui.conftest import run_for, wait_until

BASE_URL = "http://127.0.0.1:5999/v1"


class StandInEngine:
    """What the supervisor uses of `LocalEngine`, without a process."""

    def __init__(self) -> None:
        self.base_url: str | None = None
        self.model_id = ""
        self.model_path: Path | None = None
        self.context_size = 0
        self.pid: int | None = None
        self.alive = False
        self.starts: list[Path] = []
        self.failures: dict[str, Exception] = {}  # by file name
        self.load_s = 0.01

    @property
    def running(self) -> bool:
        return self.alive

    async def start(self, path: Path, on_progress: Any) -> str:
        self.starts.append(path)
        on_progress(f"Loading {path.name}…")
        await asyncio.sleep(self.load_s)
        if path.name in self.failures:
            raise self.failures[path.name]
        self.alive, self.pid, self.base_url = True, 4242, BASE_URL
        self.model_id, self.model_path, self.context_size = path.stem, path, 2048
        return BASE_URL

    async def stop(self) -> None:
        self.alive, self.pid, self.base_url = False, None, None

    def kill(self) -> None:
        self.pid = None


class Record:
    def __init__(self, supervisor: EngineSupervisor) -> None:
        self.events: list[tuple[str, Any]] = []
        for name in ("progress", "ready", "failed", "died", "demo_changed"):
            getattr(supervisor, name).connect(
                lambda *args, name=name: self.events.append((name, args)))

    def of(self, kind: str) -> list[Any]:
        return [args for name, args in self.events if name == kind]


@pytest.fixture
def setup(qloop: qasync.QEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[tuple[EngineSupervisor, StandInEngine, Record, Tasks]]:
    monkeypatch.setattr(engine_supervisor, "WATCH_MS", 10)
    tasks = Tasks(loop=qloop)
    engine = StandInEngine()
    supervisor = EngineSupervisor(tasks, tmp_path, engine)  # type: ignore[arg-type]
    record = Record(supervisor)
    yield supervisor, engine, record, tasks
    qloop.run_until_complete(tasks.aclose())
    qloop.run_until_complete(supervisor.aclose())


def test_start_reports_progress_then_ready(setup, qloop: qasync.QEventLoop,
                                           tmp_path: Path) -> None:
    supervisor, engine, record, tasks = setup
    supervisor.start(str(tmp_path / "qwen.gguf"))
    qloop.run_until_complete(tasks.idle())
    assert record.of("ready") == [(BASE_URL, "qwen", 2048)]
    assert record.of("progress") == [("Loading qwen.gguf…",), ("",)]
    assert record.of("failed") == [] and not supervisor.demo_in_use
    supervisor.start(str(tmp_path / "qwen.gguf"))  # the same file again: no restart
    qloop.run_until_complete(tasks.idle())
    assert len(engine.starts) == 1 and len(record.of("ready")) == 2


def test_a_failed_start_says_why_and_unflags_the_demo(setup, qloop: qasync.QEventLoop,
                                                      tmp_path: Path) -> None:
    supervisor, engine, record, tasks = setup
    engine.failures[engines.DEMO_FILE] = engines.EngineError(
        "gemma-3-270m-q4_k_m.gguf could not be loaded")
    supervisor.start(str(tmp_path / engines.DEMO_FILE))
    qloop.run_until_complete(tasks.idle())
    assert record.of("failed") == [("gemma-3-270m-q4_k_m.gguf could not be loaded",)]
    assert record.of("demo_changed") == [(True,), (False,)]
    assert record.of("progress")[-1] == ("",) and record.of("ready") == []


def test_an_unexpected_error_is_a_failed_start_too(setup, qloop: qasync.QEventLoop,
                                                   tmp_path: Path) -> None:
    supervisor, engine, record, tasks = setup
    engine.failures["m.gguf"] = KeyError("n_ctx")
    supervisor.start(str(tmp_path / "m.gguf"))
    qloop.run_until_complete(tasks.idle())
    assert record.of("failed") == [("The offline engine could not start (KeyError). The log "
                                    "has the details.",)]
    assert record.of("progress")[-1] == ("",)


def test_only_the_newest_start_reports_a_failure(setup, qloop: qasync.QEventLoop,
                                                 tmp_path: Path) -> None:
    supervisor, engine, record, tasks = setup
    engine.failures["old.gguf"] = engines.EngineError("old.gguf is not a GGUF model file")
    supervisor.start(str(tmp_path / "old.gguf"))
    supervisor.start(str(tmp_path / "new.gguf"))  # before the first one has failed
    qloop.run_until_complete(tasks.idle())
    assert record.of("failed") == []
    assert record.of("ready") == [(BASE_URL, "new", 2048)]


def test_an_engine_that_dies_is_reported(setup, qloop: qasync.QEventLoop,
                                         tmp_path: Path) -> None:
    supervisor, engine, record, tasks = setup
    supervisor.start(str(tmp_path / engines.DEMO_FILE))
    qloop.run_until_complete(tasks.idle())
    assert supervisor.demo_in_use
    engine.alive = False  # the out-of-memory killer; the pid is still ours
    wait_until(qloop, lambda: bool(record.of("died")), 5.0)
    assert record.of("died") == [(ENGINE_DIED,)]
    assert engine.pid is None and not supervisor.demo_in_use
    run_for(qloop, 0.05)
    assert len(record.of("died")) == 1  # said once


def test_stop_cancels_a_start_and_stops_the_engine(setup, qloop: qasync.QEventLoop,
                                                   tmp_path: Path) -> None:
    supervisor, engine, record, tasks = setup
    supervisor.start(str(tmp_path / "a.gguf"))
    qloop.run_until_complete(tasks.idle())
    assert engine.running
    engine.load_s = 1.0
    supervisor.start(str(tmp_path / "b.gguf"))
    run_for(qloop, 0.01)
    supervisor.stop()
    qloop.run_until_complete(tasks.idle())
    assert not engine.running
    assert record.of("ready") == [(BASE_URL, "a", 2048)] and record.of("failed") == []
