"""The chat view: one QTextDocument; each message is a run of blocks in the root frame.

Messages are deliberately not child QTextFrames: Qt re-lays-out a whole child frame on every
insert, which made the cost per paint grow with the reply (0.6 ms -> 6 ms over 20,000
deltas). Replies are rendered by `ReplyView`; user messages are plain text. Nothing in the
document is ever fetched: no images, no files, no network.

The look (issue #14): the text sits in a centred reading column (root frame margins); user
messages are right-aligned bubbles, code blocks cards, errors cards -- all painted behind the
document from marks on block formats (`transcript_painter`). Message actions are icon buttons
floating on an empty row the document keeps under each message (`message_actions`): always for
the last reply, on hover or keyboard focus for the others. A sent message is edited in place
(`message_editor`).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QMimeData, QRectF, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QTextBlock,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import QTextBrowser, QToolButton, QWidget

from desktop_chat.core.model.message import (
    Attachment,
    DocumentRef,
    Message,
    Passage,
    ReplyState,
    Role,
    ToolCall,
)
from desktop_chat.core.render import markdown
from desktop_chat.core.render.actions import Action, is_chrome, link, parse
from desktop_chat.core.render.markdown import ZWSP, CodeBlock, Theme
from desktop_chat.ui import icons
from desktop_chat.ui.attachments import insert_images
from desktop_chat.ui.document_chips import insert_document_names, insert_sources
from desktop_chat.ui.follow import Follow
from desktop_chat.ui.labels import shown
from desktop_chat.ui.math_images import MathImages
from desktop_chat.ui.message_actions import ActionBar, Branch, Spec, StickyCodeHeader, WaitingDots
from desktop_chat.ui.message_editor import MessageEditor
from desktop_chat.ui.progressive import STREAM_SYNC_CHARS, SYNC_CHARS, Backlog, in_turn, timed
from desktop_chat.ui.reply_view import ReplyView, chrome_format
from desktop_chat.ui.theme import point_size
from desktop_chat.ui.tool_rows import insert_rows, toggle_row
from desktop_chat.ui.transcript_painter import (
    ACTIONS,
    BUBBLE,
    CARD_ERROR,
    CARD_NOTICE,
    CARD_PAD,
    ICON_ROOM,
    Painter,
    first_block_at,
    mark,
    shape_of,
)

MESSAGE_SPACING = 16
# A conversation opens with its latest messages: about 16,000 characters, several screens (at
# least two messages, at most 40); older ones come on request. Showing costs ~3 ms per 1,000
# characters here, so a chat of 1,000 long messages opens about as fast as a short one.
INITIAL_MESSAGES, INITIAL_CHARS = 40, 16_000
# The conversation left open, shown as the app starts: fewer (~2 screens), so that showing it
# holds the window once, briefly (~20-30 ms), while it is new on screen (issue #18).
RESTORED_CHARS = 6_000
EARLIER_STEP, EARLIER_CHARS = 100, 48_000  # each "Show earlier": at most this many more
_MEASURED_LINES = 200  # a bubble's width is measured on at most this many lines


@dataclass(slots=True)
class Row:
    """One message in the document."""

    index: int | None  # in the conversation's messages (None: not a message, e.g. a failure)
    role: Role
    message: Message | None
    first: int  # its first block
    actions: int = -1  # the block its action buttons float on (-1: none yet)
    text: str = ""  # a user message's text (for editing in place)
    natural: float = 0.0  # a user message's widest line, px
    details: tuple[int, int] | None = None  # an error's details (hidden blocks)


def latest_count(messages: Sequence[Message], most: int = INITIAL_MESSAGES,
                 chars: int = INITIAL_CHARS, least: int = 2) -> int:
    """How many of the latest `messages` to show: at most `most`, and no more than `chars`
    characters once `least` are in."""
    count, total = 0, 0
    for message in reversed(messages):
        total += len(message.content) + len(message.reasoning or "")
        if count >= most or (count >= least and total > chars):
            break
        count += 1
    return count


class Transcript(QTextBrowser):
    code_copy_requested = Signal(str)
    # Numbers read from a link are Python ints of up to 18 digits (see actions.parse): as
    # `object` they reach the slot whole, where a C int would overflow inside emit().
    copy_reply_requested = Signal(object)  # index of the message
    regenerate_requested = Signal()
    continue_requested = Signal()
    edit_requested = Signal(object)  # index of the user message
    edit_submitted = Signal(object, str)  # index of the user message, its new text
    branch_requested = Signal(object, int)  # message id, -1 previous / +1 next alternative
    settings_requested = Signal()
    resend_requested = Signal()  # "Send again" on the card of a prompt that was not sent
    link_requested = Signal(str)  # a safe http(s) URL the user clicked
    painted = Signal(float)  # ms a paint of the view took (the frame pacer counts it)
    link_refused = Signal(str)
    passage_requested = Signal(object)  # a Passage under a reply (its source line clicked)
    context_requested = Signal(object)  # index of a reply whose sent context is asked for

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setAccessibleName("Conversation")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setUndoRedoEnabled(False)  # an undo stack would grow with every paint
        self.setFrameShape(QTextBrowser.Shape.NoFrame)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextBrowserInteraction
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.viewport().setMouseTracking(True)
        self.theme = theme
        self.math = MathImages(self.document(), self._math_look, self)
        self._painter = Painter(self.document(), theme)
        self._apply_font()
        self._reply: ReplyView | None = None
        self._code_blocks: list[CodeBlock] = []
        self._sections: dict[int, tuple[int, int]] = {}
        self._section_labels: dict[int, str] = {}
        self._messages: list[Message] = []
        self._rows: list[Row] = []
        self._tops: list[float] = []  # cache of row tops for hover look-ups (see _row_at)
        self._limit = INITIAL_MESSAGES
        self._first_shown = 0
        self._label_positions: dict[int, int] = {}
        self._images = 0
        self._exchange_start = 0
        self._failure: tuple[int, Row] | None = None  # a prompt that was not sent: its card
        self._history = False
        self._placing = False
        self._column = 0  # the reading column's width now, px
        self.jumpButton = QToolButton(self.viewport(), objectName="jumpToLatest")
        self.jumpButton.setIcon(icons.icon("scroll-down", theme.colors.text))
        self.jumpButton.setToolTip("Jump to latest")
        self.jumpButton.setAccessibleName("Jump to latest")
        self._follow = Follow(self, self.jumpButton)
        self.lastBar = ActionBar(self.viewport(), theme, "replyActions")
        self.hoverBar = ActionBar(self.viewport(), theme, "messageActions")
        self.failureBar = ActionBar(self.viewport(), theme, "failureActions")
        self.waiting = WaitingDots(self.viewport(), theme)
        self.stickyHeader = StickyCodeHeader(self.viewport(), theme)
        self.editor = MessageEditor(self.viewport(), theme)
        for bar in (self.lastBar, self.hoverBar, self.failureBar):
            bar.triggered.connect(self._action)
        self.stickyHeader.copy_requested.connect(self._copy_code)
        self.editor.save_requested.connect(self.edit_submitted.emit)
        self.editor.cancelled.connect(self._edit_cancelled)
        self._hide_hover = QTimer(self, singleShot=True, interval=250)
        self._hide_hover.timeout.connect(self._maybe_hide_hover)
        self.verticalScrollBar().valueChanged.connect(self._scrolled)
        self.document().documentLayout().documentSizeChanged.connect(self._scrolled)
        self.cursorPositionChanged.connect(self._caret_moved)
        # Edits wait their turn, a slice at a time: a huge reply never freezes the window
        self.backlog = Backlog(self)
        # What a click on one of the view's own links does; the others (labels, notes,
        # images) do nothing.
        self._handlers: dict[Action, Callable[[int | None], object]] = {
            Action.COPY_CODE: _numbered(self._copy_code),
            Action.TOGGLE: _numbered(self.toggle_section),
            Action.EARLIER: _bare(self.show_earlier),
            Action.COPY_REPLY: _numbered(self._copy_reply),
            Action.REGENERATE: _bare(self.regenerate_requested.emit),
            Action.CONTINUE: _bare(self.continue_requested.emit),
            Action.EDIT: _numbered(self.edit_requested.emit),
            Action.PREVIOUS: _numbered(lambda message_id: self.branch_requested.emit(
                message_id, -1)),
            Action.NEXT: _numbered(lambda message_id: self.branch_requested.emit(message_id, 1)),
            Action.TOOL: _numbered(self._toggle_tool_row),
            Action.SOURCE: _numbered(self._show_source),
            Action.CONTEXT: _numbered(self.context_requested.emit),
            Action.SETTINGS: _bare(self.settings_requested.emit),
            Action.RESEND: _bare(self.resend_requested.emit),
            Action.DETAILS: _numbered(self._toggle_details),
        }
        self._tool_rows: list[tuple[ToolCall, tuple[int, int]]] = []
        self._sources: list[Passage] = []  # the passages under replies, by their number
        self.anchorClicked.connect(self._anchor_clicked)

    # -- look -----------------------------------------------------------------------------

    def _apply_font(self) -> None:
        font = QFont(self.font())
        font.setPointSizeF(point_size(self.theme.type.body))
        self.document().setDefaultFont(font)
        self.document().setDefaultStyleSheet(markdown.stylesheet(self.theme, font.pointSizeF()))
        self._metrics = QFontMetricsF(font)
        self.viewport().setStyleSheet("")
        palette = self.palette()
        palette.setColor(palette.ColorRole.Base, QColor(self.theme.colors.window))
        palette.setColor(palette.ColorRole.Text, QColor(self.theme.colors.text))
        self.setPalette(palette)

    def set_theme(self, theme: Theme) -> None:
        """Another colour scheme: the caller shows the messages again."""
        self.theme = theme
        self._painter.theme = theme
        for widget in (self.lastBar, self.hoverBar, self.failureBar, self.waiting):
            widget.theme = theme
        self.stickyHeader.restyle(theme)
        self.editor.restyle(theme)
        self.jumpButton.setIcon(icons.icon("scroll-down", theme.colors.text))
        self._apply_font()

    def _column_width(self) -> int:
        width = self.viewport().width()
        return max(200, min(self.theme.column_width, width - 2 * self.theme.space.l))

    def _apply_column(self) -> None:
        """Centre the reading column: the root frame's side margins."""
        column = self._column_width()
        side = max(self.theme.space.l, (self.viewport().width() - column) // 2)
        root = self.document().rootFrame()
        fmt = root.frameFormat()
        if fmt.leftMargin() != side or fmt.rightMargin() != side:
            fmt.setLeftMargin(side)
            fmt.setRightMargin(side)
            fmt.setTopMargin(self.theme.space.l)
            fmt.setBottomMargin(self.theme.space.xl)
            root.setFrameFormat(fmt)
        self._painter.column = (float(side), float(column))
        if column != self._column:
            self._column = column
            self._refit_bubbles()

    # -- whole conversations -------------------------------------------------------------

    def show_messages(self, messages: list[Message], limit: int | None = None, *,
                      at_start: bool = False) -> None:
        """Render the last `limit` messages (by default: what opens fast, see
        INITIAL_CHARS, or RESTORED_CHARS `at_start`); older ones come on request."""
        if limit is None:
            limit = latest_count(messages, chars=RESTORED_CHARS if at_start else INITIAL_CHARS)
        self.editor.hide()
        self.editor.index = None
        self.backlog.clear()
        self.clear()
        self._painter.forget()
        self._apply_column()
        self._reply = None
        self._code_blocks, self._sections, self._section_labels = [], {}, {}
        self._rows, self._tops, self._failure = [], [], None
        self._messages, self._limit, self._label_positions = messages, limit, {}
        self.waiting.stop()
        self._tool_rows = []
        self._sources = []
        first = max(0, len(messages) - limit)
        if first:
            earlier = chrome_format(link(Action.EARLIER), QColor(self.theme.muted), bold=True)
            self._end_cursor().insertText(f"↑ Show {first} earlier messages", earlier)
        self._first_shown = first
        edit = QTextCursor(self.document())
        edit.beginEditBlock()  # one layout for the whole conversation
        self._history = True  # no "Thought for N s" timings: these were not seen live
        try:
            for index in range(first, len(messages)):
                message = messages[index]
                if message.role is Role.USER:
                    self.add_user_message(message.content, index, message)
                elif message.role is Role.ASSISTANT:
                    self.begin_reply(message.model or "", index, message.tool_calls)
                    if message.reasoning:
                        self.append_reasoning(message.reasoning)
                    self.append_reply_text(message.content)
                    self.end_reply(message, index, last=index == len(messages) - 1)
        finally:
            self._history = False
            edit.endEditBlock()
        self._refresh_bars()
        self.scroll_to_bottom()

    def show_earlier(self) -> None:
        if not self._first_shown:
            return
        keep = self._first_shown  # keep this message where the user sees it
        more = latest_count(self._messages[:keep], EARLIER_STEP, EARLIER_CHARS, least=1)
        self.show_messages(self._messages, self._limit + more)
        anchor = self._label_positions.get(keep)
        if anchor is not None:
            cursor = QTextCursor(self.document())
            cursor.setPosition(anchor)
            self._follow.hold(self.cursorRect(cursor).top() + self.verticalScrollBar().value() - 8)

    # -- one exchange ---------------------------------------------------------------------

    @in_turn
    def add_user_message(self, text: str, index: int, message: Message | None = None,
                         attachments: Sequence[Attachment] = (),
                         documents: Sequence[DocumentRef] = ()) -> None:
        self._drop_failure()
        self._exchange_start = self._end_cursor().position()
        shown_text = markdown.break_long_runs_text(text)
        natural = self._natural_width(shown_text)
        self._label_positions[index] = self._exchange_start
        cursor = self._new_block(self._bubble_format(natural, top=MESSAGE_SPACING))
        row = Row(index, Role.USER, message, cursor.blockNumber(), text=text, natural=natural)
        cursor.insertText(shown_text)
        images = list(attachments) or (message.attachments if message else [])
        self._images = insert_images(cursor, images, self._images)
        refs = list(documents) or (message.documents if message else [])
        if refs:
            insert_document_names(cursor, refs, QColor(self.theme.muted))
        if cursor.blockNumber() > row.first:  # only the first line keeps the space above
            rest = QTextCursor(self.document().findBlockByNumber(row.first + 1))
            rest.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
            rest.setBlockFormat(self._bubble_format(natural))
        self._add_row(row)
        self._add_action_row(row, ACTIONS)
        if not self._history:  # a whole conversation places its buttons once, at the end
            self._refresh_bars()
            self.scroll_to_bottom()

    @in_turn
    def begin_reply(self, model: str, index: int | None = None,
                    tool_calls: Sequence[ToolCall] = ()) -> None:
        self._drop_failure()
        heading = QTextBlockFormat()
        heading.setTopMargin(MESSAGE_SPACING)
        if index is not None:
            self._label_positions[index] = self._end_cursor().position()
        cursor = self._new_block(heading)
        label = chrome_format(link(Action.LABEL), QColor(self.theme.muted))
        label.setFontPointSize(point_size(self.theme.type.small))
        cursor.insertText(model or "Assistant", label)
        row = Row(index, Role.ASSISTANT, None, cursor.blockNumber())
        self._add_row(row)
        if tool_calls:  # the calls the reply made, as collapsed rows above its text
            spans = insert_rows(cursor, list(tool_calls), len(self._tool_rows),
                                QColor(self.theme.muted))
            self._tool_rows += zip(tool_calls, spans, strict=True)
        cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        self.backlog.restart()
        self._reply = ReplyView(cursor, self.theme, len(self._code_blocks), len(self._sections),
                                self.math)
        if not self._history:
            self._place_waiting(cursor.block())

    @in_turn
    def resume_reply(self, message: Message, index: int) -> None:
        """Continue: the interrupted reply at `index` (the last one) grows in place. It is
        shown again as a reply in flight, with what it already had."""
        self._drop_failure()  # below it: goes first, while its position holds
        rows = [r for r in self._rows if r.index == index and r.role is Role.ASSISTANT]
        if rows:
            row = rows[0]
            start = self.document().findBlockByNumber(row.first).position()
            cursor = QTextCursor(self.document())
            cursor.setPosition(max(0, start - 1))
            cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
            cursor.removeSelectedText()
            keep = self._rows.index(row)
            del self._rows[keep:], self._tops[keep:]
            self._forget_sections_from(row.first)
        self.begin_reply(message.model or "", index, message.tool_calls)
        if message.reasoning:
            self.append_reasoning(message.reasoning)
        if message.content:
            self.append_reply_text(message.content)
        self._refresh_bars()

    @in_turn
    def append_reply_text(self, text: str) -> None:
        if self._reply is not None and text:
            if self.waiting.animating:
                self.waiting.stop()
            timed(self.backlog, text, self._add_reply_text,
                  SYNC_CHARS if self._history else STREAM_SYNC_CHARS)

    def _add_reply_text(self, text: str) -> None:
        if self._reply is not None:
            with self._follow.growing():
                self._reply.add_text(text)

    @in_turn
    def append_reasoning(self, text: str) -> None:
        if self._reply is not None and text:
            if self.waiting.animating:
                self.waiting.stop()
            plain = text.replace("\r\n", "\n").replace("\r", "\n")
            with self._follow.growing():
                self._reply.add_reasoning(markdown.break_long_runs_text(plain))

    @in_turn
    def end_reply(self, message: Message, index: int, *, last: bool = True,
                  unsaved: str = "", details: str = "") -> None:
        """`unsaved`: why the history could not save this reply, said under it. `details`:
        what the server sent with an error, under the error card's Details."""
        reply, self._reply = self._reply, None
        self.waiting.stop()
        if reply is None:
            return
        reply.finish()
        self._code_blocks += reply.finished_blocks
        row = self._rows[-1] if self._rows else Row(index, Role.ASSISTANT, message, 0)
        row.index, row.message = index, message
        if reply.reasoning_blocks is not None:
            section = len(self._sections)
            self._sections[section] = reply.reasoning_blocks
            seconds = None if self._history else reply.thinking_seconds
            self._section_labels[section] = (f"Thought for {max(1, round(seconds))} s"
                                             if seconds is not None else "Reasoning")
            self.toggle_section(section)  # collapsed once the answer is in
        if message.passages:
            insert_sources(self._end_cursor(), message.passages, message.content,
                           len(self._sources), index, QColor(self.theme.muted))
            self._sources += message.passages
        shape = self._add_notes(row, message, unsaved, details)
        self._add_action_row(row, shape)
        if self._history:
            return
        self._refresh_bars()
        if self._follow.following:
            self.scroll_to_bottom()

    @in_turn
    def remove_last_exchange(self, error: str = "") -> None:
        """Take back the prompt and reply of a request that failed before any text; `error`
        (why) is said in a card where the reply would have been, with Send again."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._exchange_start)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        if self.document().isEmpty():
            cursor.setBlockFormat(QTextBlockFormat())
        self._reply = None
        self.waiting.stop()
        first = self.document().findBlock(self._exchange_start).blockNumber()
        while self._rows and self._rows[-1].first >= first:
            self._rows.pop()
        del self._tops[len(self._rows):]
        if error:
            self._show_failure(error)
        self._refresh_bars()

    # -- notes and error cards ------------------------------------------------------------

    def _add_notes(self, row: Row, message: Message, unsaved: str, details: str = "") -> int:
        """The card (or note) under a reply; returns the shape its action row takes."""
        shape = 0
        if message.state is ReplyState.STOPPED and not unsaved:
            note = chrome_format(link(Action.NOTE), QColor(self.theme.muted))
            self._new_block(QTextBlockFormat()).insertText("■ Stopped", note)
            return ACTIONS
        if message.state in (ReplyState.INTERRUPTED, ReplyState.FAILED):
            shape = CARD_ERROR
            summary = shown(message.error or "The reply was interrupted.")
            self._card(row, shape, f"{summary}\n\n{details}" if details.strip() else summary)
        elif message.finish_reason == "length":
            shape = CARD_NOTICE
            self._card(row, shape, "The reply was cut off at the server's length limit "
                                   "(max tokens).")
        elif message.finish_reason == "content_filter":
            shape = CARD_NOTICE
            self._card(row, shape, "The server's content filter stopped the reply.")
        if unsaved:
            shape = shape or CARD_NOTICE
            self._card(row, shape, f"Not saved: {unsaved.rstrip('.')}. It stays here; saving "
                                   "resumes by itself.")
        return shape or ACTIONS

    def _card(self, row: Row, shape: int, text: str) -> None:
        """The summary of an error, and its details (after a blank line: the server's own
        words) in hidden blocks that the card's Details button shows."""
        summary, _, details = text.partition("\n\n")
        colors = self.theme.colors
        color = colors.danger if shape == CARD_ERROR else colors.notice
        fmt = self._card_format(shape, top=CARD_PAD + self.theme.space.s)
        cursor = self._new_block(fmt)
        cursor.insertText(summary.strip(), chrome_format(link(Action.NOTE), QColor(color)))
        if details.strip() and row.details is None:
            first = cursor.blockNumber() + 1
            muted = chrome_format(link(Action.NOTE), QColor(colors.muted))
            for line in details.strip().splitlines():
                cursor.insertBlock(self._card_format(shape), QTextCharFormat())
                cursor.insertText(markdown.break_long_runs_text(line) or " ", muted)
                cursor.block().setVisible(False)
            row.details = (first, cursor.blockNumber())

    def error_text(self) -> str:
        """The words of the error card at the end of the conversation ("" when there is
        none): what the user reads there, details only when shown."""
        lines: list[str] = []
        block = self.document().lastBlock()
        last_row = self._rows[-1].first if self._rows else 0
        while block.isValid() and block.blockNumber() >= last_row:
            if shape_of(block) in (CARD_ERROR, CARD_NOTICE) and block.isVisible() \
                    and block.text():
                lines.append(block.text())
            block = block.previous()
        return "\n".join(reversed(lines))

    def _card_format(self, shape: int, top: int = 0) -> QTextBlockFormat:
        fmt = mark(QTextBlockFormat(), shape)
        fmt.setLeftMargin(ICON_ROOM + CARD_PAD)
        fmt.setRightMargin(CARD_PAD)
        fmt.setTopMargin(top)
        return fmt

    def _show_failure(self, error: str) -> None:
        """A prompt that was not sent (it is back in the composer): one card says why, with
        Send again and Open Settings."""
        start = self._end_cursor().position()
        row = Row(None, Role.ASSISTANT, None, self.document().blockCount())
        self._card(row, CARD_ERROR, shown(error))
        self._add_action_row(row, CARD_ERROR)
        self._failure = (start, row)

    def _drop_failure(self) -> None:
        if self._failure is None:
            return
        start, _row = self._failure
        self._failure = None
        cursor = QTextCursor(self.document())
        cursor.setPosition(max(0, start - 1) if start else 0)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        if start == 0:
            cursor.setBlockFormat(QTextBlockFormat())
        self.failureBar.hide()

    def _toggle_details(self, first_block: int) -> None:
        for row in [*self._rows, *([self._failure[1]] if self._failure else [])]:
            if row.details is not None and row.details[0] == first_block:
                first, last = row.details
                doc = self.document()
                visible = not doc.findBlockByNumber(first).isVisible()
                for number in range(first, last + 1):
                    doc.findBlockByNumber(number).setVisible(visible)
                start = doc.findBlockByNumber(first).position()
                doc.markContentsDirty(start, doc.findBlockByNumber(last).position() - start + 1)
                self._tops = []
                self._place_bars()
                return

    # -- code blocks, sections, links -----------------------------------------------------

    def code_block(self, index: int) -> CodeBlock | None:
        blocks = self._all_code_blocks()
        return blocks[index] if 0 <= index < len(blocks) else None

    def last_code_block(self) -> CodeBlock | None:
        blocks = self._all_code_blocks()
        return blocks[-1] if blocks else None

    def _all_code_blocks(self) -> list[CodeBlock]:
        if self._reply is None:
            return self._code_blocks
        return self._code_blocks + self._reply.finished_blocks + self._reply.tail_blocks

    def toggle_section(self, section: int) -> None:
        if section not in self._sections:
            return
        first, last = self._sections[section]
        doc = self.document()
        visible = not doc.findBlockByNumber(first).isVisible()
        for number in range(first, last + 1):
            doc.findBlockByNumber(number).setVisible(visible)
        header = doc.findBlockByNumber(first - 1)
        cursor = QTextCursor(header)
        cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
        muted = chrome_format(link(Action.TOGGLE, section), QColor(self.theme.muted))
        muted.setFontPointSize(point_size(self.theme.type.small))
        name = self._section_labels.get(section, "Reasoning")
        cursor.insertText(f"{name} ▾" if visible else f"{name} ▸", muted)
        start = header.position()
        doc.markContentsDirty(start, doc.findBlockByNumber(last).position() - start + 1)
        self._tops = []  # the rows below moved
        self._place_bars()

    def _forget_sections_from(self, block_number: int) -> None:
        for section in [s for s, (first, _) in self._sections.items() if first >= block_number]:
            del self._sections[section]
            self._section_labels.pop(section, None)

    def _toggle_tool_row(self, number: int) -> None:
        if 0 <= number < len(self._tool_rows):
            call, span = self._tool_rows[number]
            toggle_row(self.document(), number, call, span, QColor(self.theme.muted))

    def _anchor_clicked(self, url: QUrl) -> None:
        href = url.toString(QUrl.ComponentFormattingOption.FullyEncoded)
        if parse(href) is not None:
            self._action(href)
        elif is_chrome(href):
            pass  # malformed or unknown: none of ours does anything else
        elif (safe := markdown.safe_link(href)) is not None:
            self.link_requested.emit(safe)
        else:
            self.link_refused.emit(href)

    def _show_source(self, number: int) -> None:
        if 0 <= number < len(self._sources):
            self.passage_requested.emit(self._sources[number])

    def _action(self, href: str) -> None:
        if (action := parse(href)) is not None and (
                handler := self._handlers.get(action.action)) is not None:
            handler(action.number)

    def _copy_code(self, index: int) -> None:
        block = self.code_block(index)
        if block is not None:
            self.code_copy_requested.emit(block.code)

    def _copy_reply(self, index: int) -> None:
        self.copy_reply_requested.emit(index)
        href = link(Action.COPY_REPLY, index)
        for bar in (self.lastBar, self.hoverBar):
            bar.show_copied(href)

    # -- action buttons -------------------------------------------------------------------

    def _add_row(self, row: Row) -> None:
        self._rows.append(row)

    def _add_action_row(self, row: Row, shape: int) -> None:
        """An empty row of fixed height under a message: its buttons float there."""
        if shape in (CARD_ERROR, CARD_NOTICE):
            fmt = self._card_format(shape)
        else:
            fmt = mark(QTextBlockFormat(), ACTIONS)
            if row.role is Role.USER:
                fmt.setTopMargin(self.theme.space.s + 2)
        fmt.setLineHeight(self.theme.action_row, QTextBlockFormat.LineHeightTypes.FixedHeight.value)
        cursor = self._new_block(fmt)
        row.actions = cursor.blockNumber()

    def _specs(self, row: Row, last: bool) -> tuple[list[Spec], Branch | None]:
        message = row.message
        branch = None
        if message is not None and message.id is not None and message.sibling_count >= 2:
            branch = Branch(link(Action.PREVIOUS, message.id), link(Action.NEXT, message.id),
                            message.sibling_index + 1, message.sibling_count)
        if row.index is None:  # a prompt that was not sent
            specs = [Spec(link(Action.RESEND), "retry", "Send the message again", "Send again",
                          "resendButton"),
                     Spec(link(Action.SETTINGS), "settings", "Open Settings", "Settings",
                          "settingsButton")]
            if row.details is not None:  # what the server sent, e.g. its error page's text
                specs.append(Spec(link(Action.DETAILS, row.details[0]), "info", "Details",
                                  "Details", "detailsButton"))
            return specs, None
        if row.role is Role.USER:
            return [Spec(link(Action.EDIT, row.index), "edit", "Edit", "", "editButton")], branch
        specs = [Spec(link(Action.COPY_REPLY, row.index), "copy", "Copy", "", "copyButton")]
        state = message.state if message is not None else ReplyState.COMPLETE
        if last and state in (ReplyState.INTERRUPTED, ReplyState.STOPPED, ReplyState.FAILED):
            specs += [Spec(link(Action.REGENERATE), "retry", "Retry", "Retry", "retryButton"),
                      Spec(link(Action.CONTINUE), "continue", "Continue", "Continue",
                           "continueButton")]
            if state is not ReplyState.STOPPED:
                specs.append(Spec(link(Action.SETTINGS), "settings", "Open Settings",
                                  "Settings", "settingsButton"))
        elif last:
            specs.append(Spec(link(Action.REGENERATE), "regenerate", "Regenerate", "",
                              "regenerateButton"))
        if row.details is not None:
            specs.append(Spec(link(Action.DETAILS, row.details[0]), "info", "Details",
                              "Details", "detailsButton"))
        return specs, branch

    def _last_reply_row(self) -> Row | None:
        if self._reply is not None or not self._rows:
            return None
        row = self._rows[-1]
        return row if row.role is Role.ASSISTANT and row.actions >= 0 else None

    def _refresh_bars(self) -> None:
        """The last reply's buttons always show (Retry and Continue after a cut stream)."""
        last = self._last_reply_row()
        if last is None:
            self.lastBar.hide()
            self.lastBar.row = None
        else:
            self._configure(self.lastBar, last, True)
        if self.hoverBar.row is not None and self.hoverBar.row not in self._rows:
            self.hoverBar.hide()
            self.hoverBar.row = None
        if self._failure is not None:
            self._configure(self.failureBar, self._failure[1], False)
        else:
            self.failureBar.hide()
        self._place_bars()

    def _configure(self, bar: ActionBar, row: Row, last: bool) -> None:
        specs, branch = self._specs(row, last)
        bar.configure(specs, branch, right=row.role is Role.USER and row.index is not None)
        bar.row = row
        bar.show()

    def _place_bars(self) -> None:
        # Moving a widget may scroll or relayout: no re-entry. A whole conversation being
        # shown places them once, at its end (each place would lay out the text so far).
        if self._placing or self._history:
            return
        self._placing = True
        try:
            self._place_overlays()
        finally:
            self._placing = False

    def _place_overlays(self) -> None:
        for bar in (self.lastBar, self.hoverBar, self.failureBar):
            row = bar.row
            if isinstance(row, Row) and bar.isVisible() and row.actions >= 0:
                self._place_on(bar, row)
        if self.editor.editing:
            self._place_editor()
        self._update_sticky()

    def _place_on(self, bar: ActionBar, row: Row) -> None:
        block = self.document().findBlockByNumber(row.actions)
        rect = self._viewport_rect(block)
        fmt = block.blockFormat()
        left = rect.left() + (fmt.leftMargin() - 6 if row.index is None or
                              row.role is Role.ASSISTANT else -4)
        width = rect.width() - (left - rect.left()) + 4
        bar.setGeometry(int(left), int(rect.top() + (rect.height() - 28) / 2), int(width), 28)
        bar.raise_()

    def _viewport_rect(self, block: QTextBlock) -> QRectF:
        rect = self.document().documentLayout().blockBoundingRect(block)
        return rect.translated(-self.horizontalScrollBar().value(),
                               -self.verticalScrollBar().value())

    def _row_at(self, y_doc: float) -> Row | None:
        """The message under a document y (binary search over the rows' first blocks)."""
        rows = self._rows
        if not rows:
            return None
        layout, doc = self.document().documentLayout(), self.document()
        if len(self._tops) != len(rows):
            self._tops = [layout.blockBoundingRect(doc.findBlockByNumber(r.first)).top()
                          for r in rows]
        at = bisect.bisect_right(self._tops, y_doc + MESSAGE_SPACING) - 1
        return rows[max(0, at)]

    def show_actions_for(self, row: Row) -> None:
        if row is self.lastBar.row or row.actions < 0:
            self.hoverBar.hide()
            self.hoverBar.row = None
            return
        if self.hoverBar.row is not row:
            self._configure(self.hoverBar, row, False)
        self.hoverBar.show()
        self._place_on(self.hoverBar, row)

    def action_button(self, href: str) -> QToolButton | None:
        """The button for a chrome link, shown (as hovering over its message would)."""
        for bar in (self.lastBar, self.failureBar):
            if bar.isVisible() and (button := bar.button(href)) is not None:
                return button
        found = parse(href)
        for row in reversed(self._rows):
            if row.actions < 0 or found is None:
                continue
            specs, branch = self._specs(row, row is self.lastBar.row)
            hrefs = {s.href for s in specs} | (
                {branch.previous, branch.next} if branch is not None else set())
            if href in hrefs:
                self.show_actions_for(row)
                return self.hoverBar.button(href)
        return None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        row = self._row_at(event.position().y() + self.verticalScrollBar().value())
        if row is not None:
            self._hide_hover.stop()
            self.show_actions_for(row)

    def leaveEvent(self, event: object) -> None:
        super().leaveEvent(event)  # type: ignore[arg-type]
        self._hide_hover.start()

    def _maybe_hide_hover(self) -> None:
        if not self.hoverBar.underMouse() and not self.hoverBar.isAncestorOf(
                self.focusWidget() or self):
            self.hoverBar.hide()
            self.hoverBar.row = None

    def _caret_moved(self) -> None:
        """Keyboard: the message holding the caret shows its buttons."""
        if self.hasFocus():
            row = self._row_at(self.cursorRect().top() + self.verticalScrollBar().value())
            if row is not None:
                self.show_actions_for(row)

    # -- waiting, sticky code headers ------------------------------------------------------

    def _place_waiting(self, block: QTextBlock) -> None:
        rect = self._viewport_rect(block)
        self.waiting.move(int(rect.left()), int(rect.top()))
        self.waiting.start()

    def _scrolled(self, _value: int) -> None:
        self._place_bars()  # overlays follow the text, however the view scrolled

    def _update_sticky(self) -> None:
        """A code card whose header scrolled out while its code is in sight: its header
        (language, Copy) stays at the top of the view."""
        top = self.verticalScrollBar().value()
        doc = self.document()
        layout = doc.documentLayout()
        table = QTextCursor(first_block_at(doc, top + 2)).currentTable()
        index = self._painter.code_of(table) if table is not None else None
        if table is None or index is None:
            self.stickyHeader.hide()
            return
        frame = layout.frameBoundingRect(table)
        code = self.code_block(index)
        header_bottom = layout.blockBoundingRect(
            table.cellAt(1, 0).firstCursorPosition().block()).top()
        if header_bottom - 8 > top + 2 or frame.bottom() - 40 < top or code is None:
            self.stickyHeader.hide()
            return
        left, width = self._painter.column  # the card's edges, as painted
        self.stickyHeader.setGeometry(int(left - self.horizontalScrollBar().value()), 0,
                                      int(width), self.stickyHeader.sizeHint().height())
        if self.stickyHeader.index != index or self.stickyHeader.isHidden():
            self.stickyHeader.show_for(index, code.language)

    # -- editing a sent message in place ---------------------------------------------------

    def start_edit(self, index: int, text: str) -> bool:
        """The bubble of the user message at `index` becomes an editor."""
        rows = [r for r in self._rows if r.index == index and r.role is Role.USER]
        if not rows:
            return False
        self.editor.start(index, text)
        self._make_room_for_editor()
        self._place_bars()
        return True

    def finish_edit(self) -> None:
        self.editor.finish()
        self._restore_edited_row()

    def _edit_cancelled(self) -> None:
        self._restore_edited_row()
        self.setFocus()

    def _restore_edited_row(self) -> None:
        for row in self._rows:
            if row.role is Role.USER and row.actions >= 0:
                block = self.document().findBlockByNumber(row.actions)
                if block.blockFormat().lineHeight() != self.theme.action_row:
                    self._set_row_height(row, self.theme.action_row)
        self._place_bars()

    def _edited_row(self) -> Row | None:
        rows = [r for r in self._rows if r.index == self.editor.index and r.role is Role.USER]
        return rows[0] if rows else None

    def _editor_box(self, row: Row) -> tuple[float, float]:
        """Top of the edited bubble (document px) and the editor's height there."""
        layout, doc = self.document().documentLayout(), self.document()
        top = layout.blockBoundingRect(doc.findBlockByNumber(row.first)).top() - \
            self.theme.space.s
        text_bottom = layout.blockBoundingRect(doc.findBlockByNumber(row.actions - 1)).bottom()
        return top, max(120.0, text_bottom - top + 56)

    def _make_room_for_editor(self) -> None:
        """The editor is taller than the bubble: the row under it grows (once, on start)."""
        row = self._edited_row()
        if row is None:
            return
        top, height = self._editor_box(row)
        actions = self.document().documentLayout().blockBoundingRect(
            self.document().findBlockByNumber(row.actions))
        room = actions.bottom() - top
        if room < height:
            self._set_row_height(row, int(self.theme.action_row + height - room + 1))

    def _place_editor(self) -> None:
        row = self._edited_row()
        if row is None:
            self.editor.hide()
            return
        top, height = self._editor_box(row)
        side = self.document().rootFrame().frameFormat().leftMargin()
        self.editor.setGeometry(int(side - self.horizontalScrollBar().value()),
                                int(top - self.verticalScrollBar().value()), self._column,
                                int(height))
        if self.hoverBar.row is row:
            self.hoverBar.hide()

    def _set_row_height(self, row: Row, height: int) -> None:
        block = self.document().findBlockByNumber(row.actions)
        fmt = block.blockFormat()
        fmt.setLineHeight(height, QTextBlockFormat.LineHeightTypes.FixedHeight.value)
        QTextCursor(block).setBlockFormat(fmt)
        self._tops = []

    # -- bubbles ---------------------------------------------------------------------------

    def _natural_width(self, text: str) -> float:
        lines = text.split("\n")[:_MEASURED_LINES]
        return max((self._metrics.horizontalAdvance(line) for line in lines), default=0.0)

    def _bubble_format(self, natural: float, top: int = 0) -> QTextBlockFormat:
        pad = self.theme.space.l
        column = self._column or self._column_width()
        widest = column * self.theme.bubble_share - 2 * pad
        inner = min(natural + 4, widest)
        fmt = mark(QTextBlockFormat(), BUBBLE)
        fmt.setLeftMargin(max(0.0, column - inner - pad))
        fmt.setRightMargin(pad)
        fmt.setTopMargin(top + self.theme.space.s if top else 0)
        fmt.setLineHeight(self.theme.type.line_height,
                          QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)
        return fmt

    def _refit_bubbles(self) -> None:
        """The column changed width (a narrow window): bubbles keep to the right edge."""
        doc = self.document()
        for row in self._rows:
            if row.role is not Role.USER or row.actions < 0:
                continue
            for number in range(row.first, row.actions):
                block = doc.findBlockByNumber(number)
                old = block.blockFormat()
                fmt = self._bubble_format(row.natural)
                fmt.setTopMargin(old.topMargin())
                QTextCursor(block).setBlockFormat(fmt)
        self._tops = []

    # -- painting ----------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        started = time.perf_counter()
        dx, dy = self.horizontalScrollBar().value(), self.verticalScrollBar().value()
        painter = QPainter(self.viewport())
        self._painter.paint(painter, QRectF(event.rect()).translated(dx, dy), dx, dy)
        painter.end()
        super().paintEvent(event)
        self.painted.emit((time.perf_counter() - started) * 1000)

    # -- copying a selection: the text, never the chrome ----------------------------------

    def createMimeDataFromSelection(self) -> QMimeData:
        doc = QTextDocument()
        QTextCursor(doc).insertFragment(self.textCursor().selection())
        chrome: list[tuple[int, int]] = []
        block = doc.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if is_chrome(fragment.charFormat().anchorHref()):
                    chrome.append((fragment.position(), fragment.length()))
                it += 1
            block = block.next()
        cursor = QTextCursor(doc)
        for position, length in reversed(chrome):
            cursor.setPosition(position)
            cursor.setPosition(position + length, QTextCursor.MoveMode.KeepAnchor)
            cursor.removeSelectedText()
        markup = self.math.with_pictures(doc.toHtml())  # formulas as pictures, LaTeX as alt
        MathImages.to_source(doc)  # and as their LaTeX in the text
        mime = QMimeData()
        mime.setText(doc.toPlainText().replace(ZWSP, "").strip("\n"))
        mime.setHtml(markup.replace(ZWSP, ""))
        return mime

    # -- scrolling ------------------------------------------------------------------------

    @in_turn
    def scroll_to_bottom(self) -> None:
        self._follow.to_bottom()

    @property
    def following(self) -> bool:
        return self._follow.following

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._apply_column()
        self._tops = []
        self._follow.place_button()
        self._place_bars()

    # -- helpers --------------------------------------------------------------------------

    def _end_cursor(self) -> QTextCursor:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        return cursor

    def _new_block(self, fmt: QTextBlockFormat) -> QTextCursor:
        """A new block at the end (the first block, if the document is empty)."""
        cursor = self._end_cursor()
        if self.document().isEmpty():
            cursor.setBlockFormat(fmt)
        else:
            cursor.insertBlock(fmt, QTextCharFormat())
        return cursor

    def _math_look(self) -> tuple[QFont, str, float]:
        """What formulas are drawn with: the document's font, the text colour, the ratio."""
        return self.document().defaultFont(), self.theme.colors.text, self.devicePixelRatioF()

    def loadResource(self, _type: int, _name: QUrl) -> object:
        return None  # never load anything: no images, no files, no network


def _numbered(handler: Callable[[int], object]) -> Callable[[int | None], object]:
    """A handler of an action whose links carry a number (`parse` guarantees one)."""
    return lambda number: None if number is None else handler(number)


def _bare(handler: Callable[[], object]) -> Callable[[int | None], object]:
    return lambda _number: handler()

