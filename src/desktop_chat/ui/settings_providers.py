"""The Providers page: the list of profiles, one form per profile, and where new keys go.

Each profile keeps its own form (in a stack) so that switching between them never loses
half-typed text; everything is read, and checked, only when the user presses OK.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.config.providers import PRESETS, Profile, new_profile_id
from desktop_chat.core.config.secrets import KeychainStatus, KeySource
from desktop_chat.core.llm.discovery import Found
from desktop_chat.ui.labels import NOTICE_COLORS, hint_label, message_label, name
from desktop_chat.ui.settings_fields import Invalid
from desktop_chat.ui.settings_profile_form import ProfileForm, TestConnection

KeyChange = tuple[str, str | None, KeySource]
PLAINTEXT_WARNING = ("I understand: the key is saved unencrypted, and anyone who can read "
                     "my files can use it.")


class ProvidersPage(QWidget):
    def __init__(self, profiles: tuple[Profile, ...], active: str, keychain: KeychainStatus,
                 key_sources: Mapping[str, KeySource], test_connection: TestConnection,
                 plaintext_accepted: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._keychain = keychain
        self._key_sources = key_sources
        self._test_connection = test_connection
        self._active = active
        self._forms: list[ProfileForm] = []
        self._removed: list[ProfileForm] = []
        self._build(plaintext_accepted)
        for profile in profiles:
            self._add_form(profile)
        self.profileList.setCurrentRow(max(0, self._index_of(self._effective())))
        self._show_row(self.profileList.currentRow())

    # -- construction ---------------------------------------------------------------------

    def _build(self, plaintext_accepted: bool) -> None:
        outer = QVBoxLayout(self)
        outer.addWidget(self._key_storage(plaintext_accepted))
        self.profileList = name(QListWidget(), "Provider profiles", "profileList")
        self.profileList.setMinimumWidth(170)
        self.profileList.setMaximumWidth(230)
        self.addButton = name(QToolButton(), "Add a provider", "addProfileButton")
        self.addButton.setText("Add ▾")
        self.addButton.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.addButton)
        menu.setObjectName("presetMenu")
        for preset in PRESETS.values():
            menu.addAction(preset.label).setData(preset.key)
        menu.triggered.connect(self._menu_chosen)
        self.addButton.setMenu(menu)
        self._found_actions: list[QAction] = []
        self.removeButton = name(QPushButton("Remove"), "Remove the provider",
                                 "removeProfileButton")
        self.activeButton = name(QPushButton("Make active"), "Make this the active provider",
                                 "makeActiveButton")
        buttons = QHBoxLayout()
        for button in (self.addButton, self.removeButton, self.activeButton):
            buttons.addWidget(button)
        left = QVBoxLayout()
        left.addWidget(self.profileList, 1)
        left.addLayout(buttons)
        self.stack = QStackedWidget(objectName="profileForms")
        self.emptyLabel = QLabel("No providers yet. Press Add and pick one.")
        self.emptyLabel.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.emptyLabel)
        body = QHBoxLayout()
        body.addLayout(left)
        body.addWidget(self.stack, 1)
        outer.addLayout(body, 1)
        self.profileList.currentRowChanged.connect(self._show_row)
        self.removeButton.clicked.connect(self.remove_current)
        self.activeButton.clicked.connect(self.make_current_active)

    def _key_storage(self, plaintext_accepted: bool) -> QWidget:
        """Where newly typed keys go: the keychain, or (without one) the user's choice."""
        box = QWidget(objectName="keyStorage")
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        if self._keychain.available:
            backend = f" ({self._keychain.backend})" if self._keychain.backend else ""
            layout.addWidget(hint_label(f"API keys are kept in the system keychain{backend}, "
                                        "never in the settings file."))
            return box
        self.sessionOnly = name(QRadioButton("for this session only"),
                                "Keep keys for this session only", "sessionOnly")
        self.sessionOnly.setToolTip("Type them again after a restart.")
        self.plaintext = name(QRadioButton("in a plain-text file"),
                              "Save keys in a plain-text file", "plaintextKeys")
        self.plaintextConfirm = name(QCheckBox(PLAINTEXT_WARNING),
                                     "Confirm saving keys unencrypted", "plaintextConfirm")
        # One line; why there is no keychain (and what else works) on demand.
        notice = message_label("keychainNotice", NOTICE_COLORS)
        notice.setWordWrap(False)
        notice.setText("No keychain on this computer: new keys cannot be saved safely.")
        notice.setToolTip(self._keychain.reason)
        notice.show()
        self.keychainDetails = name(hint_label(self._keychain.reason), "Why there is no keychain",
                                    "keychainDetails")
        self.keychainDetails.hide()
        details = name(QPushButton("Details"), "Show why there is no keychain",
                       "keychainDetailsButton")
        details.setCheckable(True)
        details.toggled.connect(self.keychainDetails.setVisible)
        choice = QWidget()
        choice_row = QHBoxLayout(choice)
        choice_row.setContentsMargins(0, 0, 0, 0)
        choice_row.addWidget(QLabel("Keep new keys:"))
        choice_row.addWidget(self.sessionOnly)
        choice_row.addWidget(self.plaintext)
        choice_row.addStretch(1)
        top = QWidget()
        top_row = QHBoxLayout(top)
        top_row.setContentsMargins(0, 0, 0, 0)
        top_row.addWidget(notice, 1)
        top_row.addWidget(details)
        group = QButtonGroup(box)
        for index, widget in enumerate((self.sessionOnly, self.plaintext)):
            group.addButton(widget, index)
        self.plaintextConfirm.setStyleSheet("margin-left: 22px;")
        self.plaintext.toggled.connect(self.plaintextConfirm.setEnabled)
        self.plaintext.toggled.connect(self.plaintextConfirm.setVisible)  # only then it applies
        self.plaintext.setChecked(plaintext_accepted)
        self.sessionOnly.setChecked(not plaintext_accepted)
        self.plaintextConfirm.setChecked(plaintext_accepted)
        self.plaintextConfirm.setEnabled(plaintext_accepted)
        self.plaintextConfirm.setVisible(plaintext_accepted)
        for widget in (top, self.keychainDetails, choice, self.plaintextConfirm):
            layout.addWidget(widget)
        return box

    def _add_form(self, profile: Profile) -> ProfileForm:
        form = ProfileForm(profile, self._key_sources.get(profile.key_ref, KeySource.NONE),
                           self._keychain, self._test_connection)
        self.stack.addWidget(form)  # short enough for 800x600: rows that do not apply hide
        self._forms.append(form)
        item = QListWidgetItem()
        self.profileList.addItem(item)
        form.name_changed.connect(lambda _text: self._refresh())
        return form

    # -- actions --------------------------------------------------------------------------

    def show_found(self, found: list[Found]) -> None:
        """Local servers that answered discovery, offered first in the Add menu."""
        menu = self.addButton.menu()
        for action in self._found_actions:
            menu.removeAction(action)
        self._found_actions = []
        if not found:
            return
        first = menu.actions()[0]
        header = QAction("Found on this computer:", menu)
        header.setEnabled(False)
        self._found_actions.append(header)
        for server in found:
            count = len(server.models)
            models = f"{count} model{'' if count == 1 else 's'}" if count else "no model list"
            action = QAction(f"{server.preset.label} at {server.base_url} ({models})", menu)
            action.setData(server)
            self._found_actions.append(action)
        separator = QAction(menu)
        separator.setSeparator(True)
        self._found_actions.append(separator)
        menu.insertActions(first, self._found_actions)

    def _menu_chosen(self, action: QAction) -> None:
        data = action.data()
        if isinstance(data, Found):
            self.add_found(data)
        elif isinstance(data, str):
            self.add_preset(data)

    def add_found(self, found: Found) -> ProfileForm:
        """A profile for a server discovery found: its address and models filled in."""
        kind = found.preset
        model = kind.model if kind.model in found.models or not found.models else (
            found.models[0])
        return self._add_profile(dataclasses.replace(
            kind.new_profile(new_profile_id(kind.label, self._taken())),
            base_url=found.base_url, models=tuple(found.models), model=model))

    def add_preset(self, key: str) -> ProfileForm:
        kind = PRESETS[key]
        return self._add_profile(kind.new_profile(new_profile_id(kind.label, self._taken())))

    def _taken(self) -> set[str]:
        return {f.original.id for f in self._forms + self._removed}

    def _add_profile(self, profile: Profile) -> ProfileForm:
        form = self._add_form(profile)
        if len(self._forms) == 1:
            self._active = form.original.id
        self.profileList.setCurrentRow(len(self._forms) - 1)
        self._refresh()
        form.nameEdit.setFocus()
        form.nameEdit.selectAll()
        return form

    def remove_current(self) -> None:
        row = self.profileList.currentRow()
        if row < 0:
            return
        form = self._forms.pop(row)
        self._removed.append(form)
        form.cancel_tasks()
        self.stack.removeWidget(self.stack.widget(row + 1))
        self.profileList.takeItem(row)
        if form.original.id == self._active:
            self._active = self._forms[0].original.id if self._forms else ""
        self._refresh()

    def make_current_active(self) -> None:
        form = self.current_form()
        if form is not None:
            self._active = form.original.id
            self._refresh()

    def select(self, form: ProfileForm) -> None:
        self.profileList.setCurrentRow(self._forms.index(form))

    def current_form(self) -> ProfileForm | None:
        row = self.profileList.currentRow()
        return self._forms[row] if 0 <= row < len(self._forms) else None

    def forms(self) -> list[ProfileForm]:
        return list(self._forms)

    def _show_row(self, row: int) -> None:
        self.stack.setCurrentIndex(row + 1 if 0 <= row < len(self._forms) else 0)
        self._refresh()

    def _refresh(self) -> None:
        for row, form in enumerate(self._forms):
            item = self.profileList.item(row)
            label = form.nameEdit.text().strip() or form.original.id
            active = form.original.id == self._effective()
            item.setText(f"{label}  (active)" if active else label)
            font = item.font()
            font.setBold(active)
            item.setFont(font)
        current = self.current_form()
        self.removeButton.setEnabled(current is not None)
        self.activeButton.setEnabled(current is not None
                                     and current.original.id != self._effective())

    def _effective(self) -> str:
        """The profile in use: the chosen one, else the first (as `Settings.active()`)."""
        if self._index_of(self._active) >= 0:
            return self._active
        return self._forms[0].original.id if self._forms else ""

    def _index_of(self, profile_id: str) -> int:
        ids = [f.original.id for f in self._forms]
        return ids.index(profile_id) if profile_id in ids else -1

    # -- reading --------------------------------------------------------------------------

    def profiles(self) -> tuple[Profile, ...]:
        """Every profile as edited; an Invalid selects the profile with the problem."""
        result = []
        for form in self._forms:
            try:
                result.append(form.profile())
            except Invalid:
                self.select(form)
                raise
        return tuple(result)

    def active_id(self) -> str:
        return self._active if self._index_of(self._active) >= 0 else ""

    def key_storage(self) -> KeySource:
        if self._keychain.available:
            return KeySource.KEYCHAIN
        if self.plaintext.isChecked():
            if not self.plaintextConfirm.isChecked():
                raise Invalid("To save keys in a plain-text file, tick the box that says you "
                              "understand the risk, or choose \"this session only\".",
                              self.plaintextConfirm)
            return KeySource.PLAINTEXT
        return KeySource.SESSION

    def plaintext_accepted(self, before: bool) -> bool:
        if self._keychain.available:
            return before
        return self.plaintext.isChecked() and self.plaintextConfirm.isChecked()

    def key_changes(self) -> list[KeyChange]:
        """New and forgotten keys; a removed profile's stored key is forgotten too."""
        where = self.key_storage()
        changes = [c for f in self._forms if (c := f.key_change(where)) is not None]
        changes += [(f.original.key_ref, None, f.key_source)
                    for f in self._removed if f.has_stored_key]
        return changes

    def active_model(self) -> str:
        index = self._index_of(self._effective())
        return self._forms[index].model.currentText().strip() if index >= 0 else ""

    def set_active_model(self, model: str) -> None:
        index = self._index_of(self._effective())
        if index >= 0:
            self._forms[index].model.setCurrentText(model)

    def cancel_tasks(self) -> None:
        for form in self._forms:
            form.cancel_tasks()
