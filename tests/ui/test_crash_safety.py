"""Crash safety and one instance per data dir, with the app as a real separate process.

The app runs as `tests.support.app_driver` (what `desktop_chat.app.main` does, plus: send one
prompt). The loopback server runs here, in the test process, so the test knows when each
delta went out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from desktop_chat.core import logs
from desktop_chat.core.history.store import INTERRUPTED_ERROR
from desktop_chat.core.model.message import ReplyState, Role
from tests.conftest import TEST_KEY
from tests.support import openai_server
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, wait_until

ROOT = Path(__file__).resolve().parents[2]
HISTORY = "history.sqlite3"
PROMPT = "Tell me a very long story, slowly."
PACE_S = 0.02
DELTAS = [f"word{i} " for i in range(300)]  # 6 s of reply at this pace
HALF_WAY = 100  # 2 s into the reply; then the kill comes at a chosen time after an autosave
SAVE_PERIOD_S = 1.0  # the guarantee under test: everything received a second before a crash
# Allowance on top of that second for what is not the autosave's period: loopback transit
# (< 1 ms), the consumer's turn on the loop (it yields every 8 ms; a paint holds the loop for
# tens of ms), the autosave timer firing late and the commit itself (ms). 0.2 s covers these
# with room to spare on a loaded machine; a missed save costs a whole second and still fails.
MARGIN_S = 0.2
STARTUP_TIMEOUT_S = 60.0


def app_env() -> dict[str, str]:
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OPENAI_API_KEY": TEST_KEY,
            "PYTHONUNBUFFERED": "1"}


class AppProcess:
    """The driver process; its output goes to files so that waiting never blocks on a pipe."""

    def __init__(self, data_dir: Path, base_url: str, prompt: str, out: Path) -> None:
        self.stdout_path, self.stderr_path = out.with_suffix(".out"), out.with_suffix(".err")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.app_driver", "--data-dir", str(data_dir),
                 "--base-url", base_url, "--prompt", prompt, "--max-seconds", "180"],
                cwd=ROOT, env=app_env(), stdout=out, stderr=err,
            )

    def output(self) -> str:
        return (f"stdout:\n{self.stdout_path.read_text(errors='replace')}\n"
                f"stderr:\n{self.stderr_path.read_text(errors='replace')[-3000:]}")

    def wait_for(self, predicate: Callable[[], bool], what: str,
                 timeout: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None:
                pytest.fail(f"the app exited ({self.proc.returncode}) before {what}\n"
                            + self.output())
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}\n" + self.output())
            time.sleep(0.005)

    def wait_sent(self) -> None:
        self.wait_for(lambda: "SENT" in self.stdout_path.read_text(errors="replace"),
                      "the prompt to be sent")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def app_process(tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    started: list[AppProcess] = []

    def start(data_dir: Path, base_url: str, prompt: str = PROMPT) -> AppProcess:
        started.append(AppProcess(data_dir, base_url, prompt, tmp_path / f"app{len(started)}"))
        return started[-1]

    try:
        yield start
    finally:
        for app in started:
            app.kill()


@pytest.fixture
def send_times(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When each SSE event left the server (time.monotonic(), after its write returned).
    Measured rather than computed from the pace: the pacing waits add up to more than
    index x pace, and under load by a lot."""
    times: list[float] = []
    write = openai_server._Handler._write_chunk

    def timed_write(handler: openai_server._Handler, data: bytes) -> None:
        write(handler, data)
        times.append(time.monotonic())

    monkeypatch.setattr(openai_server._Handler, "_write_chunk", timed_write)
    return times


