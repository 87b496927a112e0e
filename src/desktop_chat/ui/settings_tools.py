"""Settings → Tools: the MCP servers (add, edit, enable or disable, remove, status, restart),
presets for well-known reference servers, `mcpServers` JSON import and export, how many tool
steps a reply may take, the read-only opt-in, and the remembered "always allow" choices (each
revocable). Changes apply at once: servers start and stop as they are edited."""

from __future__ import annotations

import dataclasses
import shlex
import shutil

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.tools.config import (
    ConfigError,
    ServerConfig,
    Transport,
    parse_servers,
    servers_json,
)
from desktop_chat.core.tools.consent import MAX_STEP_LIMIT
from desktop_chat.core.tools.host import LAUNCHERS, ServerState, Status
from desktop_chat.ui.labels import PlainLabel
from desktop_chat.ui.theme import current, qcolor
from desktop_chat.ui.tools import ToolService

PRESETS = {
    "Time (mcp-server-time)": ("time", "uvx", ["mcp-server-time"]),
    "Fetch web pages (mcp-server-fetch)": ("fetch", "uvx", ["mcp-server-fetch"]),
    "Files in a folder (server-filesystem)…": (
        "filesystem", "npx", ["-y", "@modelcontextprotocol/server-filesystem"]),
}
TRANSPORTS = {Transport.STDIO: "Program (stdio)", Transport.HTTP: "Streamable HTTP",
              Transport.SSE: "SSE (older remote servers)"}



