"""The first-run panel: a few ways to reach a model, each one click or one paste away.

Shown in place of the transcript when nothing is configured. It does no I/O: the key and
server checks are injected async functions, local servers arrive through `show_found`, and
the user's choice leaves as a signal. Nothing here is modal.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.config.providers import base_url_problem, with_scheme
from desktop_chat.core.config.secrets import KeychainStatus
from desktop_chat.core.llm.discovery import find_api_root
from desktop_chat.core.llm.errors import ChatError, ErrorKind
from desktop_chat.ui import icons
from desktop_chat.ui.demo_terms import demo_note, terms_button
from desktop_chat.ui.labels import hint_label, name, outcome_label, show_outcome
from desktop_chat.ui.tasks import Tasks
from desktop_chat.ui.theme import current, point_size

if TYPE_CHECKING:
    from desktop_chat.core.llm.discovery import Found

log = logging.getLogger("desktop_chat.welcome")

CheckKey = Callable[[str], Awaitable[list[str]]]
CheckServer = Callable[[str, str | None], Awaitable[list[str]]]
def card_style() -> str:
    """The cards of the welcome panel and the empty chat: the theme's radius and hairline."""
    theme = current()
    c = theme.colors
    return (f"QFrame#welcomeCard {{ border: 1px solid {c.faint};"
            f" border-radius: {theme.radius.card}px; background: {c.window}; }}")
OFFLINE_TEXT = ("Chat with a model that runs on this computer: no account, no network. "
                "It starts with the built-in demo model; pick a better GGUF model file "
                "later in Settings.")


