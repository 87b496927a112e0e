"""Connecting the window to `Connections`: the welcome panel on first run, the Settings and
Conversation settings dialogs (opened with .open(), never exec()), the model list, and the
appearance settings (theme, font size). No I/O here: `Connections` does it; a choice on the
welcome panel becomes a profile in `core.config.first_run`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu, QStackedWidget

from desktop_chat.core.config import first_run
from desktop_chat.core.config.providers import ConversationSettings, Profile
from desktop_chat.core.config.settings import Settings
from desktop_chat.core.engine.offline import engine_available
from desktop_chat.ui import theme
from desktop_chat.ui.connections import Connections
from desktop_chat.ui.demo_terms import DemoNotice
from desktop_chat.ui.model_picker import ModelPicker

if TYPE_CHECKING:  # the dialogs and the welcome panel are imported when first needed
    from desktop_chat.ui.conversation_settings import ConversationSettingsDialog
    from desktop_chat.ui.settings_dialog import SettingsDialog
    from desktop_chat.ui.welcome import WelcomePanel


class SetupFlow(QObject):
    model_changed = Signal()  # the model for the next message changed (a conversation's own)

    def __init__(self, window: QMainWindow, connections: Connections, stack: QStackedWidget,
                 picker: ModelPicker, *, menu: QMenu) -> None:
        """`menu`: the menu bar's Settings menu (made with the window's first frame)."""
        super().__init__(window)
        self._window = window
        self.connections = connections
        self._stack = stack
        self._picker = picker
        self.welcome: WelcomePanel | None = None
        self.settingsDialog: SettingsDialog | None = None
        menu.addAction("&Settings…", QKeySequence("Ctrl+,"), self.open_settings)
        menu.addAction("&Conversation settings…", QKeySequence("Ctrl+Shift+,"),
                       self.open_conversation_settings)
        c = connections
        c.configured.connect(self._configured)
        c.models_loaded.connect(lambda models: picker.set_models(models, c.controller.model))
        c.local_found.connect(self._found)
        c.probing.connect(self._probing)
        c.progress.connect(self._progress)
        self.demoNotice = DemoNotice(c.offline)  # next to the model, while the demo model answers
        row = window.modelRow  # type: ignore[attr-defined]
        row.insertWidget(row.indexOf(picker) + 1, self.demoNotice, 10)

    def start(self) -> None:
        # (the settings' theme and text size were applied before the window's first frame:
        # app.open_window)
        self.connections.activate()

    # -- first run ------------------------------------------------------------------------

    def _configured(self, profile: Profile | None) -> None:
        if profile is None:
            self._picker.setEnabled(False)  # nothing to pick from until a server is chosen
            self._show_welcome()
            return
        if self.welcome is not None:
            self.welcome.cancel_checks()
            leaving = self._stack.currentWidget() is self.welcome
            self._stack.setCurrentIndex(0)
            if leaving:  # the panel had the focus: it goes to the composer, not the transcript
                self._window.composer.setFocus()  # type: ignore[attr-defined]
        self._picker.set_models(list(profile.models), self.connections.controller.model)
        self._picker.setEnabled(not profile.is_offline)
        self._window.setWindowFilePath("")

    def _show_welcome(self) -> None:
        c = self.connections
        if self.welcome is None:
            from desktop_chat.ui.welcome import WelcomePanel

            self.welcome = w = WelcomePanel(c.check_openai_key, c.check_server, c.keychain(),
                                            offline_available=engine_available())
            w.openai_key_accepted.connect(
                lambda key, models: c.use(first_run.openai_key(c.settings, key, models)))
            w.local_server_chosen.connect(lambda found: c.use(first_run.local_server(
                c.settings, found.preset, found.base_url, found.models)))
            w.custom_chosen.connect(lambda url, key, models: c.use(
                first_run.custom_server(c.settings, url, key, models)))
            w.offline_chosen.connect(lambda: c.use(first_run.offline(c.settings)))
            w.rescan_requested.connect(c.probe)
            w.tasks.failed.connect(self._window.show_error)  # type: ignore[attr-defined]
            self._stack.addWidget(self.welcome)
        self._stack.setCurrentWidget(self.welcome)
        c.probe()  # in the background: start-up never waits for it

    def _found(self, found: list) -> None:
        if self.welcome is not None:
            self.welcome.show_found(found)

    def _probing(self, busy: bool) -> None:
        if self.welcome is not None:
            self.welcome.show_probing(busy)

    def _progress(self, text: str) -> None:
        if text:
            self._window.statusBar().showMessage(text)
        else:
            self._window.statusBar().clearMessage()

    # -- dialogs --------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        from desktop_chat.ui.settings_dialog import SettingsDialog

        c = self.connections
        dialog = SettingsDialog(c.settings_file.settings, c.keychain(), c.key_sources(),
                                c.test_connection, self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.keys_changed.connect(c.apply_keys)
        dialog.settings_accepted.connect(self._settings_accepted)
        dialog.destroyed.connect(lambda: setattr(self, "settingsDialog", None))
        c.local_found.connect(dialog.show_found)  # offered in Add as they answer
        if (tools := getattr(self._window, "tools", None)) is not None:
            dialog.tabs.addTab(tools.settings_page(), "Tools")  # MCP servers, consents
        self.settingsDialog = dialog
        dialog.open()
        c.probe()
        return dialog

    def _settings_accepted(self, settings: Settings) -> None:
        self.connections.apply_settings(settings)
        self.apply_appearance(settings)

    def open_conversation_settings(self) -> ConversationSettingsDialog:
        from desktop_chat.ui.conversation_settings import ConversationSettingsDialog

        c = self.connections
        controller = c.controller
        profile = c.profile
        session = controller.session
        dialog = ConversationSettingsDialog(
            controller.overrides, session.model, list(profile.models) if profile else [],
            default_system_prompt=session.system_prompt, default_params=session.params,
            parent=self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.settings_accepted.connect(self._conversation_settings_accepted)
        dialog.open()
        return dialog

    def _conversation_settings_accepted(self, overrides: ConversationSettings) -> None:
        c = self.connections
        c.controller.set_overrides(overrides)
        profile = c.profile
        self._picker.set_models(list(profile.models) if profile else [], c.controller.model)
        self.model_changed.emit()

    # -- appearance -----------------------------------------------------------------------

    def apply_appearance(self, settings: Settings) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply_appearance(app, settings.theme, settings.font_size)
