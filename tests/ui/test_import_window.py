"""Importing through the window (issue #20): every import ends with "Imported N…" or "Nothing
was imported: <why>" in the window, whatever the file holds, and the window stays responsive
meanwhile (the file is parsed and written in a helper process; a huge title is shortened in
the list, kept whole in the history)."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer

from desktop_chat.core.history import import_process, transfer
from desktop_chat.core.history.records import TITLE_SHOWN_CHARS
from desktop_chat.core.history.store import HISTORY_FILE, Store
from tests.conftest import DATA
from tests.ui.conftest import ChatDriver, wait_until
from tests.ui.test_history import sidebar_titles

DONE = "Imported "
REFUSED = "Nothing was imported: "


def rust() -> dict[str, Any]:
    """The first conversation of the small ChatGPT export fixture ("Rust lifetimes")."""
    return copy.deepcopy(json.loads((DATA / "chatgpt_export_small.json").read_text("utf-8"))[0])


def with_role_list() -> str:
    conversation = rust()
    conversation["mapping"]["u1"]["message"]["author"]["role"] = ["user", "assistant"]
    return json.dumps([conversation])


def with_content_type_list() -> str:
    conversation = rust()
    conversation["mapping"]["a1"]["message"]["content"]["content_type"] = ["text"]
    return json.dumps([conversation])


def with_time(raw: str) -> str:
    conversation = rust()
    conversation["create_time"] = "@TIME@"
    return json.dumps([conversation]).replace('"@TIME@"', raw)


def with_usage(count: int) -> str:
    return json.dumps({"format": transfer.FORMAT, "version": 1, "conversations": [
        {"uid": "u1", "title": "Counted", "messages": [
            {"id": 1, "role": "user", "content": "hi"},
            {"id": 2, "parent": 1, "role": "assistant", "content": "hello",
             "usage": {"prompt_tokens": 1, "completion_tokens": count}}]}]})


HOSTILE = {
    "nested 100,000 deep": ("[" * 100_000 + "]" * 100_000,
                            "hostile.json is nested too deeply to be read"),
    "list-valued role": (with_role_list(), "Conversation 1 ('Rust lifetimes'), message 'u1': "
                                           "its author role (a list) is not text."),
    "list-valued content_type": (with_content_type_list(),
                                 "message 'a1': its content_type (a list) is not text."),
    "infinite time": (with_time("1e400"), "Conversation 1 ('Rust lifetimes'): its create_time "
                                          "(inf) is not a time between the years 1970 and 9999."),
    "time beyond any float": (with_time("9" * 400), "its create_time (a number of 400 "
                                                    "digits) is not a time"),
    "usage beyond 64 bits": (with_usage(2**64), "Conversation 1 ('Counted'), message 2: its "
                                                "usage completion_tokens (18446744073709551616)"
                                                " is not a token count"),
    "a number of 5,000 digits": ("[" + "1" * 5000 + "]", "hostile.json holds a number with "
                                                         "thousands of digits"),
}


def import_and_wait(chat: ChatDriver, path: Path, timeout: float = 30.0) -> str:
    """Import `path` through the File menu; the outcome the window shows once it ended."""
    window = chat.window
    window.fileMenu.import_from(path)
    assert window.fileMenu.progress.isVisible()

    def ended() -> bool:
        return window.statusBar().currentMessage().startswith((DONE, REFUSED))

    wait_until(chat.loop, ended, timeout)
    assert not window.fileMenu.progress.isVisible()
    assert not window.transfers.importing
    return window.statusBar().currentMessage()


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_file_is_refused_in_words(chat: ChatDriver, tmp_path: Path,
                                            case: str) -> None:
    content, why = HOSTILE[case]
    path = tmp_path / "hostile.json"
    path.write_text(content, encoding="utf-8")
    outcome = import_and_wait(chat, path)
    assert outcome.startswith(REFUSED) and why in outcome, outcome
    assert chat.window.errorBanner.isVisible() and why in chat.window.errorBanner.text()
    assert sidebar_titles(chat) == []


def test_a_lone_surrogate_is_imported_as_a_replacement_character(chat: ChatDriver,
                                                                 tmp_path: Path) -> None:
    conversation = rust()
    conversation["title"] = "Half an emoji \ud83d"
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([conversation]), encoding="utf-8")
    assert import_and_wait(chat, path) == "Imported 1 conversation(s) with 7 message(s)."
    wait_until(chat.loop, lambda: sidebar_titles(chat) == ["Half an emoji \ufffd"])


def test_the_file_is_read_in_a_helper_process(chat: ChatDriver, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing 200 MB of JSON holds the GIL for seconds: in a thread of the app, it would
    freeze the window (benchmarks/imports.py measures it)."""
    def not_here(*args: object, **kwargs: object) -> object:
        raise AssertionError("the import ran in the app's own process")

    monkeypatch.setattr(transfer, "import_file", not_here)
    outcome = import_and_wait(chat, DATA / "chatgpt_export_small.json")
    assert outcome == "Imported 2 conversation(s) with 9 message(s)."