class WelcomePanel(QWidget):
    openai_key_accepted = Signal(str, list)  # key, models
    local_server_chosen = Signal(object)  # Found
    custom_chosen = Signal(str, object, list)  # base_url, key or None, models
    offline_chosen = Signal()
    rescan_requested = Signal()  # "Look again" for local servers

    def __init__(self, check_openai_key: CheckKey, check_server: CheckServer,
                 keychain: KeychainStatus, offline_available: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePanel")
        self.setAccessibleName("Welcome")
        self._check_openai_key = check_openai_key
        self._check_server = check_server
        self.tasks = Tasks(self)  # the checks; the window shows what they fail to handle
        self._unlisted_error = False  # the last check failed only for want of a model list
        self._found: list[Found] = []
        column = QVBoxLayout()
        column.setSpacing(12)
        title = QLabel("Welcome! Let's connect to a model.")
        title.setFont(heading_font(title.font(), 5))
        title.setWordWrap(True)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column.addSpacing(current().space.xl)
        column.addWidget(title)
        subtitle = hint_label("Pick one way to start chatting. You can add more providers "
                              "later in Settings.")
        subtitle.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column.addWidget(subtitle)
        column.addSpacing(current().space.s)
        self.offlineCard = self._offline_card()
        column.addWidget(self.offlineCard)
        column.addWidget(self._openai_card(keychain))
        column.addWidget(self._local_card())
        column.addWidget(self._custom_card())
        column.addStretch(1)
        body = QWidget()
        body.setMaximumWidth(640)
        body.setLayout(column)
        centred = QWidget()
        row = QHBoxLayout(centred)
        row.addStretch(1)
        row.addWidget(body, 100)
        row.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # no invisible Tab stop
        scroll.setWidget(centred)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.set_offline_available(offline_available)
        self.show_found([])

    # -- cards ----------------------------------------------------------------------------

    def _offline_card(self) -> QFrame:
        self.offlineButton = name(QPushButton("Use the offline model"),
                                  "Use the built-in offline model", "useOfflineButton")
        self.offlineButton.clicked.connect(self.offline_chosen)
        self.demoNote = demo_note()
        self.termsButton = terms_button()
        return _card("Offline (built-in)", OFFLINE_TEXT, self.demoNote,
                     _row(self.offlineButton, self.termsButton))

    def _openai_card(self, keychain: KeychainStatus) -> QFrame:
        self.openaiKey = name(QLineEdit(), "OpenAI API key", "welcomeOpenaiKey")
        self.openaiKey.setEchoMode(QLineEdit.EchoMode.Password)
        self.openaiKey.setPlaceholderText("sk-…")
        self.checkKeyButton = name(QPushButton("Check key"), "Check the OpenAI key",
                                   "checkKeyButton")
        self.openaiStatus = name(outcome_label("openaiStatus"), "OpenAI key check")
        if keychain.available:
            where = "Your key will be kept in the system keychain, never in a file."
        else:
            where = "No keychain here: a pasted key is kept until you quit."
        self.keychainStatus = name(hint_label(where), "Where the key is kept",
                                   "keychainStatus")
        details = "" if keychain.available else (
            " Set OPENAI_API_KEY in your environment to skip this step.")
        self.keychainStatus.setToolTip(keychain.reason + details)  # the details, on demand
        self.openaiKey.returnPressed.connect(self.check_key)
        self.checkKeyButton.clicked.connect(self.check_key)
        return _card("I have an OpenAI API key",
                     "Paste it here; it is checked by listing your models. Keys are at "
                     "platform.openai.com/api-keys.",
                     _row(self.openaiKey, self.checkKeyButton), self.openaiStatus,
                     self.keychainStatus)

    def _local_card(self) -> QFrame:
        self.localStatus = name(hint_label(), "Local servers", "localStatus")
        self.serverList = QWidget(objectName="localServers")
        self._servers = QVBoxLayout(self.serverList)
        self._servers.setContentsMargins(0, 0, 0, 0)
        self.rescanButton = name(QPushButton("Look again"), "Look for local servers again",
                                 "rescanButton")
        self.rescanButton.clicked.connect(self.rescan_requested)
        return _card("Local servers on this computer",
                     "Ollama, LM Studio, llama.cpp server or vLLM: no key needed.",
                     self.serverList, self.localStatus, _row(self.rescanButton))

    def _custom_card(self) -> QFrame:
        self.customUrl = name(QLineEdit(), "Server base URL", "customBaseUrl")
        self.customUrl.setPlaceholderText("https://host/v1")
        self.customKey = name(QLineEdit(), "API key for this server (optional)", "customKey")
        self.customKey.setEchoMode(QLineEdit.EchoMode.Password)
        self.customKey.setPlaceholderText("API key, if the server needs one")
        self.connectButton = name(QPushButton("Connect"), "Connect to the server",
                                  "connectButton")
        self.customStatus = name(outcome_label("customStatus"), "Connection check")
        # a server that answers but lists no models: the model box takes a typed name
        self.connectAnyway = name(QPushButton("Use it without a model list"),
                                  "Use the server without a model list",
                                  "connectAnywayButton")
        self.connectAnyway.hide()
        self._unlisted: tuple[str, str | None] | None = None
        self.connectButton.clicked.connect(self.connect_custom)
        self.customKey.returnPressed.connect(self.connect_custom)
        self.connectAnyway.clicked.connect(self._use_unlisted)
        return _card("Another OpenAI-compatible server",
                     "Any server that speaks the OpenAI API, local or remote.",
                     self.customUrl, _row(self.customKey, self.connectButton),
                     self.customStatus, _row(self.connectAnyway))

    # -- slots ----------------------------------------------------------------------------

    def set_offline_available(self, available: bool) -> None:
        self.offlineCard.setVisible(available)

    def show_probing(self, probing: bool) -> None:
        self.rescanButton.setEnabled(not probing)
        if probing:
            self.localStatus.setText("Looking for local servers…")
        else:
            self._show_local_status()

    def show_found(self, found: list[Found]) -> None:
        self._found = list(found)
        while (item := self._servers.takeAt(0)) is not None:
            if (old := item.widget()) is not None:
                old.hide()
                old.deleteLater()
        previous: QWidget = self.checkKeyButton
        for server in self._found:
            row = self._server_row(server)
            self._servers.addWidget(row)
            button = row.findChild(QPushButton)
            QWidget.setTabOrder(previous, button)  # rows come later, but Tab follows the page
            previous = button
        QWidget.setTabOrder(previous, self.rescanButton)
        self.serverList.setVisible(bool(self._found))
        self._show_local_status()

    def _server_row(self, server: Found) -> QWidget:
        count = len(server.models)
        models = f"{count} model{'s' if count != 1 else ''}" if count else "no models listed"
        label = QLabel(f"<b>{html.escape(server.preset.label)}</b> &nbsp;·&nbsp; "
                       f"{html.escape(server.base_url)} &nbsp;·&nbsp; {models}")
        label.setTextFormat(Qt.TextFormat.RichText)
        button = name(QPushButton("Use"), f"Use {server.preset.label}", "useLocalServer")
        button.clicked.connect(lambda: self.local_server_chosen.emit(server))
        return _row(label, button, stretch_first=True)

    def _show_local_status(self) -> None:
        if self._found:
            self.localStatus.setText("")
            self.localStatus.hide()
            return
        self.localStatus.setText("None found. Start one of them, then press Look again.")
        self.localStatus.show()

    def check_key(self) -> None:
        key = self.openaiKey.text().strip()
        if not key:
            show_outcome(self.openaiStatus, "Paste your key first.", ok=False)
            self.openaiKey.setFocus()
            return
        self.checkKeyButton.setEnabled(False)
        show_outcome(self.openaiStatus, "Checking the key…", ok=True)
        self.tasks.start(self._run_key_check(key), what="Checking the key")

    async def _run_key_check(self, key: str) -> None:
        models = await self._checked(self._check_openai_key(key), self.openaiStatus)
        self.checkKeyButton.setEnabled(True)
        if models is not None:
            show_outcome(self.openaiStatus, f"✓ The key works ({_models(models)}).", ok=True)
            self.openai_key_accepted.emit(key, models)

    def connect_custom(self) -> None:
        url = with_scheme(self.customUrl.text())
        if problem := base_url_problem(url):
            show_outcome(self.customStatus, problem, ok=False)
            self.customUrl.setFocus()
            return
        self.connectButton.setEnabled(False)
        self.connectAnyway.hide()
        show_outcome(self.customStatus, f"Connecting to {url} …", ok=True)
        self.tasks.start(self._run_server_check(url, self.customKey.text().strip() or None),
                         what="Connecting to the server")

    async def _run_server_check(self, url: str, key: str | None) -> None:
        found: list[str] = []  # the base URL that answered (a bare host: with /v1)

        async def check(candidate: str) -> list[str]:
            models = await self._check_server(candidate, key)
            found.append(candidate)
            return models

        models = await self._checked(find_api_root(url, check), self.customStatus)
        self.connectButton.setEnabled(True)
        if models is not None:
            url = found[-1]
            self.customUrl.setText(url)
            show_outcome(self.customStatus, f"✓ Connected ({_models(models)}).", ok=True)
            self.custom_chosen.emit(url, key, models)
        elif self._unlisted_error:
            self._unlisted = (url, key)
            self.connectAnyway.show()

    def _use_unlisted(self) -> None:
        if self._unlisted is not None:
            url, key = self._unlisted
            self.custom_chosen.emit(url, key, [])

    async def _checked(self, check: Awaitable[list[str] | tuple[str, list[str]]],
                       status: QLabel) -> list[str] | None:
        """The models (in the server's order), or None after showing why the check failed."""
        self._unlisted_error = False
        try:
            answer = await check
            return list(answer[1] if isinstance(answer, tuple) else answer)
        except ChatError as exc:
            self._unlisted_error = exc.kind is ErrorKind.NO_MODEL_LIST
            show_outcome(status, exc.message, ok=False)
        except Exception as exc:  # the panel never shows a traceback
            log.warning("welcome check failed unexpectedly: %s", type(exc).__name__)
            show_outcome(status, f"The check failed unexpectedly ({type(exc).__name__}). "
                    "Try again, or pick another way.", ok=False)
        return None

    def cancel_checks(self) -> None:
        """Stop checks still running (call before throwing the panel away)."""
        self.tasks.cancel_all()


def _models(models: list[str]) -> str:
    return f"{len(models)} model{'s' if len(models) != 1 else ''} available"


def _card(title: str, text: str, *parts: QWidget) -> QFrame:
    card = QFrame(objectName="welcomeCard")
    card.setStyleSheet(card_style())
    layout = QVBoxLayout(card)
    space = current().space
    layout.setContentsMargins(space.l, space.m, space.l, space.m)
    heading = QLabel(title)
    font = heading.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.1)
    heading.setFont(font)
    heading.setAccessibleName(title)
    layout.addWidget(heading)
    description = QLabel(text)
    description.setWordWrap(True)
    layout.addWidget(description)
    for part in parts:
        layout.addWidget(part)
    return card


