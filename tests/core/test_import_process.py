"""The import helper process (core/history/import_process.py): it answers with a result or a
refusal, reports progress on the caller's loop, redacts the keys it is given, dies with
nothing imported when cancelled or when the app goes away, and a helper that dies without
answering is an answer too."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from desktop_chat.core.history import import_process
from desktop_chat.core.history.import_process import host_command, import_in_process
from desktop_chat.core.history.imports import TransferError
from desktop_chat.core.history.store import Store
from desktop_chat.core.history.transfer import FORMAT
from tests.conftest import DATA

CHATGPT_FIXTURE = DATA / "chatgpt_export_small.json"


def many(path: Path, count: int = 3000) -> Path:
    """A ChatGPT export big enough to take a while: the fixture's conversation, many times."""
    first = json.loads(CHATGPT_FIXTURE.read_text("utf-8"))[0]
    out = []
    for i in range(count):
        conversation = copy.deepcopy(first)
        conversation["conversation_id"] = f"c{i}"
        out.append(conversation)
    path.write_text(json.dumps(out), encoding="utf-8")
    return path


def test_a_file_is_imported_with_progress_on_the_callers_loop(store: Store) -> None:
    calls: list[tuple[int, int]] = []

    async def run() -> Any:
        loop = asyncio.get_running_loop()

        def progress(done: int, total: int) -> None:
            assert asyncio.get_running_loop() is loop
            calls.append((done, total))

        return await import_in_process(store.path, CHATGPT_FIXTURE, progress)

    result = asyncio.run(run())
    assert (result.conversations, result.messages) == (2, 9)
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    assert len(store.list_conversations()) == 2  # the app's own connection sees it


def test_a_refusal_comes_back_in_the_helpers_words(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    path.write_text('{"hello": "world"}')
    with pytest.raises(TransferError, match="neither a desktop-chat export nor a ChatGPT"):
        asyncio.run(import_in_process(store.path, path))


def test_the_helper_redacts_the_keys_it_is_given(store: Store, tmp_path: Path) -> None:
    key = "Pz4kW8nQ2rT6yU0iO3aS7dF1"
    path = tmp_path / "ours.json"
    path.write_text(json.dumps({"format": FORMAT, "version": 1, "conversations": [
        {"uid": "u", "messages": [
            {"id": 1, "role": "user", "content": "hi"},
            {"id": 2, "parent": 1, "role": "assistant", "content": "half",
             "state": "interrupted", "error": f"Incorrect API key provided: {key}"}]}]}))
    asyncio.run(import_in_process(store.path, path, secrets=[key]))
    [summary] = store.list_conversations()
    assert store.active_path(summary.id)[-1].error == "Incorrect API key provided: [REDACTED]"


def test_cancelling_kills_the_helper_and_imports_nothing(store: Store, tmp_path: Path) -> None:
    path = many(tmp_path / "many.json")

    async def run() -> None:
        started = asyncio.Event()
        task = asyncio.ensure_future(import_in_process(
            store.path, path, lambda done, total: done and started.set()))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert store.list_conversations() == []


def test_the_helper_stops_uncommitted_when_the_app_goes_away(store: Store,
                                                             tmp_path: Path) -> None:
    path = many(tmp_path / "many.json")
    proc = subprocess.Popen(host_command(store.path, path), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=import_process._host_env())
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b'{"secrets": []}\n')
    proc.stdin.flush()
    while json.loads(proc.stdout.readline()).get("progress", [0])[0] == 0:
        pass  # until the helper has written a first conversation
    proc.stdin.close()  # what the app's end does to the pipe
    assert proc.wait(30) == 3
    assert store.list_conversations() == []


def test_a_helper_that_dies_without_answering_is_a_refusal(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_process, "host_command", lambda db, file: [
        sys.executable, "-c", "import sys; print('Traceback: boom', file=sys.stderr); "
        "sys.exit(1)"])
    with pytest.raises(TransferError, match=r"^The import stopped unexpectedly \(the helper "
                                            r"process exited with status 1\)"):
        asyncio.run(import_in_process(store.path, CHATGPT_FIXTURE))
