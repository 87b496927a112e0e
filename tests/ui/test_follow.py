"""The transcript's scroll bar while a reply grows: it follows the newest line, and it is
repainted only when its picture changes (painting it cost more than the text)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import qasync
from PySide6.QtCore import QEvent, QObject

from desktop_chat.core.render.markdown import Theme
from desktop_chat.ui.follow import QuietScrollBar
from desktop_chat.ui.transcript import Transcript
from tests.ui.conftest import run_for


@pytest.fixture
def view(qloop: qasync.QEventLoop) -> Iterator[Transcript]:
    transcript = Transcript(Theme())
    transcript.resize(600, 400)
    transcript.show()
    run_for(qloop, 0.05)  # exposed and painted once
    yield transcript
    transcript.close()
    transcript.deleteLater()


class PaintCounter(QObject):
    """Counts the paint events a widget receives."""

    def __init__(self, widget: QObject) -> None:
        super().__init__()
        self.paints = 0
        widget.installEventFilter(self)

    def eventFilter(self, _watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


def grow(view: Transcript, qloop: qasync.QEventLoop, paints: int, text: str) -> None:
    for _ in range(paints):
        view.append_reply_text(text)
        run_for(qloop, 0.002)  # the loop delivers the repaints Qt scheduled


def test_a_long_reply_grows_without_repainting_a_scroll_bar_that_does_not_change(
    view: Transcript, qloop: qasync.QEventLoop
) -> None:
    bar = view.verticalScrollBar()
    assert isinstance(bar, QuietScrollBar)
    counter = PaintCounter(bar)
    view.begin_reply("m")
    grow(view, qloop, 1, "A paragraph of the reply.\n\n" * 3000)  # the thumb is at its shortest
    painted, looks = counter.paints, bar.looks()
    grow(view, qloop, 30, "More text arrives.\n\n")
    assert bar.value() == bar.maximum() > 0  # still following
    assert bar.looks() == looks
    assert counter.paints == painted  # 30 range changes, the same picture: no repaint

    bar.setValue(0)  # the user scrolls to the top: the thumb moves and is drawn there
    run_for(qloop, 0.02)
    assert counter.paints > painted
    assert bar.looks() != looks


def test_a_thumb_that_shrinks_as_the_reply_grows_is_repainted(
    view: Transcript, qloop: qasync.QEventLoop
) -> None:
    bar = view.verticalScrollBar()
    counter = PaintCounter(bar)
    view.begin_reply("m")
    grow(view, qloop, 1, "Line.\n\n" * 40)  # a little over one screen: a long thumb
    painted, looks = counter.paints, bar.looks()
    grow(view, qloop, 5, "Line.\n\n" * 10)
    assert bar.looks() != looks
    assert counter.paints > painted
    assert bar.value() == bar.maximum()
