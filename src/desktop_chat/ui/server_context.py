"""MCP prompts and resources in the composer.

Typing `/` at the start of the message opens a menu of what the ready servers offer: their
prompts (`server › prompt`, with the description) and their resources (attached as context).
Typing filters it; Up/Down move, Enter or Tab picks, Esc closes it and leaves the text as it
is. The composer keeps the focus throughout: the menu only takes the keys it needs.

A prompt with arguments asks for them in a small form above the message box (Enter inserts,
Esc cancels); the prompt is then fetched from its server and its text put into the message box,
its images and embedded resources attached, all visible before anything is sent. A resource
is read from its server and attached like a file: text and documents as document chips (the
document reader keeps and sends them), images as images; other binary data is refused, saying
why. The attach button offers the same resources ("From MCP server").
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.model.message import Attachment
from desktop_chat.core.tools.catalog import (
    PromptInfo,
    ResourceData,
    ResourceInfo,
    ResourceTemplate,
    attachable,
)
from desktop_chat.core.tools.host import ToolError
from desktop_chat.ui.composer import joined
from desktop_chat.ui.labels import PlainLabel, plain_tooltip
from desktop_chat.ui.theme import current

if TYPE_CHECKING:
    from desktop_chat.ui.main_window import MainWindow
    from desktop_chat.ui.tools import ToolService

log = logging.getLogger("desktop_chat.tools")

Offer = PromptInfo | ResourceInfo | ResourceTemplate
MENU_ROWS = 7  # rows shown before the menu scrolls
NAV_KEYS = {Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Return, Qt.Key.Key_Enter,
            Qt.Key.Key_Tab, Qt.Key.Key_Escape, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown}


def slash_query(text: str) -> str | None:
    """What follows a `/` that starts the message, while it is one word; else None."""
    if not text.startswith("/") or any(c.isspace() for c in text):
        return None
    return text[1:]


def matches(offer: Offer, query: str) -> bool:
    haystack = f"{offer.server} {offer.name} {offer.description}".lower()
    return all(word in haystack for word in query.lower().replace("›", " ").split())


def ranked(offers: list[Offer], query: str) -> list[Offer]:
    """The offers `query` matches: names that are it first, then names starting with it,
    then names holding it, then the rest (prompts before resources within each)."""
    q = query.lower()

    def rank(offer: Offer) -> int:
        name = offer.name.lower()
        return 0 if name == q else 1 if name.startswith(q) else 2 if q in name else 3

    return sorted((o for o in offers if matches(o, query)), key=rank)


# -- the menu ----------------------------------------------------------------------------------


class CommandMenu(QFrame):
    """The `/` menu: floats above the message box; never takes the focus."""

    picked = Signal(object)  # PromptInfo | ResourceInfo | ResourceTemplate

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("commandMenu")
        self.setAccessibleName("Prompts and resources of the tool servers")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list = QListWidget(self, objectName="commandList")
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setAccessibleName("Prompts and resources")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemClicked.connect(lambda item: self._pick(item))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        self.restyle()
        self.hide()

    def restyle(self) -> None:
        theme = current()
        c = theme.colors
        self.setStyleSheet(
            f"QFrame#commandMenu {{ background: {c.window}; border: 1px solid {c.faint};"
            f" border-radius: {theme.radius.card}px; }}"
            " QListWidget#commandList { background: transparent; border: none; }"
            f" QListWidget#commandList::item {{ border-radius: {theme.radius.button}px; }}"
            f" QListWidget#commandList::item:selected {{ background: {c.hover}; }}"
            f" QLabel {{ color: {c.text}; background: transparent; }}"
            f" QLabel[muted=\"true\"] {{ color: {c.muted}; }}")

    def show_offers(self, offers: list[Offer]) -> None:
        """Show these; with none, the menu closes (Enter then sends the text as typed)."""
        self.list.clear()
        for offer in offers:
            self._add_row(offer)
        if not offers:
            self.hide()
            return
        self.list.setCurrentRow(0)
        self.show()
        self.raise_()

    def _add_row(self, offer: Offer) -> None:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, offer)
        is_prompt = isinstance(offer, PromptInfo)
        what = "Prompt" if is_prompt else "Attach as context"
        if isinstance(offer, ResourceTemplate):
            what += " · fill in " + ", ".join(offer.variables)
        detail = " · ".join(x for x in (what, offer.description.strip().splitlines()[0]
                                        if offer.description.strip() else "") if x)
        # what screen readers read (the row widget draws the text)
        item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{offer.label} — {detail}")
        row = QWidget()
        column = QVBoxLayout(row)
        column.setContentsMargins(8, 4, 8, 4)
        column.setSpacing(0)
        title = PlainLabel(("/ " if is_prompt else "+ ") + offer.label)
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        note = PlainLabel(detail)
        note.setProperty("muted", "true")
        column.addWidget(title)
        column.addWidget(note)
        item.setSizeHint(row.sizeHint())
        self.list.addItem(item)
        self.list.setItemWidget(item, row)

    @property
    def offers(self) -> list[Offer]:
        return [offer for i in range(self.list.count())
                if (offer := self.list.item(i).data(Qt.ItemDataRole.UserRole)) is not None]

    def move(self, step: int) -> None:  # type: ignore[override]
        count = len(self.offers)
        if count:
            self.list.setCurrentRow((self.list.currentRow() + step) % count)

    def pick_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self._pick(item)

    def _pick(self, item: QListWidgetItem) -> None:
        offer = item.data(Qt.ItemDataRole.UserRole)
        if offer is not None:
            self.hide()
            self.picked.emit(offer)

    def place(self, anchor: QWidget) -> None:
        """Just above `anchor` (the message box), as wide as it."""
        rows = max(1, min(MENU_ROWS, self.list.count()))
        row_height = max((self.list.sizeHintForRow(i) for i in range(self.list.count())),
                         default=24)
        height = rows * row_height + 12
        top_left = anchor.mapTo(self.parentWidget(), QPoint(0, 0))
        self.setGeometry(top_left.x(), max(0, top_left.y() - height - 4), anchor.width(),
                         height)


# -- the arguments form ------------------------------------------------------------------------


class _Field(QLineEdit):
    """A line that keeps Esc (closing the form) from the window's Stop shortcut."""

    escaped = Signal()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and (
                isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.escaped.emit()
            return
        super().keyPressEvent(event)


class PromptForm(QFrame):
    """A prompt's arguments, above the message box. Enter inserts, Esc cancels."""

    submitted = Signal(object, dict)  # PromptInfo | ResourceTemplate, {argument: value}
    cancelled = Signal()
    visibility_changed = Signal(bool)

    def setVisible(self, visible: bool) -> None:
        super().setVisible(visible)
        self.visibility_changed.emit(visible)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("promptArguments")
        self.setAccessibleName("Prompt arguments")
        self.prompt: PromptInfo | ResourceTemplate | None = None
        self.fields: dict[str, QLineEdit] = {}
        self.title = PlainLabel("")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.description = PlainLabel("")
        self.description.setWordWrap(True)
        self.message = PlainLabel("", objectName="promptArgumentsMessage")
        self.form = QFormLayout()
        self.insertButton = QPushButton("Insert", objectName="insertPromptButton")
        self.insertButton.setToolTip("Put the prompt into the message box (Enter)")
        self.cancelButton = QPushButton("Cancel", objectName="cancelPromptButton")
        self.cancelButton.setToolTip("Close without changing the message (Esc)")
        self.insertButton.clicked.connect(self.submit)
        self.cancelButton.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.message, 1)
        buttons.addWidget(self.cancelButton)
        buttons.addWidget(self.insertButton)
        layout = QVBoxLayout(self)
        theme = current()
        layout.setContentsMargins(theme.space.m, theme.space.s, theme.space.m, theme.space.s)
        layout.addWidget(self.title)
        layout.addWidget(self.description)
        layout.addLayout(self.form)
        layout.addLayout(buttons)
        self.restyle()
        self.hide()

    def restyle(self) -> None:
        theme = current()
        c = theme.colors
        self.setStyleSheet(
            f"QFrame#promptArguments {{ border: 1px solid {c.faint};"
            f" border-radius: {theme.radius.card}px; }}"
            f" QLabel#promptArgumentsMessage {{ color: {c.danger}; }}")

    def ask(self, prompt: PromptInfo | ResourceTemplate) -> None:
        self.prompt = prompt
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields = {}
        attach = isinstance(prompt, ResourceTemplate)
        self.title.setText(f"{'+' if attach else '/'} {prompt.label}")
        self.insertButton.setText("Attach" if attach else "Insert")
        self.description.setText(prompt.description)
        self.description.setVisible(bool(prompt.description))
        self.message.setText("")
        for argument in prompt.arguments:
            field = _Field(objectName=f"promptArgument_{argument.name}")
            field.setAccessibleName(argument.name)
            field.setPlaceholderText(argument.description or
                                     ("required" if argument.required else "optional"))
            field.setToolTip(plain_tooltip(argument.description or argument.name))
            field.returnPressed.connect(self.submit)
            field.escaped.connect(self.cancel)
            label = argument.name + (" *" if argument.required else "")
            self.form.addRow(label, field)
            self.fields[argument.name] = field
        self.show()
        if self.fields:
            next(iter(self.fields.values())).setFocus()

    def submit(self) -> None:
        prompt = self.prompt
        if prompt is None:
            return
        values = {name: field.text() for name, field in self.fields.items()}
        for argument in prompt.arguments:
            if argument.required and not values[argument.name].strip():
                self.message.setText(f"“{argument.name}” is needed.")
                self.fields[argument.name].setFocus()
                return
        self.hide()
        self.submitted.emit(prompt, {k: v for k, v in values.items() if v.strip()})

    def cancel(self) -> None:
        self.hide()
        self.prompt = None
        self.cancelled.emit()


