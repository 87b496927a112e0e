"""Following a growing reply: the view stays at its newest line while it is at the bottom;
scrolling up stops that and shows a "jump to latest" button, which resumes it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from PySide6.QtCore import Qt
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QScrollBar,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QWidget,
)

FOLLOW_SLACK_PX = 24
BUTTON_MARGIN_PX = 12
_GEOMETRY_CHANGES = (QAbstractSlider.SliderChange.SliderRangeChange,
                     QAbstractSlider.SliderChange.SliderValueChange)


class QuietScrollBar(QScrollBar):
    """A vertical scroll bar that repaints only when what it draws changes.

    A growing reply changes the range with every paint, and Qt repaints the bar each time.
    In a long conversation the thumb is at its shortest and at the bottom, so nothing moves;
    painting it anyway cost about 1 ms (Fusion), several times the cost of painting the text.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self._drawn: tuple[object, ...] | None = None
        self.in_batch = False

    def looks(self) -> tuple[object, ...]:
        """Everything a range or value change can alter in the bar's picture."""
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        thumb = self.style().subControlRect(QStyle.ComplexControl.CC_ScrollBar, option,
                                            QStyle.SubControl.SC_ScrollBarSlider, self)
        return (thumb.getRect(), self.value() <= self.minimum(), self.value() >= self.maximum(),
                self.isEnabled())

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Range and value changes that end together (the range grows, then the view
        follows to the new end): one repaint at the end, and only if the picture changed."""
        self.in_batch = True
        try:
            yield
        finally:
            self.in_batch = False
            if self.looks() != self._drawn:
                self.update()

    def sliderChange(self, change: QAbstractSlider.SliderChange) -> None:
        if change in _GEOMETRY_CHANGES and (self.in_batch or self.looks() == self._drawn):
            return  # the base class would only schedule a repaint (of the same picture)
        super().sliderChange(change)

    def paintEvent(self, event: QPaintEvent) -> None:
        self._drawn = self.looks()
        super().paintEvent(event)


class Follow:
    """The follow state of `view`, with its jump button (a child of the viewport)."""

    def __init__(self, view: QAbstractScrollArea, button: QToolButton) -> None:
        self._view = view
        self.button = button
        self.following = True
        self._programmatic = False
        self._bar = bar = QuietScrollBar(view)
        view.setVerticalScrollBar(bar)
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)
        button.hide()
        button.clicked.connect(self.to_bottom)

    def to_bottom(self) -> None:
        self._scroll_to(self._bar.maximum())
        self.following = True
        self.button.hide()

    def hold(self, value: int) -> None:
        """Scroll to `value` (earlier messages the user asked for) and stay there."""
        self.following = False
        self._bar.setValue(value)  # as if the user had scrolled there

    @contextlib.contextmanager
    def growing(self) -> Iterator[None]:
        """One paint's edits: the range changes with each of them (tail out, blocks in, tail
        in), but following the reply needs only one scroll, after the last."""
        with self._bar.batched():  # range changes in a batch do not scroll by themselves
            yield
            if self.following:
                self._scroll_to(self._bar.maximum())

    def place_button(self) -> None:
        size = self.button.sizeHint()
        area = self._view.viewport().rect()
        self.button.move(area.right() - size.width() - BUTTON_MARGIN_PX,
                         area.bottom() - size.height() - BUTTON_MARGIN_PX)

    def _scroll_to(self, value: int) -> None:
        self._programmatic = True
        try:
            self._bar.setValue(value)
        finally:
            self._programmatic = False

    def _on_scrolled(self, value: int) -> None:
        if not self._programmatic:
            self.following = value >= self._bar.maximum() - FOLLOW_SLACK_PX
            self.button.setVisible(not self.following)

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self.following and not self._bar.in_batch:
            self._scroll_to(maximum)
