"""The chat view: one QTextDocument; each message is a run of blocks in the root frame.

Messages are deliberately not child QTextFrames: Qt re-lays-out a whole child frame on every
insert, which made the cost per paint grow with the reply (0.6 ms -> 6 ms over 20,000
deltas). Replies are rendered by `ReplyView`; user messages are plain text. Nothing in the
document is ever fetched: no images, no files, no network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QMimeData, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QPalette,
    QResizeEvent,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import QTextBrowser, QToolButton, QWidget

from desktop_chat.core.model.message import Attachment, Message, ReplyState, Role, ToolCall
from desktop_chat.core.render import markdown
from desktop_chat.core.render.actions import Action, is_chrome, link, parse
from desktop_chat.core.render.markdown import ZWSP, CodeBlock, Theme
from desktop_chat.ui.attachments import insert_images
from desktop_chat.ui.follow import Follow
from desktop_chat.ui.reply_view import ReplyView, chrome_format
from desktop_chat.ui.tool_rows import insert_rows, toggle_row

MESSAGE_SPACING = 14
INITIAL_MESSAGES = 40  # rendered when a conversation opens; older ones on request
EARLIER_STEP = 100
LIVE = frozenset({link(Action.REGENERATE), link(Action.CONTINUE)})  # only on the last reply


class Transcript(QTextBrowser):
    code_copy_requested = Signal(str)
    # Numbers read from a link are Python ints of up to 18 digits (see actions.parse): as
    # `object` they reach the slot whole, where a C int would overflow inside emit().
    copy_reply_requested = Signal(object)  # index of the message
    regenerate_requested = Signal()
    continue_requested = Signal()
    edit_requested = Signal(object)  # index of the user message
    branch_requested = Signal(object, int)  # message id, -1 previous / +1 next alternative
    link_requested = Signal(str)  # a safe http(s) URL the user clicked
    link_refused = Signal(str)

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setAccessibleName("Conversation")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setUndoRedoEnabled(False)  # an undo stack would grow with every paint
        self.document().setDocumentMargin(12)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextBrowserInteraction
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.theme = theme
        self._reply: ReplyView | None = None
        self._code_blocks: list[CodeBlock] = []
        self._sections: dict[int, tuple[int, int]] = {}
        self._regenerate: tuple[int, int] | None = None
        self._messages: list[Message] = []
        self._limit = INITIAL_MESSAGES
        self._first_shown = 0
        self._label_positions: dict[int, int] = {}
        self._images = 0
        self._exchange_start = 0
        self.jumpButton = QToolButton(self.viewport(), objectName="jumpToLatest")
        self.jumpButton.setText("↓ Latest")
        self.jumpButton.setAccessibleName("Jump to latest")
        self._follow = Follow(self, self.jumpButton)
        # What a click on one of the view's own links does; the others (labels, notes,
        # images) do nothing.
        self._handlers: dict[Action, Callable[[int | None], object]] = {
            Action.COPY_CODE: _numbered(self._copy_code),
            Action.TOGGLE: _numbered(self.toggle_section),
            Action.EARLIER: _bare(self.show_earlier),
            Action.COPY_REPLY: _numbered(self.copy_reply_requested.emit),
            Action.REGENERATE: _bare(self.regenerate_requested.emit),
            Action.CONTINUE: _bare(self.continue_requested.emit),
            Action.EDIT: _numbered(self.edit_requested.emit),
            Action.PREVIOUS: _numbered(lambda message_id: self.branch_requested.emit(
                message_id, -1)),
            Action.NEXT: _numbered(lambda message_id: self.branch_requested.emit(message_id, 1)),
            Action.TOOL: _numbered(self._toggle_tool_row),
        }
        self._tool_rows: list[tuple[ToolCall, tuple[int, int]]] = []
        self.anchorClicked.connect(self._anchor_clicked)

    # -- whole conversations -------------------------------------------------------------

    def show_messages(self, messages: list[Message], limit: int = INITIAL_MESSAGES) -> None:
        """Render the last `limit` messages; older ones come on request (long conversations
        open fast)."""
        self.clear()
        self._reply = None
        self._code_blocks, self._sections, self._regenerate = [], {}, None
        self._tool_rows = []
        self._messages, self._limit, self._label_positions = messages, limit, {}
        first = max(0, len(messages) - limit)
        if first:
            earlier = chrome_format(link(Action.EARLIER), QColor(self.theme.muted), bold=True)
            self._end_cursor().insertText(f"↑ Show {first} earlier messages", earlier)
        self._first_shown = first
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
        self.scroll_to_bottom()

    def show_earlier(self) -> None:
        if not self._first_shown:
            return
        keep = self._first_shown  # keep this message where the user sees it
        self.show_messages(self._messages, self._limit + EARLIER_STEP)
        anchor = self._label_positions.get(keep)
        if anchor is not None:
            cursor = QTextCursor(self.document())
            cursor.setPosition(anchor)
            self._follow.hold(self.cursorRect(cursor).top() + self.verticalScrollBar().value() - 8)

    # -- one exchange ---------------------------------------------------------------------

    def add_user_message(self, text: str, index: int, message: Message | None = None,
                         attachments: Sequence[Attachment] = ()) -> None:
        self._drop_regenerate()
        self._exchange_start = self._end_cursor().position()
        body = QTextBlockFormat()
        color = self.palette().color(QPalette.ColorRole.Highlight)
        color.setAlpha(40)
        body.setBackground(color)
        body.setLeftMargin(64)
        cursor = self._new_message(body, "You", index)
        cursor.insertBlock(body, QTextCharFormat())
        cursor.insertText(markdown.break_long_runs_text(text))
        images = list(attachments) or (message.attachments if message else [])
        self._images = insert_images(cursor, images, self._images)
        actions = [(link(Action.EDIT, index), "✎ Edit"), *_navigator(message)]
        self._insert_actions(actions, QTextBlockFormat(body))
        self.scroll_to_bottom()

    def begin_reply(self, model: str, index: int | None = None,
                    tool_calls: Sequence[ToolCall] = ()) -> None:
        body = QTextBlockFormat()
        body.setRightMargin(32)
        label = f"Assistant · {model}" if model else "Assistant"
        cursor = self._new_message(body, label, index)
        if tool_calls:  # the calls the reply made, as collapsed rows above its text
            spans = insert_rows(cursor, list(tool_calls), len(self._tool_rows),
                                QColor(self.theme.muted))
            self._tool_rows += zip(tool_calls, spans, strict=True)
        cursor.insertBlock(body, QTextCharFormat())
        self._reply = ReplyView(cursor, self.theme, len(self._code_blocks), len(self._sections))

    def append_reply_text(self, text: str) -> None:
        if self._reply is not None and text:
            with self._follow.growing():
                self._reply.add_text(text)

    def append_reasoning(self, text: str) -> None:
        if self._reply is not None and text:
            plain = text.replace("\r\n", "\n").replace("\r", "\n")
            with self._follow.growing():
                self._reply.add_reasoning(markdown.break_long_runs_text(plain))

    def end_reply(self, message: Message, index: int, *, last: bool = True,
                  unsaved: str = "") -> None:
        """`unsaved`: why the history could not save this reply, said under it."""
        reply, self._reply = self._reply, None
        if reply is None:
            return
        reply.finish(message, unsaved)
        self._code_blocks += reply.finished_blocks
        if reply.reasoning_blocks is not None:
            self._sections[len(self._sections)] = reply.reasoning_blocks
            self.toggle_section(len(self._sections) - 1)  # collapsed once the answer is in
        actions = [(link(Action.COPY_REPLY, index), "Copy")]
        if last and message.state in (ReplyState.INTERRUPTED, ReplyState.STOPPED):
            actions += [(link(Action.REGENERATE), "↻ Retry"), (link(Action.CONTINUE), "→ Continue")]
        elif last:
            actions.append((link(Action.REGENERATE), "↻ Regenerate"))
        self._insert_actions(actions + _navigator(message), QTextBlockFormat())
        if self._follow.following:
            self.scroll_to_bottom()

    def remove_last_exchange(self) -> None:
        """Take back the prompt and reply of a request that failed before any text."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._exchange_start)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        if self.document().isEmpty():
            cursor.setBlockFormat(QTextBlockFormat())
        self._reply = None

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
        muted = QColor(self.theme.muted)
        label = "▾ Thinking" if visible else "▸ Thinking (click to show)"
        cursor.insertText(label, chrome_format(link(Action.TOGGLE, section), muted, bold=True))
        start = header.position()
        doc.markContentsDirty(start, doc.findBlockByNumber(last).position() - start + 1)

    def _toggle_tool_row(self, number: int) -> None:
        if 0 <= number < len(self._tool_rows):
            call, span = self._tool_rows[number]
            toggle_row(self.document(), number, call, span, QColor(self.theme.muted))

    def _anchor_clicked(self, url: QUrl) -> None:
        href = url.toString(QUrl.ComponentFormattingOption.FullyEncoded)
        if (action := parse(href)) is not None:
            if (handler := self._handlers.get(action.action)) is not None:
                handler(action.number)
        elif is_chrome(href):
            pass  # malformed or unknown: none of ours does anything else
        elif (safe := markdown.safe_link(href)) is not None:
            self.link_requested.emit(safe)
        else:
            self.link_refused.emit(href)

    def _copy_code(self, index: int) -> None:
        block = self.code_block(index)
        if block is not None:
            self.code_copy_requested.emit(block.code)

    def _insert_actions(self, actions: list[tuple[str, str]], fmt: QTextBlockFormat) -> None:
        """A line of small links under a message (chrome: never copied)."""
        cursor = self._end_cursor()
        cursor.insertBlock(fmt, QTextCharFormat())
        muted = QColor(self.theme.muted)
        first_live: int | None = None  # Regenerate / Retry / Continue: only on the last reply
        for n, (href, label) in enumerate(actions):
            if n:
                cursor.insertText("   ", chrome_format(link(Action.LABEL), muted))
            start = cursor.position()
            cursor.insertText(label, chrome_format(href, muted))
            if href in LIVE:
                first_live = start if first_live is None else first_live
                self._regenerate = (first_live, cursor.position())

    def _drop_regenerate(self) -> None:
        """Only the last reply offers Regenerate."""
        if self._regenerate is not None:
            cursor = QTextCursor(self.document())
            cursor.setPosition(self._regenerate[0])
            cursor.setPosition(self._regenerate[1], QTextCursor.MoveMode.KeepAnchor)
            cursor.removeSelectedText()
            self._regenerate = None

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
        mime = QMimeData()
        mime.setText(doc.toPlainText().replace(ZWSP, "").strip("\n"))
        mime.setHtml(doc.toHtml().replace(ZWSP, ""))
        return mime

    # -- scrolling ------------------------------------------------------------------------

    def scroll_to_bottom(self) -> None:
        self._follow.to_bottom()

    @property
    def following(self) -> bool:
        return self._follow.following

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._follow.place_button()

    # -- helpers --------------------------------------------------------------------------

    def _end_cursor(self) -> QTextCursor:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        return cursor

    def _new_message(self, body: QTextBlockFormat, label: str, index: int | None) -> QTextCursor:
        if index is not None:
            self._label_positions[index] = self._end_cursor().position()
        heading = QTextBlockFormat(body)
        heading.setTopMargin(MESSAGE_SPACING)
        cursor = self._end_cursor()
        if self.document().isEmpty():
            cursor.setBlockFormat(heading)
        else:
            cursor.insertBlock(heading)
        muted = QColor(self.theme.muted)
        cursor.insertText(label, chrome_format(link(Action.LABEL), muted, bold=True))
        return cursor

    def loadResource(self, _type: int, _name: QUrl) -> object:
        return None  # never load anything: no images, no files, no network


def _navigator(message: Message | None) -> list[tuple[str, str]]:
    """‹ 2 / 3 › for a message that has alternatives (regenerated or edited)."""
    if message is None or message.id is None or message.sibling_count < 2:
        return []
    here = f"{message.sibling_index + 1} / {message.sibling_count}"
    return [(link(Action.PREVIOUS, message.id), "‹"), (link(Action.LABEL), here),
            (link(Action.NEXT, message.id), "›")]


def _numbered(handler: Callable[[int], object]) -> Callable[[int | None], object]:
    """A handler of an action whose links carry a number (`parse` guarantees one)."""
    return lambda number: None if number is None else handler(number)


def _bare(handler: Callable[[], object]) -> Callable[[int | None], object]:
    return lambda _number: handler()
