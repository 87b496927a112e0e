"""Tool calls in the window: compact collapsible rows (icon, `server › tool`, duration,
state) that expand to the arguments and the result.

`ToolActivity` shows the calls of the reply in flight under the conversation, with the
approval card; `insert_rows` writes a finished reply's calls into the transcript document.
Both show only plain text (results are untrusted model input: nothing is rendered, fetched
or linked), and a long result is cut in view — the history keeps it whole.
"""

from __future__ import annotations

from PySide6.QtGui import (
    QColor,
    QFontDatabase,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import QPlainTextEdit, QToolButton, QVBoxLayout, QWidget

from desktop_chat.core.model.message import Message, ToolCall, ToolCallState
from desktop_chat.core.render import markdown
from desktop_chat.core.render.actions import Action, link
from desktop_chat.ui.reply_view import chrome_format
from desktop_chat.ui.tool_approval import ToolApprovalCard, pretty_arguments

VIEW_RESULT_CHARS = 4000
ICONS = {
    ToolCallState.REQUESTED: "?", ToolCallState.RUNNING: "…", ToolCallState.DONE: "✓",
    ToolCallState.FAILED: "⚠", ToolCallState.DENIED: "✕", ToolCallState.CANCELLED: "■",
    ToolCallState.INTERRUPTED: "⚠",
}
STATE_WORDS = {
    ToolCallState.REQUESTED: "waiting for your approval", ToolCallState.RUNNING: "running",
    ToolCallState.DONE: "done", ToolCallState.FAILED: "failed",
    ToolCallState.DENIED: "denied", ToolCallState.CANCELLED: "stopped",
    ToolCallState.INTERRUPTED: "interrupted",
}


def row_title(call: ToolCall, expanded: bool) -> str:
    took = f" · {call.duration_s:.1f} s" if call.duration_s is not None else ""
    arrow = "▾" if expanded else "▸"
    return f"{arrow} {ICONS[call.state]} {call.label}{took} · {STATE_WORDS[call.state]}"


def details(call: ToolCall) -> str:
    """Arguments and result as plain text, the result cut at VIEW_RESULT_CHARS."""
    result = call.result_for_model if not call.state.is_open else ""
    if len(result) > VIEW_RESULT_CHARS:
        more = len(result) - VIEW_RESULT_CHARS
        result = (f"{result[:VIEW_RESULT_CHARS]}\n… {more:,} more characters (complete in "
                  "the history and the JSON export)")
    text = f"Arguments:\n{pretty_arguments(call.arguments)}"
    return text + (f"\n\nResult:\n{result}" if result else "")


class _Row(QWidget):
    def __init__(self, call: ToolCall) -> None:
        super().__init__()
        self.call = call
        self.header = QToolButton(objectName="toolCallRow")
        self.header.setAutoRaise(True)
        self.header.setCheckable(True)
        self.body = QPlainTextEdit(objectName="toolCallDetails")
        self.body.setReadOnly(True)
        self.body.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.body.setMaximumHeight(200)
        self.body.hide()
        self.header.toggled.connect(self._toggle)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.header)
        layout.addWidget(self.body)
        self.refresh()

    def refresh(self) -> None:
        expanded = self.header.isChecked()
        self.header.setText(row_title(self.call, expanded))
        self.header.setAccessibleName(row_title(self.call, expanded)[2:])
        if expanded:
            self.body.setPlainText(details(self.call))

    def _toggle(self, expanded: bool) -> None:
        self.body.setVisible(expanded)
        self.refresh()


class ToolActivity(QWidget):
    """The reply in flight's tool calls and the approval card, under the conversation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolActivity")
        self._rows: dict[int, _Row] = {}  # by id() of the call
        self._list = QVBoxLayout()
        self._list.setSpacing(0)
        self.approval = ToolApprovalCard()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        layout.addLayout(self._list)
        layout.addWidget(self.approval)
        self.hide()

    @property
    def rows(self) -> list[_Row]:
        return list(self._rows.values())

    def show_calls(self, reply: Message) -> None:
        for call in reply.tool_calls:
            row = self._rows.get(id(call))
            if row is None:
                row = self._rows[id(call)] = _Row(call)
                self._list.addWidget(row)
            row.refresh()
        self.setVisible(bool(self._rows) or self.approval.isVisible())

    def clear(self) -> None:
        for row in self._rows.values():
            row.deleteLater()
        self._rows.clear()
        self.approval.dismiss()
        self.hide()


def insert_rows(cursor: QTextCursor, calls: list[ToolCall], first_row: int,
                muted: QColor) -> list[tuple[int, int]]:
    """Write `calls` at `cursor` as a header line each (a TOOL link that toggles it) and its
    details, hidden; returns each row's (header, last detail) block numbers."""
    spans = []
    mono = QTextCharFormat()
    mono.setFontFamilies([QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
                          .family()])
    mono.setForeground(muted)
    for number, call in enumerate(calls, first_row):
        cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        header = cursor.block().blockNumber()
        cursor.insertText(row_title(call, False),
                          chrome_format(link(Action.TOOL, number), muted, bold=True))
        for line in markdown.break_long_runs_text(details(call)).split("\n"):
            cursor.insertBlock(QTextBlockFormat(), mono)
            cursor.insertText(line, mono)
            cursor.block().setVisible(False)
        spans.append((header, cursor.block().blockNumber()))
    return spans


def toggle_row(doc: QTextDocument, number: int, call: ToolCall, span: tuple[int, int],
               muted: QColor) -> None:
    """Show or hide row `number`'s details and turn its arrow."""
    header, last = span
    visible = not doc.findBlockByNumber(header + 1).isVisible()
    for number in range(header + 1, last + 1):
        doc.findBlockByNumber(number).setVisible(visible)
    cursor = QTextCursor(doc.findBlockByNumber(header))
    cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
    cursor.insertText(row_title(call, visible),
                      chrome_format(link(Action.TOOL, number), muted, bold=True))
    start = doc.findBlockByNumber(header).position()
    doc.markContentsDirty(start, doc.findBlockByNumber(last).position() - start + 1)
