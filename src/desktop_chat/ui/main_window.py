"""The main window: assembles the widgets and connects them to the controller. No I/O.

It is built in two parts (issue #18: on screen in half a second). The constructor makes what
the first frame shows: the menus' titles, the model row, the message box (typing works at
once: a message sent now waits, in the box, until the rest is there), the status line, and
the sidebar's place. `attach` adds the rest, given the controller: the conversation, the
sidebar's list, documents, menus' entries, shortcuts. Its parts' modules load then, not
before the first frame. The app's own start runs `attach`'s steps one per turn of the event
loop after that frame; `app.build_window` runs them all at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAccessible,
    QAccessibleAnnouncementEvent,
    QCloseEvent,
    QGuiApplication,
    QKeySequence,
    QShortcut,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.model.message import (
    Attachment,
    Conversation,
    Message,
    Passage,
    ReplyState,
    Role,
    Usage,
)
from desktop_chat.ui import icons
from desktop_chat.ui.attachments import AttachmentStrip, image_to_attachment
from desktop_chat.ui.composer import Composer, ComposerBox, Draft, Drafts
from desktop_chat.ui.labels import PlainLabel, PlainStatusBar, shown
from desktop_chat.ui.model_picker import ModelPicker
from desktop_chat.ui.status_line import StatusLine
from desktop_chat.ui.theme import current as current_theme

if TYPE_CHECKING:
    from desktop_chat.core.config.providers import Profile
    from desktop_chat.ui.connections import Connections
    from desktop_chat.ui.controller import ChatController
    from desktop_chat.ui.copy_actions import CopyActions
    from desktop_chat.ui.document_chips import DocumentReader, DocumentStrip
    from desktop_chat.ui.file_menu import FileMenu
    from desktop_chat.ui.library import Library
    from desktop_chat.ui.setup_flow import SetupFlow
    from desktop_chat.ui.sidebar import Sidebar
    from desktop_chat.ui.tool_view import ToolView
    from desktop_chat.ui.transcript import Transcript
    from desktop_chat.ui.transfers import Transfers
    from desktop_chat.ui.welcome import EmptyChat

UNDO_MS = 10_000
STATE_TEXT = {
    ReplyState.COMPLETE: "Ready",
    ReplyState.STOPPED: "Stopped",
    ReplyState.INTERRUPTED: "Interrupted",
    ReplyState.FAILED: "Not sent",
}
# The menu bar's menus, in order; their entries come with `attach` (File, Settings) and the
# tools' view (Tools). Made with the frame, so that the bar does not appear, or grow, later.
MENUS = (("file", "&File"), ("settings", "&Settings"), ("tools", "&Tools"))


class MainWindow(QMainWindow):
    closed = Signal()
    tools: ToolView | None = None  # set by app.py when tools are wired in
    # set by `attach`
    controller: ChatController
    library: Library
    transcript: Transcript
    sidebar: Sidebar
    emptyChat: EmptyChat
    documentReader: DocumentReader
    documentStrip: DocumentStrip
    fileMenu: FileMenu
    copying: CopyActions

    def __init__(self, title: str, *, state: QSettings | None = None, model: str = "",
                 provider: str = "", first_run: bool = False) -> None:
        """What the first frame shows. `model`, `provider`: the active profile's, for the
        model row and the message box's placeholder until the controller is attached;
        `first_run`: no profile yet, the welcome panel will come where the conversation
        goes."""
        super().__init__()
        self.transfers: Transfers | None = None
        self.connections: Connections | None = None
        self.setup: SetupFlow | None = None
        self._state = state
        self.attached = False
        self._restored = False  # `restore_conversation` was called
        self._restoring = False  # the conversation it opens is on its way
        self._send_when_attached = False  # Enter was pressed before `attach` ended
        self._pinned: str | None = None  # a start-up notice, kept until the user acts
        self._save_problem = ""  # why replies are not being saved ("" while they are)
        self.setWindowTitle(title)
        self.setStatusBar(PlainStatusBar())  # before anything puts a message or label in it
        self.resize(1000, 720)
        self.menus = {key: self.menuBar().addMenu(text) for key, text in MENUS}
        self._build_frame(model, first_run)
        self._show_model_names(model, provider)
        self.composer.submitted.connect(self.send)
        self.sendButton.clicked.connect(self.send)
        if state is not None and (geometry := state.value("geometry")) is not None:
            self.restoreGeometry(geometry)
        self.composer.setFocus()

    def attach(self, controller: ChatController, library: Library, *,
               notice: str | None = None, transfers: Transfers | None = None,
               connections: Connections | None = None) -> Iterator[None]:
        """Build the rest of the window around `controller`: a generator of steps, each
        ~5-20 ms; the window is whole when it is exhausted."""
        # Their modules, loaded here (the app's start has loaded them by now, one per turn).
        from desktop_chat.ui.copy_actions import CopyActions
        from desktop_chat.ui.document_chips import DocumentReader, DocumentStrip
        from desktop_chat.ui.file_menu import FileMenu
        from desktop_chat.ui.setup_flow import SetupFlow
        from desktop_chat.ui.sidebar import Sidebar
        from desktop_chat.ui.transcript import Transcript
        from desktop_chat.ui.welcome import EmptyChat

        self.controller = controller
        self.library = library
        self.transfers = transfers
        self.connections = connections
        self.transcript = Transcript(current_theme())
        self.chatStack.addWidget(self.transcript)
        self.chatStack.setCurrentWidget(self.transcript)
        self.chatStack.removeWidget(self._chatPlace)
        self._chatPlace.deleteLater()
        yield
        view = getattr(self.transcript, "viewport", lambda: self.transcript)()
        self.emptyChat = EmptyChat(view)  # the greeting while the chat has no message
        self.emptyChat.show()  # (a widget added to one on screen is hidden until shown)
        self.sidebar = Sidebar()
        self.newChatButton = self.sidebar.newChatButton
        self.conversationList = self.sidebar.conversationList
        self.searchBox = self.sidebar.searchBox
        self._splitter.replaceWidget(0, self.sidebar)
        self._sidebarPlace.deleteLater()
        QWidget.setTabOrder(self.conversationList, self.modelPicker)  # the order seen
        yield
        self.documentStrip = DocumentStrip()
        self.documentReader = DocumentReader(controller.store, controller.tasks, self)
        self.composerBox.add_strip(self.documentStrip)
        self.copying = CopyActions(self, controller, self.transcript)
        self.fileMenu = FileMenu(self, controller, library, transfers, self._state,
                                 menu=self.menus["file"])
        if transfers is not None:
            transfers.failed.connect(self.show_error)
        self._connect()
        self._install_shortcuts()
        yield
        if connections is not None:
            connections.error.connect(self.show_error)
            connections.notice.connect(self._show_startup_notice)
            connections.configured.connect(self._configured)
            self.setup = SetupFlow(self, connections, self.chatStack, self.modelPicker,
                                   menu=self.menus["settings"])
            self.setup.model_changed.connect(lambda: self._show_model(self.controller.model))
            self.setup.start()
        self._show_model(controller.model)
        self._set_streaming(False)  # (which lists the conversations)
        if notice:
            self.show_error(notice, pinned=True)
        self.attached = True
        if self._send_when_attached:
            self._send_when_attached = False
            self.send()

    @property
    def whole(self) -> bool:
        """Every part made, and the conversation left open shown (or none to show)."""
        return self.attached and self._restored and not self.controller.opening

    def restore_conversation(self) -> None:
        """Open the conversation open when the user left, unless they have started or
        opened one since the first frame (the app's start calls this once markdown is
        loaded, after `attach`)."""
        self._restored = True
        if self._state is None or self.controller.conversation_id is not None:
            return
        last = self._state.value("conversation")
        if last is not None and str(last).isdigit() and not self.controller.is_streaming:
            self._restoring = True
            # what was typed meanwhile stays in the box, for this conversation (opening a
            # chat would otherwise keep it as the new chat's draft and empty the box)
            self._draft_key = int(last)
            self.controller.open_chat(int(last))

    def _save_state(self) -> None:
        if self._state is not None:
            self._state.setValue("geometry", self.saveGeometry())
            if self.attached:
                self._state.setValue("conversation", self.controller.conversation_id or "")
            self._state.sync()

    # -- construction ---------------------------------------------------------------------

    def _build_frame(self, model: str, first_run: bool) -> None:
        # the sidebar's place, in its colour, until `attach` puts the sidebar there
        self._sidebarPlace = QWidget(objectName="sidebarPlace")
        self._sidebarPlace.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self._sidebarPlace.setStyleSheet(
            f"QWidget#sidebarPlace {{ background: {current_theme().colors.sidebar}; }}")

        self.modelPicker = ModelPicker(model)
        self.expandSidebarButton = sidebar_button(self)
        self.providerLabel = PlainLabel(objectName="providerLabel")
        self.providerLabel.setStyleSheet(f"color: {current_theme().colors.muted};")
        model_row = self.modelRow = QHBoxLayout()  # SetupFlow adds the demo model's note
        model_row.addWidget(self.expandSidebarButton)
        model_row.addWidget(self.modelPicker)
        model_row.addWidget(self.providerLabel)
        model_row.addStretch(1)

        # It shows what servers said (an error page, a message quoting the key): plain text,
        # secrets redacted, so that it can never pose as the app or show the key.
        self.errorBanner = PlainLabel(objectName="errorBanner")
        self.errorBanner.setAccessibleName("Error")
        self.errorBanner.setWordWrap(True)
        self.errorBanner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._style_error_banner()
        self.chatStack = QStackedWidget()  # the transcript, or the welcome panel on first run
        # the transcript's place, in its colour, until `attach` puts it there (on the first
        # run the welcome panel comes instead, on the window's colour)
        self._chatPlace = QWidget(objectName="transcriptPlace")
        if not first_run:
            self._chatPlace.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
            self._chatPlace.setStyleSheet(
                f"QWidget#transcriptPlace {{ background: {current_theme().colors.window}; }}")
        self.chatStack.addWidget(self._chatPlace)
        self.composer = Composer()
        self.attachmentStrip = AttachmentStrip()
        self.composerBox = ComposerBox(self.composer, self.attachmentStrip)
        self.sendButton = self.composerBox.sendButton
        self.stopButton = self.composerBox.stopButton
        self.drafts = Drafts()
        self._draft_key: int | None = None  # the conversation the composer's draft is for
        self.composerBox.setMaximumWidth(current_theme().column_width)
        compose_row = QHBoxLayout()  # the box sits under the reading column, centred
        compose_row.addStretch(1)
        compose_row.addWidget(self.composerBox, 100)
        compose_row.addStretch(1)
        self.attachButton = self.composerBox.attachButton
        self.composerBox.set_streaming(False)

        chat = QWidget()
        column = QVBoxLayout(chat)
        column.setContentsMargins(8, 8, 8, 8)
        column.addLayout(model_row)
        column.addWidget(self.chatStack, 1)
        column.addWidget(self.errorBanner)
        self._chat_column = column
        column.addLayout(compose_row)

        splitter = self._splitter = QSplitter()
        splitter.addWidget(self._sidebarPlace)
        splitter.addWidget(chat)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 780])
        self.setCentralWidget(splitter)

        self.status = StatusLine(self.statusBar())
        self.modelLabel = self.status.modelLabel
        self.stateLabel = self.status.stateLabel
        self.tokensLabel = self.status.tokensLabel
        self.errorBanner.hide()
        self.undoButton = QPushButton("Undo", objectName="undoButton")
        self.undoButton.setAccessibleName("Undo delete")
        self.statusBar().addPermanentWidget(self.undoButton)
        self.undoButton.hide()
        self._deleted: int | None = None
        self._find = ""  # words to show when the conversation being opened arrives

    def _connect(self) -> None:
        c = self.controller
        self.stopButton.clicked.connect(c.stop)
        self.newChatButton.clicked.connect(c.new_chat)
        self.composerBox.attach_requested.connect(self._attach_clicked)
        c.finished_elsewhere.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        c.prompt_returned_elsewhere.connect(
            lambda key, prompt: self.drafts.give_back(key, prompt.content,
                                                      list(prompt.attachments),
                                                      list(prompt.documents)))
        self.sidebar.open_requested.connect(c.open_chat)
        self.sidebar.rename_requested.connect(self.library.rename)
        self.sidebar.delete_requested.connect(self.delete_conversation)
        self.sidebar.export_requested.connect(
            lambda cid, title, kind: self.fileMenu.ask_export(kind, cid, title))
        self.sidebar.collapse_requested.connect(self.toggle_sidebar)
        self.expandSidebarButton.clicked.connect(self.toggle_sidebar)
        self.sidebar.match_opened.connect(self._find_when_opened)
        self.sidebar.search_changed.connect(self._refresh_conversations)
        self.undoButton.clicked.connect(self._undo_delete)
        self.transcript.copy_reply_requested.connect(self.copying.copy_reply)
        self.transcript.regenerate_requested.connect(c.regenerate)
        self.transcript.continue_requested.connect(c.continue_reply)
        self.transcript.edit_requested.connect(self._start_edit)
        self.transcript.edit_submitted.connect(self._save_edit)
        self.transcript.settings_requested.connect(self._open_settings)
        self.transcript.resend_requested.connect(self.send)
        self.transcript.branch_requested.connect(c.switch_branch)
        self.modelPicker.model_chosen.connect(self._model_picked)
        self.composer.image_pasted.connect(
            lambda image: self.attachmentStrip.add(image_to_attachment(image)))
        self.composer.files_dropped.connect(self._attach_files)
        self._connect_documents()
        c.prompt_sent.connect(self._show_prompt)
        c.reply_started.connect(self.transcript.begin_reply)
        c.reply_resumed.connect(self.transcript.resume_reply)
        c.text_arrived.connect(self.transcript.append_reply_text)
        self.transcript.painted.connect(c.view_painted)
        c.reasoning_arrived.connect(self.transcript.append_reasoning)
        c.notice_changed.connect(self._show_notice)
        c.documents_notice.connect(self.show_error)
        c.reply_finished.connect(self._reply_finished)
        c.context_trimmed.connect(self._show_trimmed)
        c.prompt_returned.connect(self._give_back)
        c.error.connect(self.show_error)
        c.save_problem.connect(self._show_save_problem)
        c.streaming_changed.connect(self._set_streaming)
        c.conversations_changed.connect(self._refresh_conversations)
        self.library.changed.connect(self._refresh_conversations)
        self.library.error.connect(self.show_error)
        c.conversation_opened.connect(self._show_conversation)
        self.transcript.code_copy_requested.connect(self.copying.copy_code)
        self.transcript.link_requested.connect(self.copying.confirm_link)
        self.transcript.link_refused.connect(self.copying.refuse_link)
        QGuiApplication.instance().paletteChanged.connect(self._scheme_changed)

    def _install_shortcuts(self) -> None:
        bindings = [
            (QKeySequence(Qt.Key.Key_Escape), self.controller.stop),
            (QKeySequence("Ctrl+Shift+C"), self.copy_last_reply),
            (QKeySequence("Ctrl+Shift+;"), self.copy_last_code_block),
            (QKeySequence("Ctrl+Shift+O"), self.controller.new_chat),
            (QKeySequence("Shift+Esc"), self.composer.setFocus),
            (QKeySequence.StandardKey.Find, self._focus_search),
            (QKeySequence("Ctrl+/"), self._show_shortcuts),
            (QKeySequence("Ctrl+B"), self.toggle_sidebar),
        ]
        for sequence, slot in bindings:
            shortcut = QShortcut(sequence, self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)

    def _show_shortcuts(self) -> None:
        from desktop_chat.ui.shortcuts_help import show_shortcuts

        show_shortcuts(self)

    # -- actions --------------------------------------------------------------------------

    def send(self) -> None:
        """Send what the composer holds; it is cleared only once the controller took it.
        Before `attach` has ended, it is sent then (it stays in the box until it is)."""
        if not self.attached:
            self._send_when_attached = bool(self.composer.toPlainText().strip())
            return
        prompt = self.composer.toPlainText()
        attachments = self.attachmentStrip.attachments
        documents = self.documentStrip.documents
        if not (prompt.strip() or attachments or documents or self.documentStrip.reading):
            return
        if self.controller.is_streaming:
            if not self.controller.shows_reply:  # the draft stays; say why nothing happens
                self.statusBar().showMessage(
                    "A reply is still being written in another chat: wait for it, or stop "
                    "it (Esc), to send this.", 8000)
            return
        if reading := self.documentStrip.reading:
            self.show_error(f"'{reading[0]}' is still being read. Send again once its chip "
                            "shows its pages and tokens; your message stays here.")
            return
        self.modelPicker.commit()  # a model name typed but not yet confirmed
        self._hide_error()
        if self.controller.send(prompt, attachments, documents):
            self.attachmentStrip.take()
            self.documentStrip.take()
            self.composer.clear()

    def _show_prompt(self, message: Message, index: int) -> None:
        self.emptyChat.hide()
        self._draft_key = self.controller.conversation_id  # a new chat has its id now
        self.transcript.add_user_message(message.content, index,
                                         attachments=message.attachments,
                                         documents=message.documents)

    def _give_back(self, prompt: Message) -> None:
        """A prompt that could not be sent returns to the composer, with its images."""
        self.composer.give_back(prompt.content)
        if prompt.attachments:
            self.attachmentStrip.set_attachments(prompt.attachments)
        if prompt.documents:
            self.documentStrip.set_documents(prompt.documents)

    # -- documents ------------------------------------------------------------------------

    def _connect_documents(self) -> None:
        reader, strip = self.documentReader, self.documentStrip
        reader.progressed.connect(strip.set_progress)
        reader.finished.connect(strip.set_ready)
        reader.finished.connect(lambda _key, ref: self.controller.document_ready(ref))
        reader.failed.connect(self._document_failed)
        reader.scanned.connect(self._document_scanned)
        reader.pages_ready.connect(self._pages_ready)
        strip.removed.connect(reader.cancel)
        strip.pages_requested.connect(self._send_pages)
        self.transcript.passage_requested.connect(self._show_passage)
        self.transcript.context_requested.connect(self._show_sent_context)

    def _attach_clicked(self) -> None:
        """Files, or (when tool servers offer resources) a menu: files or a resource."""
        menu = self.tools.context.attach_menu(self._choose_files) if self.tools else None
        if menu is None:
            self._choose_files()
        else:
            menu.popup(self.attachButton.mapToGlobal(self.attachButton.rect().topLeft()))

    def _choose_files(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        from desktop_chat.ui.document_chips import ATTACH_FILTER

        dialog = QFileDialog(self, "Attach files")
        dialog.setObjectName("attachDialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dialog.setNameFilters([ATTACH_FILTER, "All files (*)"])
        dialog.filesSelected.connect(self._attach_files)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()  # not exec(): a reply may be streaming

    def _document_failed(self, key: int, message: str) -> None:
        self.documentStrip.drop(key)
        self.show_error(message)

    def _document_scanned(self, key: int, path: str, pages: int) -> None:
        """A PDF without text: said, and offered as page images to a model that sees."""
        from desktop_chat.core.documents.pages import scanned_message

        profile = self.controller.profile
        sees = profile is None or profile.takes_images
        self.show_error(scanned_message(os.path.basename(path), pages, sees))
        if sees:
            self.documentStrip.set_scanned(key, path, pages)
        else:
            self.documentStrip.drop(key)

    def _send_pages(self, key: int, path: str) -> None:
        self.documentStrip.set_drawing(key)
        self.documentReader.read_pages(key, path)

    def _pages_ready(self, key: int, images: list[Attachment]) -> None:
        self.documentStrip.drop(key)
        for image in images:
            self.attachmentStrip.add(image)
        if self.errorBanner.isVisible() and "no text layer" in self.errorBanner.text():
            self._hide_error()  # done what it offered
        self.composer.setFocus()

    def _show_passage(self, passage: Passage) -> None:
        from desktop_chat.ui.document_chips import TextViewer

        text = self.documentReader.passage_text(passage)
        TextViewer(passage.where, text, self).show()

    def _show_sent_context(self, index: int) -> None:
        from desktop_chat.ui.document_chips import TextViewer

        messages = self.controller.session.messages
        if not 0 < index < len(messages) or not messages[index].passages:
            return
        text = self.documentReader.sent_context(messages[index].passages,
                                                messages[index - 1].content)
        TextViewer("What was sent with this message", text, self).show()

    def _attach_files(self, paths: list[str]) -> None:
        images, documents = self.documentReader.split(paths)
        self.documentStrip.budget = self.controller.document_budget
        for path in documents:
            self.documentStrip.add_reading(self.documentReader.read(path),
                                           os.path.basename(path))
        for path in images:
            try:
                self.attachmentStrip.add(self.controller.load_image(path))
            except ValueError as exc:
                self.show_error(str(exc))

    def delete_conversation(self, conversation_id: int) -> None:
        if self.controller.is_replying_in(conversation_id):
            self.statusBar().showMessage("A reply is being written in this chat: stop it "
                                         "(Esc) before deleting the chat.", 8000)
            return
        if not self.library.delete(conversation_id):
            return  # the controller said why; nothing changed
        self._deleted = conversation_id
        self.undoButton.show()
        self.statusBar().showMessage("Conversation deleted.", UNDO_MS)
        QTimer.singleShot(UNDO_MS, self._forget_undo)

    def _undo_delete(self) -> None:
        deleted, self._deleted = self._deleted, None
        self._forget_undo()
        if deleted is not None and self.library.restore(deleted):
            self.controller.open_chat(deleted)
            self.statusBar().showMessage("Conversation restored.", 3000)

    def _forget_undo(self) -> None:
        self._deleted = None
        self.undoButton.hide()

    def _start_edit(self, index: int) -> None:
        """Edit in place: the bubble becomes an editor (Save & send, Cancel; Esc cancels and
        nothing changes). Only a message the user wrote, in the conversation shown."""
        messages = self.controller.session.messages
        if (self.controller.is_streaming or not 0 <= index < len(messages)
                or messages[index].role is not Role.USER):
            return
        self.transcript.start_edit(index, messages[index].content)

    def _save_edit(self, index: int, text: str) -> None:
        """Sent as a new branch; the old message and what followed it stay as another."""
        self._hide_error()
        if self.controller.edit_and_resend(index, text):
            self.transcript.finish_edit()

    def _open_settings(self) -> None:
        if self.setup is not None:
            self.setup.open_settings()

    def toggle_sidebar(self) -> None:
        """Hide or show the conversation list (the button, or Ctrl+B)."""
        shown = not self.sidebar.isVisible()
        self.sidebar.setVisible(shown)
        self.expandSidebarButton.setVisible(not shown)
        (self.newChatButton if shown else self.composer).setFocus()

    def _find_when_opened(self, words: str) -> None:
        self._find = words  # a search hit is opening: show it at the match

    def _focus_search(self) -> None:
        if not self.sidebar.isVisible():
            self.toggle_sidebar()
        self.searchBox.setFocus()
        self.searchBox.selectAll()

    def copy_last_reply(self) -> bool:
        return self.copying.copy_last_reply()

    def copy_last_code_block(self) -> bool:
        return self.copying.copy_last_code_block()

    def _scheme_changed(self) -> None:
        for part in (self.sidebar, self.composerBox, self.modelPicker):
            part.restyle()
        self.providerLabel.setStyleSheet(f"color: {current_theme().colors.muted};")
        self.expandSidebarButton.setIcon(icons.icon("sidebar", current_theme().colors.muted))
        self.emptyChat.restyle()
        self.status.restyle()
        self.transcript.set_theme(current_theme())
        self._style_error_banner()
        if not self.controller.is_streaming:
            self.transcript.show_messages(self.controller.session.conversation.messages)

    def _style_error_banner(self) -> None:
        c = current_theme().colors
        self.errorBanner.setStyleSheet(
            f"QLabel#errorBanner {{ background: {c.danger_surface}; color: {c.danger}; "
            f"border: 1px solid {c.danger_border}; border-radius: 8px; padding: 6px 10px; }}")

    def show_error(self, message: str, *, pinned: bool = False) -> None:
        """`pinned`: a start-up notice (damaged settings, no key); reopening a chat keeps it.
        (A reply's error, with what the server sent under "Details", is a card in the
        transcript instead.)"""
        self._pinned = message if pinned else None
        self.errorBanner.setText(f"⚠ {message}")
        self.errorBanner.show()

    def _show_startup_notice(self, message: str) -> None:
        """A notice start-up work found after the first frame (no key): kept like the ones
        found before it, and never in place of one of those."""
        if self._pinned is None:
            self.show_error(message, pinned=True)

    def shown_error(self) -> str:
        """The error the window shows now: the banner's, else the error card at the end of
        the conversation ("" for none)."""
        if self.errorBanner.isVisible():
            return self.errorBanner.text()
        return self.transcript.error_text()

    def _hide_error(self) -> None:
        self._pinned = None
        self.errorBanner.hide()

    # -- controller -> view ---------------------------------------------------------------

    def _set_streaming(self, streaming: bool) -> None:
        """The sidebar and New chat stay usable: a reply goes on in its own conversation."""
        self.composerBox.set_streaming(streaming)
        self._refresh_conversations()  # the chat being written in is marked
        if streaming:
            self.stateLabel.setText("Generating…")

    def _reply_finished(self, reply: Message) -> None:
        state = STATE_TEXT.get(reply.state, "")
        self.stateLabel.setText(f"{state} · not saved" if self._save_problem else state)
        # what the server sent (an error page as text) goes under the card's Details
        details = self.controller.last_error_details if reply.error else ""
        if reply.state is ReplyState.FAILED and self._prompt_withdrawn(reply):
            # the prompt is back in the composer; the card says why where the reply would be
            self.transcript.remove_last_exchange(
                _with_details(reply.error or "The message was not sent.", details))
        else:
            self.transcript.end_reply(reply, len(self.controller.session.messages) - 1,
                                      unsaved=self._save_problem, details=details)
        QAccessible.updateAccessibility(QAccessibleAnnouncementEvent(
            self.transcript, f"Reply {state.lower()}: {shown(reply.error)}" if reply.error
            else "Reply finished"))
        # the error is said once, in its card in the transcript: no banner repeating it
        self.status.show_usage(reply.usage or last_usage(self.controller.session.messages),
                               self.controller.usage_totals(),
                               self.controller.profile)

    def _prompt_withdrawn(self, reply: Message) -> bool:
        """A failed reply whose prompt the session took back (nothing arrived for a new
        prompt); a failed regenerate or continue keeps its place."""
        return not any(m is reply for m in self.controller.session.messages)

    def _show_save_problem(self, problem: str) -> None:
        """Said at once, kept until saving works again; the text stays in the window."""
        shown = _save_banner(self._save_problem) if self._save_problem else None
        self._save_problem = problem
        if problem:
            self.show_error(_save_banner(problem), pinned=True)
            self.stateLabel.setText("Not saved")
            return
        if shown is not None and self._pinned == shown:
            self._hide_error()
        if not self.controller.is_streaming:  # the "Not saved" notes go with a redraw
            self.transcript.show_messages(self.controller.session.messages)
        self.statusBar().showMessage("Saved.", 3000)

    def _show_trimmed(self, turns: int) -> None:
        from desktop_chat.core.chat.context import trim_notice

        if notice := trim_notice(turns):
            self.statusBar().showMessage(notice, 10_000)

    def _show_notice(self, notice: str) -> None:
        self.stateLabel.setText(notice or "Generating…")

    def _switch_draft(self) -> None:
        """Keep the composer's draft with the conversation it was typed in; show this one's."""
        key = self.controller.conversation_id
        if key == self._draft_key:
            return
        self.drafts.keep(self._draft_key, Draft(self.composer.toPlainText(),
                                                self.attachmentStrip.take(),
                                                self.documentStrip.take()))
        self._draft_key = key
        draft = self.drafts.take(key)
        self.composer.setPlainText(draft.text)
        self.composer.moveCursor(self.composer.textCursor().MoveOperation.End)
        self.attachmentStrip.set_attachments(draft.attachments)
        self.documentStrip.set_documents(draft.documents)

    def _show_conversation(self, conversation: Conversation) -> None:
        self._switch_draft()
        self.emptyChat.setVisible(not conversation.messages)
        at_start, self._restoring = self._restoring, False
        self.transcript.show_messages(conversation.messages, at_start=at_start)
        if self._pinned is None:
            self.errorBanner.hide()
        if at_start:  # its row is selected a turn later: two short pauses, not one longer
            QTimer.singleShot(0, self._refresh_conversations)
        else:
            self._refresh_conversations()
        self.modelPicker.show_choice(self.controller.model)  # a chat may have its own model
        self._show_model(self.controller.model)
        self.status.show_usage(last_usage(conversation.messages),
                               self.controller.usage_totals(), self.controller.profile)
        words, self._find = self._find, ""
        if words and not self.controller.shows_reply:
            scroll_to_words(self.transcript, words)

    def _refresh_conversations(self) -> None:
        query = self.searchBox.text()
        if query.strip():
            self.sidebar.show_hits(self.library.search(query), self.controller.conversation_id)
        else:
            self.sidebar.show_conversations(self.library.conversations(),
                                            self.controller.conversation_id,
                                            streaming=self.controller.streaming_conversation_id)

    def _model_picked(self, model: str) -> None:
        if model.strip():
            self.controller.set_model(model)
            self._show_model(self.controller.model)

    def _show_model(self, model: str) -> None:
        profile = self.controller.profile
        self._show_model_names(model, profile.name if profile else "")
        self.emptyChat.show_model(model, profile.name if profile else "")

    def _show_model_names(self, model: str, provider: str) -> None:
        self.composer.show_model(model)
        self.providerLabel.setText(provider)
        self.status.show_model(model, provider)

    def _configured(self, profile: Profile | None) -> None:
        self._show_model(self.controller.model)
        if profile is not None:
            self._hide_error()

    def add_below_conversation(self, widget: QWidget) -> None:
        """A panel between the conversation and the message box (the tools' activity)."""
        self._chat_column.insertWidget(self._chat_column.indexOf(self.chatStack) + 1, widget)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._save_state()
        self.closed.emit()
        super().closeEvent(event)


def last_usage(messages: list[Message]) -> Usage | None:
    """The newest reply's token use: how much context the conversation fills now."""
    for message in reversed(messages):
        if message.role is Role.ASSISTANT and message.usage is not None:
            return message.usage
    return None


def sidebar_button(window: QWidget) -> QToolButton:
    """Shows the sidebar again once hidden (at the top of the conversation)."""
    button = QToolButton(window, objectName="expandSidebarButton")
    button.setAccessibleName("Show the sidebar")
    button.setToolTip("Show the sidebar (Ctrl+B)")
    button.setIcon(icons.icon("sidebar", current_theme().colors.muted))
    button.setAutoRaise(True)
    button.hide()
    return button


def scroll_to_words(transcript: QWidget, words: str) -> None:
    """Select and show the first place `words` occur in the transcript (a search hit)."""
    find = getattr(transcript, "find", None)
    if callable(find):
        transcript.moveCursor(QTextCursor.MoveOperation.Start)  # type: ignore[attr-defined]
        find(words)


def _save_banner(problem: str) -> str:
    return (f"Replies are not being saved: {problem.rstrip('.')}. What you see stays here "
            "and can be copied; saving resumes by itself when it can.")


def _with_details(summary: str, details: str) -> str:
    """An error card's text: its details (the server's own words) after a blank line."""
    return f"{summary}\n\n{details}" if details.strip() else summary
