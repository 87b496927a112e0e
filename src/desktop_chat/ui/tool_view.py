"""Wires the tools into the window: the activity panel (tool rows and the approval card) under
the conversation, the Tools menu (per-conversation switch, Settings → Tools), failures said in
the window, and the servers started once the window is up."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent, QAction
from PySide6.QtWidgets import QDialog, QWidget

from desktop_chat.core.model.message import Message, ToolCall
from desktop_chat.core.tools.consent import Decision
from desktop_chat.core.tools.host import ToolInfo
from desktop_chat.ui.server_context import ServerContext
from desktop_chat.ui.tool_rows import ToolActivity
from desktop_chat.ui.tools import ToolService

if TYPE_CHECKING:
    from desktop_chat.ui.main_window import MainWindow


class ToolView:
    def __init__(self, window: MainWindow, service: ToolService) -> None:
        self.window = window
        self.service = service
        self.activity = ToolActivity()
        self.approval = self.activity.approval
        window.add_below_conversation(self.activity)
        self.context = ServerContext(window, service)  # prompts as `/` commands, resources
        c = window.controller
        c.tool_approval_requested.connect(self._ask)
        c.tool_calls_changed.connect(self.activity.show_calls)
        c.reply_started.connect(self._reply_shown)
        c.reply_finished.connect(self._finished)
        c.conversation_opened.connect(self._conversation_shown)
        c.streaming_changed.connect(lambda streaming: streaming or self.approval.dismiss())
        self.approval.answered.connect(self._answered)
        service.failed.connect(window.show_error)
        menu = window.menus["tools"]
        self.useTools = QAction("Use tools in this conversation", window, checkable=True)
        self.useTools.setObjectName("useToolsAction")
        self.useTools.toggled.connect(self._use_tools)
        menu.addAction(self.useTools)
        self.settingsAction = QAction("Tool servers…", window)
        self.settingsAction.setObjectName("toolSettingsAction")
        self.settingsAction.triggered.connect(self.open_settings)
        menu.addAction(self.settingsAction)
        self._sync_menu()
        for problem in service.problems:
            window.show_error(problem)
        QTimer.singleShot(0, service.start)  # after the window is up; never waited for

    def _ask(self, call: ToolCall, tool: ToolInfo) -> None:
        controller = self.window.controller
        if not controller.shows_reply:  # its chat is not on screen: the card waits for it
            title = controller.streaming_title or "another chat"
            self.window.statusBar().showMessage(
                f"A tool call in “{title}” is waiting for your approval: open that chat to "
                "answer it, or stop the reply (Esc).", 15_000)
            return
        self.activity.show()
        self.approval.ask(call, tool)
        QAccessible.updateAccessibility(QAccessibleAnnouncementEvent(
            self.approval, f"Approval needed: {tool.server} › {tool.name}"))

    def _conversation_shown(self, _conversation: object) -> None:
        self._sync_menu()
        if not self.window.controller.shows_reply:  # the calls belong to the other chat
            self.activity.clear()

    def _reply_shown(self, _model: str) -> None:
        """A reply starts, or the chat it streams into is shown again: its calls so far,
        and the card if one of them waits for an answer."""
        self.activity.clear()
        controller = self.window.controller
        reply = controller.reply_in_flight
        if reply is not None and reply.tool_calls:
            self.activity.show_calls(reply)
        if controller.pending_approval is not None:
            self._ask(*controller.pending_approval)

    def _answered(self, decision: Decision) -> None:
        self.approval.dismiss()
        self.window.controller.answer_tool(decision)

    def _finished(self, reply: Message) -> None:
        self.approval.dismiss()
        if reply.tool_calls:  # the transcript now shows them as rows, with the reply
            self.window.transcript.show_messages(self.window.controller.session.messages)
        self.activity.clear()

    def _sync_menu(self) -> None:
        self.useTools.blockSignals(True)
        self.useTools.setChecked(not self.window.controller.overrides.tools_off)
        self.useTools.blockSignals(False)

    def _use_tools(self, on: bool) -> None:
        controller = self.window.controller
        try:
            controller.set_overrides(dataclasses.replace(controller.overrides, tools_off=not on))
        except Exception as exc:  # StoreError: the choice still applies to this session
            self.window.show_error(str(exc))

    def open_settings(self) -> QDialog:
        from desktop_chat.ui.settings_tools import ToolsDialog

        dialog = ToolsDialog(self.service, self.window)
        dialog.open()  # never exec(): a reply may be streaming
        return dialog

    def settings_page(self) -> QWidget:
        """Settings → Tools."""
        from desktop_chat.ui.settings_tools import ToolsPage

        return ToolsPage(self.service)
