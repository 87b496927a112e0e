"""The settings dialog: providers and keys, chat defaults, appearance and network.

It does no I/O. It is built from the current `Settings`, the keychain's status, where each
profile's key lives and an async "test connection" function; on OK it checks everything and
emits the new settings and the key changes for the caller to store. Cancel changes nothing.
Open it with `.open()`, never `.exec()` (no nested event loop while a reply streams).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTabWidget, QVBoxLayout, QWidget

from desktop_chat.core.config.secrets import KeychainStatus, KeySource
from desktop_chat.core.config.settings import Settings
from desktop_chat.ui.labels import message_label
from desktop_chat.ui.settings_fields import Invalid
from desktop_chat.ui.settings_pages import AppearancePage, ChatPage, NetworkPage
from desktop_chat.ui.settings_profile_form import TestConnection
from desktop_chat.ui.settings_providers import KeyChange, ProvidersPage


class SettingsDialog(QDialog):
    settings_accepted = Signal(object)  # Settings
    keys_changed = Signal(list)  # list[(key_ref, key or None to forget, KeySource)]

    def __init__(self, settings: Settings, keychain: KeychainStatus,
                 key_sources: Mapping[str, KeySource], test_connection: TestConnection,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        self._settings = settings
        self.providers = ProvidersPage(settings.profiles, settings.active_profile, keychain,
                                       key_sources, test_connection,
                                       settings.plaintext_keys_accepted)
        self.chat = ChatPage(settings, self.providers.active_model,
                             self.providers.set_active_model)
        self.appearance = AppearancePage(settings)
        self.network = NetworkPage(settings)
        self.tabs = QTabWidget(objectName="settingsTabs")
        self.tabs.setAccessibleName("Settings pages")
        for page, title in ((self.providers, "Providers"), (self.chat, "Chat"),
                            (self.appearance, "Appearance"), (self.network, "Network")):
            self.tabs.addTab(page, title)
        self.errorLabel = message_label("settingsError")
        self.errorLabel.setAccessibleName("Settings error")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.setObjectName("settingsButtons")
        self.okButton = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.okButton.setAccessibleName("Save settings")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName("Cancel")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.errorLabel)
        layout.addWidget(self.buttons)
        self.resize(860, 640)

    def show_found(self, found: list) -> None:
        """Local servers found in the background: offered in Providers → Add."""
        self.providers.show_found(found)

    def accept(self) -> None:
        """Check every page; on a problem show it, go to the field and stay open."""
        try:
            settings, keys = self.collect()
        except Invalid as problem:
            self._show_problem(problem)
            return
        self.errorLabel.hide()
        self.settings_accepted.emit(settings)
        self.keys_changed.emit(keys)
        super().accept()

    def collect(self) -> tuple[Settings, list[KeyChange]]:
        """The edited settings and key changes; raises Invalid."""
        s = self._settings
        changes = {
            "profiles": self.providers.profiles(),
            "active_profile": self.providers.active_id(),
            "plaintext_keys_accepted": self.providers.plaintext_accepted(
                s.plaintext_keys_accepted),
            **self.chat.values(), **self.appearance.values(), **self.network.values(),
        }
        keys = self.providers.key_changes()
        return dataclasses.replace(s, **changes), keys

    def done(self, result: int) -> None:
        self.providers.cancel_tasks()  # a late test result must not touch closed widgets
        super().done(result)

    def _show_problem(self, problem: Invalid) -> None:
        self.errorLabel.setText(f"⚠ {problem.message}")
        self.errorLabel.show()
        for index in range(self.tabs.count()):
            if self.tabs.widget(index).isAncestorOf(problem.widget):
                self.tabs.setCurrentIndex(index)
        problem.widget.setFocus()