class HintList(QListWidget):
    """A list that says, in muted text, what goes in it while it is empty."""

    def __init__(self, hint: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._hint = hint

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.count():
            return
        painter = QPainter(self.viewport())
        painter.setPen(qcolor(current().colors.muted))
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        painter.drawText(self.viewport().rect().adjusted(16, 8, -16, -8), int(flags), self._hint)
        painter.end()

class ServerForm(QGroupBox):
    """One server's fields; those that do not apply to its type are hidden."""

    def __init__(self) -> None:
        super().__init__("Server")
        self.name = QLineEdit(objectName="toolServerName")
        self.kind = QComboBox(objectName="toolServerType")
        for transport, label in TRANSPORTS.items():
            self.kind.addItem(label, transport)
        self.command = QLineEdit(objectName="toolServerCommand")
        self.args = QLineEdit(objectName="toolServerArgs")
        self.args.setPlaceholderText('e.g. -y @modelcontextprotocol/server-filesystem "/my dir"')
        self.env = QPlainTextEdit(objectName="toolServerEnv")
        self.env.setPlaceholderText("NAME=value, one per line")
        self.env.setMaximumHeight(60)
        self.cwd = QLineEdit(objectName="toolServerCwd")
        self.url = QLineEdit(objectName="toolServerUrl")
        self.headers = QPlainTextEdit(objectName="toolServerHeaders")
        self.headers.setPlaceholderText("Name: value, one per line")
        self.headers.setMaximumHeight(60)
        self.timeout = QSpinBox(objectName="toolServerTimeout")
        self.timeout.setRange(1, 3600)
        self.timeout.setSuffix(" s per call")
        self.trusted = QCheckBox("Trusted: run every tool of this server without asking",
                                 objectName="toolServerTrusted")
        self.form = QFormLayout(self)
        self.form.addRow("Name", self.name)
        self.form.addRow("Type", self.kind)
        self.form.addRow("Command", self.command)
        self.form.addRow("Arguments", self.args)
        self.form.addRow("Environment", self.env)
        self.form.addRow("Working folder", self.cwd)
        self.form.addRow("URL", self.url)
        self.form.addRow("Headers", self.headers)
        self.form.addRow("Timeout", self.timeout)
        self.form.addRow(self.trusted)
        self.kind.currentIndexChanged.connect(self._show_fields)
        self.load(ServerConfig(""))

    def load(self, config: ServerConfig) -> None:
        self.name.setText(config.name)
        self.kind.setCurrentIndex(self.kind.findData(config.transport))
        self.command.setText(config.command)
        self.args.setText(shlex.join(config.args))
        self.env.setPlainText("\n".join(f"{k}={v}" for k, v in config.env.items()))
        self.cwd.setText(config.cwd)
        self.url.setText(config.url)
        self.headers.setPlainText("\n".join(f"{k}: {v}" for k, v in config.headers.items()))
        self.timeout.setValue(int(config.timeout_s))
        self.trusted.setChecked(config.trusted)
        self._show_fields()

    def config(self, enabled: bool = True) -> ServerConfig:
        """The edited server; raises ConfigError naming the field to fix."""
        name = self.name.text().strip()
        if not name:
            raise ConfigError("Give the server a name.")
        transport = Transport(self.kind.currentData())
        try:
            args = tuple(shlex.split(self.args.text()))
        except ValueError as exc:
            raise ConfigError(f"The arguments cannot be read: {exc}.") from None
        if transport is Transport.STDIO and not self.command.text().strip():
            raise ConfigError("Enter the command that starts the server (e.g. uvx or npx).")
        url = self.url.text().strip()
        if transport is not Transport.STDIO and not url.startswith(("http://", "https://")):
            raise ConfigError("Enter the server's URL (http:// or https://).")
        return ServerConfig(
            name, transport, self.command.text().strip(), args,
            _pairs(self.env.toPlainText(), "="), self.cwd.text().strip(), url,
            _pairs(self.headers.toPlainText(), ":"), enabled, self.trusted.isChecked(),
            float(self.timeout.value()))

    def _show_fields(self) -> None:
        stdio = self.kind.currentData() == Transport.STDIO
        for widget in (self.command, self.args, self.env, self.cwd):
            self.form.setRowVisible(widget, stdio)
        for widget in (self.url, self.headers):
            self.form.setRowVisible(widget, not stdio)


class ToolsPage(QWidget):
    def __init__(self, service: ToolService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolsPage")
        self.service = service
        self._editing: str | None = None  # the name of the server in the form ("" = new)
        self.serverList = HintList(
            "No tool servers yet. Add one, pick a preset, or import the config you use in "
            "Claude desktop or Cursor.", objectName="toolServerList")
        self.serverList.setAccessibleName("Tool servers")
        self.status = PlainLabel(objectName="toolServerStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = PlainLabel(objectName="toolsMessage")
        self.message.setWordWrap(True)
        self.addButton = _button("Add…", "addToolServerButton", self._add)
        self.presetButton = QToolButton(objectName="toolPresetButton", text="Presets")
        self.presetButton.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        presets = QMenu(self.presetButton)
        for label in PRESETS:
            presets.addAction(label, lambda checked=False, label=label: self.add_preset(label))
        self.presetButton.setMenu(presets)
        self.editButton = _button("Edit…", "editToolServerButton", self._edit)
        self.toggleButton = _button("Disable", "toggleToolServerButton", self._toggle)
        self.restartButton = _button("Restart", "restartToolServerButton", self._restart)
        self.removeButton = _button("Remove", "removeToolServerButton", self._remove)
        self.importButton = _button("Import JSON…", "importToolsButton", self._show_import)
        self.exportButton = _button("Copy as JSON", "exportToolsButton", self._export)
        row = QHBoxLayout()
        for widget in (self.addButton, self.presetButton, self.editButton, self.toggleButton,
                       self.restartButton, self.removeButton):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.importButton)
        row.addWidget(self.exportButton)
        self.form = ServerForm()
        self.saveServerButton = _button("Save server", "saveToolServerButton", self._save)
        self.cancelServerButton = _button("Cancel", "cancelToolServerButton", self._close_form)
        form_buttons = QHBoxLayout()
        form_buttons.addStretch(1)
        form_buttons.addWidget(self.cancelServerButton)
        form_buttons.addWidget(self.saveServerButton)
        self.importBox = QPlainTextEdit(objectName="toolsImportText")
        self.importBox.setPlaceholderText(
            'Paste a config such as {"mcpServers": {"time": {"command": "uvx", "args": '
            '["mcp-server-time"]}}} (Claude desktop, Cursor …)')
        self.importConfirm = _button("Import these servers", "importToolsConfirm",
                                     self._import)
        self.stepLimit = QSpinBox(objectName="toolStepLimit")
        self.stepLimit.setRange(1, MAX_STEP_LIMIT)
        self.stepLimit.setValue(service.settings.step_limit)
        self.stepLimit.valueChanged.connect(self._options_changed)
        self.readOnly = QCheckBox("Run tools the server marks read-only without asking",
                                  objectName="autoAllowReadOnly")
        self.readOnly.setChecked(service.settings.auto_allow_read_only)
        self.readOnly.toggled.connect(self._options_changed)
        self.consentList = HintList("No tool is always allowed: each call asks first.",
                                    objectName="rememberedConsents")
        self.consentList.setAccessibleName("Tools always allowed")
        self.consentList.setMaximumHeight(90)
        self.revokeButton = _button("Revoke", "revokeConsentButton", self._revoke)
        options = QFormLayout()
        options.addRow("Tool steps per reply", self.stepLimit)
        options.addRow(self.readOnly)
        consents = QHBoxLayout()
        consents.addWidget(self.consentList, 1)
        consents.addWidget(self.revokeButton, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.addWidget(self.serverList, 1)
        layout.addWidget(self.status)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(self.form)
        layout.addLayout(form_buttons)
        layout.addWidget(self.importBox)
        layout.addWidget(self.importConfirm, 0, Qt.AlignmentFlag.AlignRight)
        layout.addLayout(options)
        layout.addWidget(PlainLabel("Always allowed (click Revoke to be asked again):"))
        layout.addLayout(consents)
        self._form_widgets = (self.form, self.saveServerButton, self.cancelServerButton)
        self._import_widgets = (self.importBox, self.importConfirm)
        self._close_form()
        self.serverList.currentRowChanged.connect(lambda _row: self._show_selected())
        service.state_changed.connect(self._state_changed)
        service.settings_changed.connect(self.refresh)
        self.refresh()

    # -- what is shown ---------------------------------------------------------------------

    def _state_changed(self, _state: ServerState) -> None:
        self.refresh()

    def refresh(self) -> None:
        current = self._selected_name()
        self.serverList.clear()
        states = {s.config.name: s for s in self.service.host.states()}
        for config in self.service.servers:
            state = states.get(config.name)
            line = _line(config, state)
            if config not in self.service.settings.servers:
                line += " · from --mcp-config, this run only"
            item = QListWidgetItem(line)
            item.setData(Qt.ItemDataRole.UserRole, config.name)
            self.serverList.addItem(item)
            if config.name == current:
                self.serverList.setCurrentItem(item)
        self.consentList.clear()
        for server, tool in sorted(self.service.settings.always_allowed):
            item = QListWidgetItem(f"{server} › {tool}")
            item.setData(Qt.ItemDataRole.UserRole, (server, tool))
            self.consentList.addItem(item)
        self._show_selected()

    def _show_selected(self) -> None:
        name = self._selected_name()
        state = self.service.host.state(name) if name else None
        config = self._config(name) if name else None
        self.status.setText(state.summary if state else "")
        has = config is not None
        for button in (self.editButton, self.toggleButton, self.restartButton,
                       self.removeButton):
            button.setEnabled(has)
        self.toggleButton.setText("Disable" if config is None or config.enabled else "Enable")
        self.restartButton.setEnabled(has and bool(config and config.enabled))

    def _selected_name(self) -> str | None:
        item = self.serverList.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _config(self, name: str | None) -> ServerConfig | None:
        return next((s for s in self.service.servers if s.name == name), None)

    # -- actions ---------------------------------------------------------------------------

    def _add(self) -> None:
        self._open_form(ServerConfig(""), "")

    def add_preset(self, label: str, folder: str | None = None) -> None:
        name, command, args = PRESETS[label]
        if name == "filesystem" and folder is None:
            dialog = QFileDialog(self, "The folder the model may read and write")
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.fileSelected.connect(lambda chosen: self.add_preset(label, chosen))
            dialog.open()  # never exec(): a reply may be streaming
            return
        config = ServerConfig(name, command=command, args=(*args, *([folder] if folder else [])))
        self._put(config)
        if shutil.which(command) is None:
            self.message.setText(f"'{command}' was not found on this computer, so '{name}' "
                                 f"cannot start yet. {LAUNCHERS[command]}")

    def _edit(self) -> None:
        config = self._config(self._selected_name())
        if config is not None:
            self._open_form(config, config.name)

    def _open_form(self, config: ServerConfig, editing: str) -> None:
        self._editing = editing
        self.form.load(config)
        for widget in self._import_widgets:
            widget.hide()
        for widget in self._form_widgets:
            widget.show()
        self.form.name.setFocus()

    def _close_form(self) -> None:
        self._editing = None
        for widget in (*self._form_widgets, *self._import_widgets):
            widget.hide()

    def _save(self) -> None:
        old = self._config(self._editing) if self._editing else None
        try:
            config = self.form.config(enabled=old.enabled if old else True)
        except ConfigError as exc:
            self.message.setText(f"⚠ {exc}")
            return
        if config.name != self._editing and self._config(config.name) is not None:
            self.message.setText(f"⚠ There is already a server named '{config.name}'.")
            return
        self._put(config, replacing=self._editing)
        self._close_form()

    def _put(self, config: ServerConfig, replacing: str | None = None) -> None:
        servers = [s for s in self.service.settings.servers
                   if s.name not in (config.name, replacing)]
        self.message.setText("")
        self._apply([*servers, config])

    def _apply(self, servers: list[ServerConfig]) -> None:
        self.service.update_settings(dataclasses.replace(self.service.settings,
                                                         servers=tuple(servers)))

    def _toggle(self) -> None:
        config = self._config(self._selected_name())
        if config is not None:
            self._put(dataclasses.replace(config, enabled=not config.enabled))

    def _restart(self) -> None:
        if name := self._selected_name():
            self.service.restart(name)

    def _remove(self) -> None:
        name = self._selected_name()
        self._apply([s for s in self.service.settings.servers if s.name != name])

    def _show_import(self) -> None:
        self._close_form()
        for widget in self._import_widgets:
            widget.show()
        self.importBox.setFocus()

    def _import(self) -> None:
        try:
            imported = parse_servers(self.importBox.toPlainText())
        except ConfigError as exc:
            self.message.setText(f"⚠ {exc}")
            return
        names = {s.name for s in imported}
        kept = [s for s in self.service.settings.servers if s.name not in names]
        self._apply(kept + imported)
        self.message.setText(f"Imported {len(imported)} server(s): {', '.join(sorted(names))}.")
        self._close_form()

    def _export(self) -> None:
        QGuiApplication.clipboard().setText(servers_json(self.service.servers))
        self.message.setText("The servers were copied as mcpServers JSON.")

    def _options_changed(self) -> None:
        self.service.update_settings(dataclasses.replace(
            self.service.settings, step_limit=self.stepLimit.value(),
            auto_allow_read_only=self.readOnly.isChecked()))

    def _revoke(self) -> None:
        item = self.consentList.currentItem()
        if item is not None:
            server, tool = item.data(Qt.ItemDataRole.UserRole)
            self.service.update_settings(self.service.settings.revoke(server, tool))


class ToolsDialog(QDialog):
    """The page on its own (Tools → Tool servers…)."""

    def __init__(self, service: ToolService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolsDialog")
        self.setWindowTitle("Tools")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.page = ToolsPage(service)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.page, 1)
        layout.addWidget(buttons)
        self.resize(760, 600)


def _line(config: ServerConfig, state: ServerState | None) -> str:
    status = state.summary.split("\n", 1)[0] if state else "not started"
    if state is not None and state.status is Status.FAILED:
        status = "failed (select it to see why)"
    trusted = " · trusted" if config.trusted else ""
    return f"{config.name} — {TRANSPORTS[config.transport]}{trusted} — {status}"


def _pairs(text: str, separator: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        name, found, value = line.partition(separator)
        if found and name.strip():
            out[name.strip()] = value.strip()
    return out


def _button(text: str, name: str, slot: object) -> QPushButton:
    button = QPushButton(text, objectName=name)
    button.setAccessibleName(text.rstrip("…"))
    button.clicked.connect(slot)  # type: ignore[arg-type]
    return button
