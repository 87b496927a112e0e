"""Widgets that float over the transcript's document: the row of icon buttons under a message,
the "waiting for the first token" dots, and the sticky header of a code block scrolled past.

They are children of the transcript's viewport, so they scroll with it; the transcript places
them on the rows its document reserves for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from desktop_chat.core.render.theme import Theme
from desktop_chat.ui import icons
from desktop_chat.ui.theme import qcolor

COPIED_MS = 1500
ICON_PX = 16


@dataclass(frozen=True, slots=True)
class Spec:
    """One button: the chrome link it triggers, its icon, its tooltip (and accessible name);
    `text` shows a word beside the icon (the error card's Retry / Continue)."""

    href: str
    icon: str
    tip: str
    text: str = ""
    object_name: str = ""


@dataclass(frozen=True, slots=True)
class Branch:
    """‹ n / m ›: the message's alternatives; `previous`/`next` are chrome links."""

    previous: str
    next: str
    here: int
    count: int


class ActionBar(QWidget):
    """Icon buttons under a message. The branch switcher's label has a fixed width, so its
    buttons do not move between "2 / 3" and "10 / 12"."""

    triggered = Signal(str)  # the chrome link of the button pressed

    def __init__(self, parent: QWidget, theme: Theme, name: str) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.theme = theme
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self.row: object = None  # whose actions these are (the transcript's row)
        self.hide()

    def configure(self, specs: list[Spec], branch: Branch | None = None, *,
                  right: bool = False) -> None:
        while (item := self._layout.takeAt(0)) is not None:
            if (widget := item.widget()) is not None:
                widget.deleteLater()
        if right:
            self._layout.addStretch(1)
        for spec in specs:
            self._layout.addWidget(self._button(spec))
        if branch is not None:
            self._layout.addWidget(self._button(Spec(branch.previous, "previous",
                                                     "Previous version")))
            label = QLabel(f"{branch.here} / {branch.count}", objectName="branchLabel")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setFixedWidth(label.fontMetrics().horizontalAdvance("88 / 88") + 4)
            label.setStyleSheet(f"color: {self.theme.colors.muted};")
            label.setAccessibleName(f"Version {branch.here} of {branch.count}")
            self._layout.addWidget(label)
            self._layout.addWidget(self._button(Spec(branch.next, "next", "Next version")))
        if not right:
            self._layout.addStretch(1)

    def button(self, href: str) -> QToolButton | None:
        for button in self.findChildren(QToolButton):
            if button.property("href") == href:
                return button
        return None

    def show_copied(self, href: str) -> None:
        """"Copied" on the button itself, for a moment."""
        button = self.button(href)
        if button is None:
            return
        colors = self.theme.colors
        button.setIcon(icons.icon("copied", colors.success))
        button.setToolTip("Copied")
        tip = button.property("tip")
        QTimer.singleShot(COPIED_MS, button, lambda: (
            button.setIcon(icons.icon("copy", colors.muted)), button.setToolTip(tip)))

    def _button(self, spec: Spec) -> QToolButton:
        button = QToolButton(self)
        button.setAutoRaise(True)
        button.setIcon(icons.icon(spec.icon, self.theme.colors.muted))
        button.setIconSize(QSize(ICON_PX, ICON_PX))
        button.setToolTip(spec.tip)
        button.setAccessibleName(spec.tip)
        button.setProperty("href", spec.href)
        button.setProperty("tip", spec.tip)
        button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        if spec.object_name:
            button.setObjectName(spec.object_name)
        if spec.text:
            button.setText(spec.text)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(lambda: self.triggered.emit(spec.href))
        return button


class WaitingDots(QWidget):
    """Three dots that pulse from send until the first token; nothing animates after."""

    def __init__(self, parent: QWidget, theme: Theme) -> None:
        super().__init__(parent)
        self.setObjectName("waitingIndicator")
        self.setAccessibleName("Waiting for the reply")
        self.theme = theme
        self.setFixedSize(44, 20)
        self._phase = 0
        self._timer = QTimer(self)
        self._timer.setInterval(160)
        self._timer.timeout.connect(self._step)
        self.hide()

    @property
    def animating(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        self._phase = 0
        self._timer.start()
        self.show()

    def stop(self) -> None:
        self._timer.stop()
        self.hide()

    def _step(self) -> None:
        self._phase = (self._phase + 1) % 6
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        for n in range(3):
            lit = (self._phase - n) % 6 < 2
            painter.setBrush(qcolor(self.theme.colors.muted, 0.9 if lit else 0.3))
            painter.drawEllipse(QRectF(4 + n * 13, 6, 8, 8))
        painter.end()


class StickyCodeHeader(QWidget):
    """A code card's header (language, Copy) pinned to the top of the view while the rest of
    a long block is still in sight."""

    copy_requested = Signal(int)  # the code block's index

    def __init__(self, parent: QWidget, theme: Theme) -> None:
        super().__init__(parent)
        self.setObjectName("stickyCodeHeader")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.theme = theme
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 4, 2)
        self.language = QLabel()
        self.copyButton = QToolButton(self, objectName="stickyCopyButton")
        self.copyButton.setText("Copy")
        self.copyButton.setAutoRaise(True)
        self.copyButton.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.copyButton.setIconSize(QSize(ICON_PX - 2, ICON_PX - 2))
        self.copyButton.setAccessibleName("Copy code")
        layout.addWidget(self.language)
        layout.addStretch(1)
        layout.addWidget(self.copyButton)
        self.index: int | None = None
        self.copyButton.clicked.connect(self._copy)
        self.restyle(theme)
        self.hide()

    def restyle(self, theme: Theme) -> None:
        self.theme = theme
        colors = theme.colors
        self.setStyleSheet(f"QWidget#stickyCodeHeader {{ background: {colors.code_header}; "
                           f"border-bottom: 1px solid {colors.faint}; }} "
                           f"QLabel {{ color: {colors.muted}; }} "
                           f"QToolButton {{ color: {colors.muted}; }}")
        self.copyButton.setIcon(icons.icon("copy", colors.muted))

    def show_for(self, index: int, language: str) -> None:
        self.index = index
        self.language.setText(language or "code")
        self.copyButton.setText("Copy")
        self.show()
        self.raise_()

    def _copy(self) -> None:
        if self.index is not None:
            self.copy_requested.emit(self.index)
            self.copyButton.setText("Copied")
            self.copyButton.setIcon(icons.icon("copied", self.theme.colors.success))
            QTimer.singleShot(COPIED_MS, self, lambda: self.restyle(self.theme))