# -- wiring ------------------------------------------------------------------------------------


class ServerContext(QObject):
    """The `/` menu, the arguments form and the resource picker of one window."""

    def __init__(self, window: MainWindow, service: ToolService) -> None:
        super().__init__(window)
        self.window = window
        self.service = service
        self.menu = CommandMenu(window)
        self.form = PromptForm()
        self.form.setMaximumWidth(current().column_width)
        row = QWidget()  # centred over the message box, as wide as it at most
        centred = QHBoxLayout(row)
        centred.setContentsMargins(0, 0, 0, 0)
        centred.addWidget(self.form)
        self.form.visibility_changed.connect(row.setVisible)
        row.hide()
        window.add_below_conversation(row)
        self._dismissed = False  # Esc closed the menu: it stays closed for this `/` word
        self._placeholder_keys = itertools.count(-1, -1)  # chips of resources being fetched
        self._fetching: dict[int, asyncio.Task[None]] = {}
        composer = window.composer
        composer.installEventFilter(self)
        composer.textChanged.connect(self._text_changed)
        self.menu.picked.connect(self.pick)
        self.form.submitted.connect(self.use)
        self.form.cancelled.connect(composer.setFocus)
        window.documentStrip.removed.connect(self._cancel_fetch)
        # a bound method: the connection ends with this object (a lambda would outlive it)
        QGuiApplication.instance().paletteChanged.connect(self._palette_changed)

    def restyle(self) -> None:
        self.menu.restyle()
        self.form.restyle()

    def _palette_changed(self, _palette: object) -> None:
        self.restyle()

    # -- what there is --

    def offers(self) -> list[Offer]:
        host = self.service.host
        return [*host.prompts(), *host.resources(), *host.resource_templates()]

    # -- the menu --

    def _text_changed(self) -> None:
        query = slash_query(self.window.composer.toPlainText())
        if query is None:
            self._dismissed = False
            self.menu.hide()
            return
        offers = self.offers()
        if self._dismissed or not offers:
            self.menu.hide()
            return
        self.menu.show_offers(ranked(offers, query))
        if self.menu.isVisible():
            self.menu.place(self.window.composerBox)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if (self.menu.isVisible() and isinstance(event, QKeyEvent)
                and kind in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride)
                and event.key() in NAV_KEYS and not event.modifiers()
                & ~Qt.KeyboardModifier.KeypadModifier):
            if kind == QEvent.Type.ShortcutOverride:
                event.accept()  # Esc closes the menu here, it does not stop a reply
                return True
            self._navigate(event.key())
            return True
        return super().eventFilter(watched, event)

    def _navigate(self, key: Qt.Key) -> None:
        if key in (Qt.Key.Key_Up, Qt.Key.Key_PageUp):
            self.menu.move(-1)
        elif key in (Qt.Key.Key_Down, Qt.Key.Key_PageDown):
            self.menu.move(1)
        elif key == Qt.Key.Key_Escape:
            self._dismissed = True
            self.menu.hide()
        else:  # Enter, Tab
            self.menu.pick_current()

    def pick(self, offer: Offer) -> None:
        composer = self.window.composer
        if slash_query(composer.toPlainText()) is not None:
            composer.clear()  # the `/word` typed was the command, not the message
        if isinstance(offer, ResourceInfo):
            self.attach_resource(offer)
            composer.setFocus()
        elif offer.arguments:
            self.form.ask(offer)
        else:
            self.use(offer, {})

    def use(self, offer: PromptInfo | ResourceTemplate, values: dict[str, str]) -> None:
        """What the arguments form gave: a prompt to insert, or a resource to attach."""
        if isinstance(offer, ResourceTemplate):
            self.attach_resource(offer.resource(values))
            self.window.composer.setFocus()
        else:
            self.insert_prompt(offer, values)

    # -- prompts --

    def insert_prompt(self, prompt: PromptInfo, arguments: dict[str, str]) -> None:
        self.window.statusBar().showMessage(f"Getting the prompt {prompt.label}…", 5000)
        self.window.controller.tasks.start(self._insert_prompt(prompt, arguments),
                                           what="Getting a prompt")

    async def _insert_prompt(self, prompt: PromptInfo, arguments: dict[str, str]) -> None:
        try:
            content = await self.service.host.get_prompt(prompt, arguments)
        except ToolError as exc:
            self.window.show_error(str(exc))
            return
        composer = self.window.composer
        typed = composer.toPlainText()
        if slash_query(typed) is not None:
            typed = ""
        composer.setPlainText(joined(content.text, typed) if content.text else typed)
        composer.moveCursor(composer.textCursor().MoveOperation.End)
        for image in content.images:
            self.window.attachmentStrip.add(image)
        self.attach(content.resources)
        self.window.statusBar().showMessage(
            f"The prompt {prompt.label} is in the message box: check it, then send.", 5000)
        composer.setFocus()

    # -- resources --

    def attach_menu(self, choose_files: object) -> QMenu | None:
        """The attach button's menu when servers offer resources (None: there are none, the
        button opens the file chooser directly)."""
        resources = self.service.host.resources()
        if not resources:
            return None
        menu = QMenu(self.window)
        menu.setObjectName("attachMenu")
        menu.addAction("Files…", choose_files)  # type: ignore[call-overload]
        picker = menu.addMenu("From MCP server")
        picker.setObjectName("resourcePicker")
        for resource in resources:
            action = picker.addAction(resource.label,
                                      lambda r=resource: self.attach_resource(r))
            action.setToolTip(plain_tooltip(resource.description or resource.uri))
            action.setStatusTip(resource.description or resource.uri)
        picker.setToolTipsVisible(True)
        menu.aboutToHide.connect(menu.deleteLater)
        return menu

    def attach_resource(self, resource: ResourceInfo) -> None:
        """Read `resource` from its server and attach what it holds; a chip shows it is on
        its way (sending waits for it, removing the chip cancels it)."""
        key = next(self._placeholder_keys)
        self.window.documentStrip.add_reading(key, resource.name)
        self._fetching[key] = self.window.controller.tasks.start(
            self._read(key, resource), what="Reading a resource")

    async def _read(self, key: int, resource: ResourceInfo) -> None:
        try:
            items = await self.service.host.read_resource(resource)
        except ToolError as exc:
            self.window.show_error(str(exc))
            return
        finally:
            self._fetching.pop(key, None)
            self.window.documentStrip.drop(key)
        if not items:
            self.window.show_error(f"The resource {resource.label} is empty.")
        self.attach(items)

    def attach(self, items: list[ResourceData]) -> None:
        """Resources into the message: documents as chips, images as images."""
        window = self.window
        for item in items:
            try:
                what = attachable(item)
            except ValueError as exc:
                log.info("resource %s not attached: %s", item.uri, exc)
                window.show_error(str(exc))
                continue
            if isinstance(what, Attachment):
                window.attachmentStrip.add(what)
                continue
            data, name = what
            window.documentStrip.budget = window.controller.document_budget
            window.documentStrip.add_reading(window.documentReader.read_data(data, name), name)

    def _cancel_fetch(self, key: int) -> None:
        task = self._fetching.pop(key, None)
        if task is not None:
            task.cancel()