def test_a_helper_that_dies_without_answering_is_an_answer(chat: ChatDriver, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         ) -> None:
    monkeypatch.setattr(import_process, "host_command", lambda db, file: [
        sys.executable, "-c", "import os; os._exit(9)"])
    outcome = import_and_wait(chat, DATA / "chatgpt_export_small.json")
    assert outcome == (f"{REFUSED}The import stopped unexpectedly (the helper process exited "
                       "with status 9). The log has the details.")


def test_a_failure_of_the_app_itself_is_an_answer(chat: ChatDriver,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(import_process, "import_in_process", broken)
    outcome = import_and_wait(chat, DATA / "chatgpt_export_small.json")
    assert outcome == (f"{REFUSED}the import failed unexpectedly (RuntimeError). The log has "
                       "the details.")


def test_closing_the_window_mid_import_imports_nothing(
        make_window: Any, tmp_path: Path) -> None:
    from desktop_chat.app import close_window_services

    chat = make_window()
    path = tmp_path / "many.json"
    conversation = rust()
    many = []
    for i in range(3000):
        copy_i = copy.deepcopy(conversation)
        copy_i["conversation_id"] = f"c{i}"
        many.append(copy_i)
    path.write_text(json.dumps(many), encoding="utf-8")
    chat.window.fileMenu.import_from(path)
    progress = chat.window.fileMenu.progress
    wait_until(chat.loop, lambda: progress.maximum() == 3000 and progress.value() > 0)
    chat.loop.run_until_complete(close_window_services(chat.window))
    assert not chat.window.transfers.importing
    with Store(tmp_path / "data" / HISTORY_FILE) as store:
        assert store.list_conversations() == []


class GapMeter:
    """A 5 ms precise timer: the longest delay between its ticks is the longest time the
    window could not react."""

    def __init__(self) -> None:
        self._timer = QTimer(interval=5, timerType=Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.ticks = [time.perf_counter()]
        self._timer.start()

    def stop(self) -> float:
        self._timer.stop()
        self.ticks.append(time.perf_counter())
        return max((b - a) * 1000 for a, b in itertools.pairwise(self.ticks))


def test_a_10_mb_title_neither_freezes_the_window_nor_is_cut_in_the_history(
        chat: ChatDriver, tmp_path: Path) -> None:
    title = "A very long title " * 600_000
    conversation = rust()
    conversation["title"] = title
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([conversation]), encoding="utf-8")
    meter = GapMeter()
    assert import_and_wait(chat, path).startswith("Imported 1 conversation(s)")
    wait_until(chat.loop, lambda: len(sidebar_titles(chat)) == 1)
    chat.loop.run_until_complete(asyncio.sleep(0.2))  # late layout and paint work counts too
    assert meter.stop() < 250  # measured: ~10 ms; before the helper process, 13.7 s
    [shown] = sidebar_titles(chat)
    assert len(shown) == TITLE_SHOWN_CHARS and shown.endswith("…")
    assert title.startswith(shown[:-1])
    with Store(tmp_path / "data" / HISTORY_FILE) as store:
        stored = store.conversation(store.list_conversations()[0].id)
        assert stored is not None and stored.title == title


def test_a_frozen_app_runs_the_helper_through_its_own_main(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PyInstaller build has no `python -m`: the helper is the app's executable with
    --import-host, which app.main hands to the helper before any Qt is set up."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    db = tmp_path / HISTORY_FILE
    Store(db).close()
    command = import_process.host_command(db, DATA / "chatgpt_export_small.json")
    assert command[:2] == [sys.executable, "--import-host"]
    as_frozen = [sys.executable, "-c", "import sys; from desktop_chat.app import main; "
                 "sys.exit(main(sys.argv[1:]))", *command[1:]]
    monkeypatch.delattr(sys, "frozen")
    proc = subprocess.Popen(as_frozen, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=import_process._host_env())
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b'{"secrets": []}\n')
    proc.stdin.flush()
    answers = [json.loads(line) for line in proc.stdout]  # until the helper exits
    proc.stdin.close()
    assert proc.wait(30) == 0
    assert answers[-1] == {"result": {"conversations": 2, "messages": 9, "skipped_messages": 5,
                                      "already_present": 0, "empty_conversations": 1}}
