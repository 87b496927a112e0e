"""The command line, the self-test and the crash handler."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from desktop_chat import __version__
from desktop_chat.app import _close_abandoned
from desktop_chat.core import logs
from desktop_chat.ui.crash import install_excepthook
from tests.conftest import TEST_KEY
from tests.ui.conftest import ChatDriver


def run_app(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desktop_chat", *args], capture_output=True, text=True,
        timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})},
    )


def test_version() -> None:
    result = run_app("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"desktop-chat {__version__}"


def test_help_lists_the_contract_flags() -> None:
    result = run_app("--help")
    assert result.returncode == 0
    for flag in ("--data-dir", "--base-url", "--model", "--self-test", "--version",
                 "--mcp-config"):
        assert flag in result.stdout


def test_the_launcher_imports_the_app_without_pysides_source_scan() -> None:
    """`launch.main` (the command, `-m desktop_chat`, the frozen app) takes PySide6's import
    hook out before importing the app, keeps the collector off only meanwhile, and leaves
    pydantic to the SDK's helper thread."""
    script = (
        "import gc, sys\n"
        "from desktop_chat import launch\n"
        "try:\n"
        "    launch.main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "from PySide6.support import feature\n"
        "from desktop_chat.ui import import_hook\n"
        "print(import_hook.is_active(), 'desktop_chat.app' in sys.modules,\n"
        "      'desktop_chat.app' in feature.pyside_feature_dict, 'pydantic' in sys.modules,\n"
        "      gc.isenabled())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("desktop-chat ")  # the app ran
    assert lines[1] == "False True False False True"


def test_self_test_passes(tmp_path: Path) -> None:
    result = run_app("--self-test", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    for check in ("sqlite", "tls", "resources", "markdown", "documents", "keychain", "mcp",
                  "window", "document extras", "math"):
        assert f"PASS {check}:" in result.stdout
    assert "self-test: all checks OK (10 checks)" in result.stdout


def test_unhandled_exception_is_logged_redacted_and_shown(
    chat: ChatDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_file = tmp_path / "data" / "logs" / logs.LOG_FILE
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook(chat.window, log_file)
    try:
        raise RuntimeError(f"boom with key {TEST_KEY}")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    dialog = chat.window.findChild(QMessageBox, "errorDialog")
    assert dialog is not None and dialog.isVisible()
    # reaching this line at all shows the dialog was opened with open(), not a blocking exec()
    assert str(log_file) in dialog.informativeText()
    assert TEST_KEY not in dialog.informativeText()
    dialog.close()
    text = log_file.read_text(encoding="utf-8")
    assert "RuntimeError: boom with key" in text
    assert TEST_KEY not in text


def test_key_never_reaches_the_log(
    make_window: Callable[..., ChatDriver], server, tmp_path: Path
) -> None:
    from tests.support.openai_server import Scenario

    chat = make_window()
    server.push(Scenario(status=401, error_body={"error": {
        "message": f"Incorrect API key provided: {TEST_KEY}"}}))
    chat.send("hello")
    chat.wait_for_reply()
    assert server.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"
    log_text = (tmp_path / "data" / "logs" / logs.LOG_FILE).read_text(encoding="utf-8")
    assert "HTTP 401" in log_text
    assert TEST_KEY not in log_text
    assert TEST_KEY not in chat.window.errorBanner.text()


EXIT_AFTER_COPY = r"""
import os, sys, tempfile
from PySide6.QtWidgets import QApplication
from desktop_chat.app import create_event_loop, create_main_window, release_clipboard
from desktop_chat.core.model.message import Message, Role
app = QApplication([])
loop = create_event_loop(app)
window = create_main_window(["--data-dir", tempfile.mkdtemp(), "--base-url",
                             "http://127.0.0.1:9/v1"])
window.controller.session.conversation.messages.append(Message.of(Role.ASSISTANT, "copied"))
assert window.copy_last_reply()
window.close()
loop.run_until_complete(window.controller.aclose())
loop.close()
release_clipboard(app)
"""


def test_exit_after_copy_does_not_crash(tmp_path: Path) -> None:
    """Offscreen, Qt deletes clipboard data after Python has shut down; the app releases it."""
    result = subprocess.run(
        [sys.executable, "-c", EXIT_AFTER_COPY], capture_output=True, text=True, timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_smoke_prompt_streams_one_reply_through_the_window(server, tmp_path: Path) -> None:
    from tests.support.openai_server import Scenario

    server.push(Scenario(deltas=["Smoke ", "reply ", "ünïcode"], pace=0.01))
    result = run_app("--data-dir", str(tmp_path), "--base-url", server.base_url,
                     "--smoke-prompt", "ping", env={"OPENAI_API_KEY": "sk-smoke-test-key"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("Smoke reply ünïcode")
    assert server.requests[-1].body["messages"][-1]["content"] == "ping"


def test_smoke_prompt_fails_visibly(server, tmp_path: Path) -> None:
    from tests.support.openai_server import Scenario

    server.push(Scenario(status=401))
    result = run_app("--data-dir", str(tmp_path), "--base-url", server.base_url,
                     "--smoke-prompt", "ping", env={"OPENAI_API_KEY": "sk-smoke-test-key"})
    assert result.returncode == 1
    assert "FAILED: The server rejected the API key" in result.stdout


class _Loop:
    def __init__(self, running: bool) -> None:
        self.running = running

    def is_running(self) -> bool:
        return self.running


def _cleanup_fails() -> object:
    async def agen():  # an SDK generator whose cleanup needs the running loop
        try:
            yield 1
        finally:
            raise RuntimeError("unknown async library, or not in async context")

    return agen()


@pytest.mark.parametrize("running", [False, True])
def test_an_abandoned_generator_closed_between_loop_steps_is_not_an_error(
        running: bool) -> None:
    """A test drives the qasync loop in steps; a generator finalized between two steps
    cannot be cleaned up then, which is logged quietly. With the loop running, a failure
    is a real error and still raised."""
    async def go() -> None:
        gen = _cleanup_fails()
        await gen.__anext__()
        await _close_abandoned(gen, _Loop(running))  # type: ignore[arg-type]

    loop = asyncio.new_event_loop()  # not asyncio.run: it would unset the tests' qasync loop
    try:
        if running:
            with pytest.raises(RuntimeError):
                loop.run_until_complete(go())
        else:
            loop.run_until_complete(go())
    finally:
        loop.close()