def saved_reply_length(data_dir: Path) -> int:
    """Length of the newest reply as saved so far, read as another process would."""
    with contextlib.closing(sqlite3.connect(data_dir / HISTORY, timeout=5)) as conn:
        row = conn.execute("SELECT length(content) FROM messages WHERE role = ? "
                           "ORDER BY id DESC LIMIT 1", (Role.ASSISTANT.value,)).fetchone()
    return -1 if row is None else int(row[0])


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_save_s", [
    # just before the next save is due: what is on disk is as old as it gets in a correct app
    pytest.param(0.9, id="before-next-save"),
    # past the moment the next save was due: fails if saves come less often than ~1.2 s
    pytest.param(SAVE_PERIOD_S + MARGIN_S + 0.1, id="after-next-save-due"),
])
def test_sigkill_mid_reply_keeps_what_arrived_a_second_before(
    make_window: Callable[..., ChatDriver], server: LoopbackServer, tmp_path: Path,
    app_process: Callable[..., AppProcess], send_times: list[float], kill_after_save_s: float,
) -> None:
    server.push(Scenario(deltas=DELTAS, pace=PACE_S))
    data_dir = tmp_path / "data"  # the one make_window opens below
    app = app_process(data_dir, server.base_url)
    app.wait_sent()
    app.wait_for(lambda: len(send_times) >= HALF_WAY, "the reply to be well under way")
    # Kill at a known point of the autosave cycle: watch the saved row grow (a save, seen
    # within ~5 ms), then wait.
    before = saved_reply_length(data_dir)
    app.wait_for(lambda: saved_reply_length(data_dir) != before, "an autosave", timeout=5)
    time.sleep(kill_after_save_s)
    killed_at = time.monotonic()
    app.kill()
    assert app.proc.returncode == -signal.SIGKILL
    assert len(server.replies_asked) == 1
    sent = list(send_times)  # events 0..299 are deltas 0..299
    assert len(sent) < len(DELTAS), "the reply ended before the kill"
    must_have = sum(1 for t in sent if t <= killed_at - SAVE_PERIOD_S - MARGIN_S)
    assert must_have >= HALF_WAY // 2  # the check below is not vacuous

    chat = make_window()  # a new start on the same data dir
    window = chat.window
    assert window.conversationList.count() == 1
    # Not saved as the open conversation (the app never closed): open it from the sidebar.
    view = window.conversationList
    wait_until(chat.loop, lambda: view.visualItemRect(view.item(0)).isValid())
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualItemRect(view.item(0)).center())
    wait_until(chat.loop, lambda: INTERRUPTED_ERROR in chat.transcript_text())

    messages = window.controller.session.messages
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT]
    assert messages[0].content == PROMPT
    assert PROMPT in chat.transcript_text()
    reply = messages[-1]
    assert reply.state is ReplyState.INTERRUPTED
    assert reply.error == INTERRUPTED_ERROR
    received = "".join(DELTAS[:must_have])
    assert reply.content.startswith(received), (
        f"lost text: {must_have} deltas were sent more than {SAVE_PERIOD_S + MARGIN_S} s "
        f"before the kill; the saved reply has {reply.content.count(' ')} of the "
        f"{len(sent)} sent")
    # nothing but what was sent, in order (at most what left the server before the kill)
    assert "".join(DELTAS[: len(sent)]).startswith(reply.content)
    assert reply.content.split()[-1] in chat.transcript_text()


@pytest.mark.slow
def test_second_launch_raises_the_first_and_leaves_the_history_intact(
    server: LoopbackServer, tmp_path: Path, app_process: Callable[..., AppProcess],
) -> None:
    deltas = [f"part{i} " for i in range(250)]
    server.push(Scenario(deltas=deltas, pace=PACE_S))  # still streaming during the 2nd launch
    data_dir = tmp_path / "data"
    first = app_process(data_dir, server.base_url)
    first.wait_sent()
    first.wait_for(lambda: bool(server.replies_asked), "the first app's request")

    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "desktop_chat", "--data-dir", str(data_dir),
         "--base-url", server.base_url],
        cwd=ROOT, env=app_env(), capture_output=True, text=True, timeout=30,
    )
    took = time.monotonic() - started
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already running" in second.stdout
    assert took < 15, f"the second launch took {took:.1f} s"
    assert first.proc.poll() is None, "the first instance must keep running"

    log_file = data_dir / "logs" / logs.LOG_FILE
    first.wait_for(
        lambda: "asked this window to come forward" in log_file.read_text(errors="replace"),
        "the first app to log the raise request", timeout=10)

    # the second launch did not touch the first's reply: it completes, whole
    db = data_dir / HISTORY

    def reply_row() -> tuple[str, str] | None:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
            return conn.execute("SELECT state, content FROM messages WHERE role = ? "
                                "ORDER BY id DESC LIMIT 1", (Role.ASSISTANT.value,)).fetchone()

    first.wait_for(lambda: (reply_row() or ("", ""))[0] == ReplyState.COMPLETE.value,
                   "the first app's reply to complete", timeout=30)
    assert reply_row() == (ReplyState.COMPLETE.value, "".join(deltas))
    first.kill()
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM conversations").fetchone() == (1,)
