"""The chat view: one QTextDocument; each message is a run of blocks in the root frame.

Streaming appends only the text that arrived since the last paint at the end of the open
reply, so the cost of a paint does not grow with the reply or the conversation. (Messages are
deliberately not child QTextFrames: Qt re-lays-out a whole child frame on every insert, which
made the cost per paint grow with the reply: 0.6 ms -> 6 ms over 20,000 deltas.)
Model text is inserted as plain text: nothing in it is interpreted as markup.
"""

from __future__ import annotations

import re
import time

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QFont,
    QPalette,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import QTextBrowser, QWidget

from desktop_chat.core.models import Message, ReplyState, Role

FOLLOW_SLACK_PX = 24
MESSAGE_SPACING = 14
SCROLLBAR_PAINT_S = 0.1
ZWSP = "\u200b"
# Qt wraps a run without break opportunities in quadratic time (1 MB took 67 s): give long
# runs an invisible break every this many characters. Copies strip them again.
BREAK_RUNS_EVERY = 80
_WHITESPACE = re.compile(r"(\s+)")


class Transcript(QTextBrowser):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setAccessibleName("Conversation")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setUndoRedoEnabled(False)  # an undo stack would grow with every paint
        self.document().setUndoRedoEnabled(False)
        self.document().setDocumentMargin(12)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self._follow = True
        self._programmatic_scroll = False
        self._reply_cursor: QTextCursor | None = None
        self._reasoning_cursor: QTextCursor | None = None
        self._exchange_start = 0
        self._pending_cr = False
        self._runs = {"reply": 0, "reasoning": 0}
        self._broke_runs = False
        self._bar_painted = 0.0
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)

    # -- whole conversations -------------------------------------------------------------

    def show_messages(self, messages: list[Message]) -> None:
        self.clear()
        self._reply_cursor = self._reasoning_cursor = None
        self._follow = True
        for message in messages:
            if message.role is Role.USER:
                self.add_user_message(message.content)
            elif message.role is Role.ASSISTANT:
                self.begin_reply(message.model or "")
                if message.reasoning:
                    self.append_reasoning(message.reasoning)
                self.append_reply_text(message.content)
                self.end_reply(message)
        self.scroll_to_bottom()

    # -- one exchange ---------------------------------------------------------------------

    def add_user_message(self, text: str) -> None:
        self._exchange_start = self._end_cursor().position()
        label, body = self._user_formats()
        cursor = self._new_message(label, "You")
        cursor.insertBlock(body, QTextCharFormat())
        self._runs["reply"] = 0
        cursor.insertText(self._wrappable(text, "reply"))
        self.scroll_to_bottom()

    def begin_reply(self, model: str) -> None:
        label, body = self._reply_formats()
        cursor = self._new_message(label, f"Assistant · {model}" if model else "Assistant")
        cursor.insertBlock(body, QTextCharFormat())
        self._reply_cursor = cursor
        self._reasoning_cursor = None
        self._pending_cr = False
        self._runs = {"reply": 0, "reasoning": 0}

    def append_reply_text(self, text: str) -> None:
        if self._reply_cursor is None or not text:
            return
        text, self._pending_cr = _normalize_newlines(text, self._pending_cr)
        self._throttle_scrollbar()
        self._reply_cursor.insertText(self._wrappable(text, "reply"))

    def append_reasoning(self, text: str) -> None:
        """Reasoning goes above the answer; arriving after the answer began, it is kept only
        in the data (servers send it first)."""
        if self._reply_cursor is None or not text:
            return
        if self._reasoning_cursor is None:
            if self._reply_cursor.block().length() > 1:
                return
            self._reasoning_cursor = self._start_reasoning_block()
        self._throttle_scrollbar()
        self._reasoning_cursor.insertText(self._wrappable(text, "reasoning"))

    def end_reply(self, message: Message) -> None:
        if self._reply_cursor is None:
            return
        state = message.state
        note = _footer(message)
        if note:
            cursor = self._reply_cursor
            cursor.insertBlock()
            fmt = QTextCharFormat()
            fmt.setFontItalic(True)
            fmt.setForeground(QColor("#c0392b") if state is not ReplyState.STOPPED
                              else self.palette().color(QPalette.ColorRole.PlaceholderText))
            cursor.insertText(note, fmt)
        self._reply_cursor = self._reasoning_cursor = None
        self.verticalScrollBar().setUpdatesEnabled(True)
        if self._follow:
            self.scroll_to_bottom()

    def remove_last_exchange(self) -> None:
        """Take back the prompt and reply of a request that failed before any text."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._exchange_start)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        if self.document().isEmpty():
            cursor.setBlockFormat(QTextBlockFormat())
        self._reply_cursor = self._reasoning_cursor = None
        self.verticalScrollBar().setUpdatesEnabled(True)

    # -- scrolling ------------------------------------------------------------------------

    def scroll_to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        self._programmatic_scroll = True
        bar.setValue(bar.maximum())
        self._programmatic_scroll = False
        self._follow = True

    @property
    def following(self) -> bool:
        return self._follow

    def _on_scrolled(self, value: int) -> None:
        if not self._programmatic_scroll:
            self._follow = value >= self.verticalScrollBar().maximum() - FOLLOW_SLACK_PX

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self._programmatic_scroll = True
            self.verticalScrollBar().setValue(maximum)
            self._programmatic_scroll = False

    # -- helpers --------------------------------------------------------------------------

    def _wrappable(self, text: str, stream: str) -> str:
        text, self._runs[stream], broke = break_long_runs(
            _displayable(text), self._runs[stream], BREAK_RUNS_EVERY
        )
        self._broke_runs |= broke
        return text

    def createMimeDataFromSelection(self) -> QMimeData:
        mime = super().createMimeDataFromSelection()
        if self._broke_runs:
            mime.setText(mime.text().replace(ZWSP, ""))
            mime.setHtml(mime.html().replace(ZWSP, ""))
        return mime

    def _end_cursor(self) -> QTextCursor:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        return cursor

    def _new_message(self, label_format: QTextBlockFormat, label: str) -> QTextCursor:
        cursor = self._end_cursor()
        if self.document().isEmpty():
            cursor.setBlockFormat(label_format)
        else:
            cursor.insertBlock(label_format)
        fmt = QTextCharFormat()
        fmt.setFontWeight(QFont.Weight.Bold)
        fmt.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
        cursor.insertText(label, fmt)
        return cursor

    def _throttle_scrollbar(self) -> None:
        """Repaint the scrollbar at most ~10 times a second while a reply grows: its range
        changes every frame, and painting it cost more than the text (1 ms per frame)."""
        now = time.perf_counter()
        bar = self.verticalScrollBar()
        if now - self._bar_painted >= SCROLLBAR_PAINT_S:
            self._bar_painted = now
            bar.setUpdatesEnabled(True)
        elif bar.updatesEnabled():
            bar.setUpdatesEnabled(False)

    def _start_reasoning_block(self) -> QTextCursor:
        """An italic block above the (still empty) answer block."""
        assert self._reply_cursor is not None
        self._reply_cursor.insertBlock()
        cursor = QTextCursor(self._reply_cursor)
        cursor.movePosition(QTextCursor.MoveOperation.PreviousBlock)
        fmt = QTextCharFormat()
        fmt.setFontItalic(True)
        fmt.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
        cursor.setCharFormat(fmt)
        return cursor

    def _user_formats(self) -> tuple[QTextBlockFormat, QTextBlockFormat]:
        body = QTextBlockFormat()
        color = self.palette().color(QPalette.ColorRole.Highlight)
        color.setAlpha(40)
        body.setBackground(color)
        body.setLeftMargin(64)
        label = QTextBlockFormat(body)
        label.setTopMargin(MESSAGE_SPACING)
        return label, body

    def _reply_formats(self) -> tuple[QTextBlockFormat, QTextBlockFormat]:
        body = QTextBlockFormat()
        body.setRightMargin(32)
        label = QTextBlockFormat(body)
        label.setTopMargin(MESSAGE_SPACING)
        return label, body

    def loadResource(self, _type: int, _name: QUrl) -> object:
        return None  # the view never loads anything: no images, no files, no network


def _normalize_newlines(text: str, pending_cr: bool) -> tuple[str, bool]:
    """CRLF and lone CR become one line break, also when CR and LF arrive in two paints."""
    if pending_cr and text.startswith("\n"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n"), text.endswith("\r")


def break_long_runs(text: str, run: int, every: int) -> tuple[str, int, bool]:
    """Insert ZWSP into runs of non-whitespace longer than `every`; `run` is the length of
    the run the text continues. Returns (text, length of its trailing run, whether it broke)."""
    if run + len(text) < every:
        last_space = _WHITESPACE.split(text)
        return text, (len(last_space[-1]) if len(last_space) > 1 else run + len(text)), False
    out: list[str] = []
    broke = False
    for piece in _WHITESPACE.split(text):
        if not piece:
            continue
        if piece[0].isspace():
            out.append(piece)
            run = 0
            continue
        pos = 0
        while run + len(piece) - pos >= every:
            take = every - run
            out += [piece[pos : pos + take], ZWSP]
            pos += take
            run = 0
            broke = True
        out.append(piece[pos:])
        run += len(piece) - pos
    return "".join(out), run, broke


def _displayable(text: str) -> str:
    # A NUL would end the text in some Qt paths; show it as a replacement character.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _footer(message: Message) -> str:
    if message.state is ReplyState.STOPPED:
        return "■ Stopped"
    if message.state in (ReplyState.INTERRUPTED, ReplyState.FAILED):
        return f"⚠ {message.error or 'The reply was interrupted.'}"
    if message.finish_reason == "length":
        return "⚠ The reply was cut off at the server's length limit (max tokens)."
    if message.finish_reason == "content_filter":
        return "⚠ The server's content filter stopped the reply."
    return ""
