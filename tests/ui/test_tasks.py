"""`Tasks`, the one helper for background work: a failure is logged with its traceback and
reported (to `on_error`, else through `failed`), never lost; cancelling is not a failure;
`idle` waits for work started meanwhile too; `aclose` cancels and waits."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
import qasync
import shiboken6
from PySide6.QtCore import QObject

from desktop_chat.ui.tasks import Tasks


async def boom(after_s: float = 0.0) -> None:
    await asyncio.sleep(after_s)
    raise KeyError("the model list had no 'data'")


def test_a_failure_is_logged_with_its_traceback_and_reported(
    qloop: qasync.QEventLoop, caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = Tasks(loop=qloop)
    reported: list[str] = []
    tasks.failed.connect(reported.append)
    tasks.start(boom(), what="Loading the model list")
    qloop.run_until_complete(tasks.idle())  # reported before idle returns
    assert reported == ["Loading the model list failed unexpectedly (KeyError). The log has "
                        "the details."]
    [record] = [r for r in caplog.records if r.name == "desktop_chat.tasks"]
    assert record.levelno == logging.ERROR and "Loading the model list failed" in record.message
    assert record.exc_info is not None and record.exc_info[0] is KeyError  # the traceback
    assert not tasks.busy


def test_on_error_takes_the_exception_instead_of_the_signal(qloop: qasync.QEventLoop) -> None:
    tasks = Tasks(loop=qloop)
    signalled: list[str] = []
    handled: list[BaseException] = []
    tasks.failed.connect(signalled.append)
    tasks.start(boom(), on_error=handled.append)
    qloop.run_until_complete(tasks.idle())
    assert [type(e) for e in handled] == [KeyError] and signalled == []


def test_a_broken_error_handler_does_not_hide_the_failure(qloop: qasync.QEventLoop) -> None:
    tasks = Tasks(loop=qloop)
    signalled: list[str] = []
    tasks.failed.connect(signalled.append)

    def broken(_exc: Exception) -> None:
        raise RuntimeError("the label is gone")

    tasks.start(boom(), what="The check", on_error=broken)
    qloop.run_until_complete(tasks.idle())
    assert signalled == ["The check failed unexpectedly (KeyError). The log has the details."]


def test_a_result_is_the_tasks_and_success_reports_nothing(qloop: qasync.QEventLoop) -> None:
    tasks = Tasks(loop=qloop)
    signalled: list[str] = []
    tasks.failed.connect(signalled.append)

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    task = tasks.start(answer())
    assert tasks.busy
    assert qloop.run_until_complete(task) == 42
    qloop.run_until_complete(tasks.idle())
    assert not tasks.busy and signalled == []


def test_cancel_all_is_not_a_failure_and_aclose_waits(qloop: qasync.QEventLoop) -> None:
    tasks = Tasks(loop=qloop)
    signalled: list[str] = []
    tasks.failed.connect(signalled.append)
    cleaned: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append(name)

    first, second = tasks.start(forever("a")), tasks.start(forever("b"))
    qloop.run_until_complete(asyncio.sleep(0))  # both started
    qloop.run_until_complete(tasks.aclose())
    assert first.cancelled() and second.cancelled()
    assert sorted(cleaned) == ["a", "b"] and signalled == [] and not tasks.busy


def test_idle_waits_for_work_started_meanwhile_and_does_not_cancel(
    qloop: qasync.QEventLoop,
) -> None:
    tasks = Tasks(loop=qloop)
    done: list[str] = []

    async def second() -> None:
        await asyncio.sleep(0.02)
        done.append("second")

    async def first() -> None:
        await asyncio.sleep(0.01)
        tasks.start(second())  # e.g. the model list after an engine start
        done.append("first")

    tasks.start(first())

    async def impatient() -> None:  # a waiter that gives up does not cancel the work
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(tasks.idle(), 0.001)

    qloop.run_until_complete(impatient())
    qloop.run_until_complete(tasks.idle())
    assert done == ["first", "second"] and not tasks.busy


def test_no_task_is_dropped_before_it_ends(qloop: qasync.QEventLoop) -> None:
    """asyncio keeps only weak references to tasks: `Tasks` holds them until they end."""
    tasks = Tasks(loop=qloop)
    done: list[int] = []

    async def work(n: int) -> None:
        await asyncio.sleep(0.01)
        done.append(n)

    for n in range(5):
        tasks.start(work(n))
    gc.collect()
    qloop.run_until_complete(tasks.idle())
    assert sorted(done) == [0, 1, 2, 3, 4]


def test_a_failure_after_the_owner_is_gone_is_only_logged(
    qloop: qasync.QEventLoop, caplog: pytest.LogCaptureFixture,
) -> None:
    """E.g. the window closed while a check ran: nothing touches the deleted objects."""
    owner = QObject()
    tasks = Tasks(owner, loop=qloop)
    tasks.start(boom(0.01), what="The check")
    shiboken6.delete(owner)  # and its child, the Tasks
    qloop.run_until_complete(tasks.idle())
    assert any("The check failed" in r.message for r in caplog.records)
    assert not [r for r in caplog.records if "Exception in callback" in r.message]