def _row(*widgets: QWidget, stretch_first: bool = False) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for index, widget in enumerate(widgets):
        grows = isinstance(widget, QLineEdit) or (stretch_first and index == 0)
        layout.addWidget(widget, 1 if grows else 0)
    if not any(isinstance(w, QLineEdit) for w in widgets) and not stretch_first:
        layout.addStretch(1)
    return row


def heading_font(base: QFont, offset: int) -> QFont:
    font = QFont(base)
    font.setPointSizeF(point_size(offset))
    font.setWeight(QFont.Weight.DemiBold)
    return font


class EmptyChat(QWidget):
    """The empty chat's greeting, centred over the conversation view: an icon, "How can I
    help?" and the model it will talk to. It lets the mouse through to the view below."""

    def __init__(self, view: QWidget) -> None:
        super().__init__(view)
        self.setObjectName("emptyChat")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.icon = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel("How can I help?", alignment=Qt.AlignmentFlag.AlignCenter)
        self.title.setObjectName("emptyChatTitle")
        self.title.setFont(heading_font(self.title.font(), current().type.heading[0]))
        self.model = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.model.setObjectName("emptyChatModel")
        self.model.setTextFormat(Qt.TextFormat.PlainText)  # a server's model name
        self.restyle()
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        for widget in (self.icon, self.title, self.model):
            layout.addWidget(widget)
        layout.addStretch(1)
        view.installEventFilter(self)
        self._fit()

    def restyle(self) -> None:
        c = current().colors
        self.icon.setPixmap(icons.icon("chat", c.muted).pixmap(40, 40))
        self.title.setStyleSheet(f"color: {c.text};")
        self.model.setStyleSheet(f"color: {c.muted};")

    def show_model(self, model: str, provider: str = "") -> None:
        where = f" on {provider}" if provider else ""
        self.model.setText(f"Chatting with {model}{where}" if model else
                           "Choose a model above to start")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parent() and event.type() == QEvent.Type.Resize:
            self._fit()
        return False

    def _fit(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())
