"""The demo model, honestly labelled: what it is (a tiny base model whose answers are not
reliable) and the Gemma terms that apply to it.

The terms are a web page saved inside the demo model's package. They are shown in a small
dialog (a QTextBrowser, opened with .open(), never exec()) that loads nothing: no stylesheets,
fonts or images from the network, and no other local file. A link the user clicks opens in
their browser, like any link they choose to follow.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop_chat.core.engine import offline as engines

if TYPE_CHECKING:
    from desktop_chat.ui.engine_supervisor import EngineSupervisor

log = logging.getLogger("desktop_chat.demo_terms")

TERMS_TITLE = "Gemma Terms of Use"
TERMS_URL = "https://ai.google.dev/gemma/terms"  # where the saved page came from
# Page furniture that is no part of the terms: code, styles, the site's own widgets.
_FURNITURE = re.compile(r"<(script|style|noscript|template|svg|button|devsite-[\w-]+)\b[^>]*>"
                        r".*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_BODY_START = '<div class="devsite-article-body'
_BODY_END = ("<devsite-content-footer", "</article>")


def terms_html(path: Path) -> str:
    """The terms' text from the saved page (its article body), without scripts and styles."""
    page = path.read_text("utf-8", errors="replace")
    start = page.find(_BODY_START)
    if start >= 0:
        ends = [end for marker in _BODY_END if (end := page.find(marker, start)) > start]
        page = f"<h1>{TERMS_TITLE}</h1>" + page[start:min(ends, default=len(page))]
    return _FURNITURE.sub("", page)


class OfflineBrowser(QTextBrowser):
    """A QTextBrowser that fetches nothing: every image, stylesheet or page it would load
    is refused, so showing the terms never touches the network or another file."""

    def loadResource(self, kind: int, url: QUrl) -> object:  # Qt calls it for every resource
        log.debug("not loading %s resource %s", kind, url.toString())
        return None


class DemoTermsDialog(QDialog):
    def __init__(self, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("demoTermsDialog")
        self.setWindowTitle(f"{TERMS_TITLE} — demo model")
        self.resize(720, 640)
        note = QLabel(f"{engines.DEMO_LABEL}. Using it means accepting these terms.")
        note.setWordWrap(True)
        self.browser = OfflineBrowser(objectName="termsBrowser")
        self.browser.setAccessibleName(TERMS_TITLE)
        self.browser.setOpenLinks(False)  # links are handled below, never loaded in here
        self.browser.anchorClicked.connect(self._follow)
        try:
            self.browser.setHtml(terms_html(path))
        except OSError as exc:
            self.browser.setPlainText(f"The terms cannot be read from {path} "
                                      f"({exc.strerror or exc}). They are at {TERMS_URL}")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)

    def _follow(self, url: QUrl) -> None:
        if url.toString().startswith("#"):
            self.browser.scrollToAnchor(url.fragment())
            return
        absolute = QUrl(TERMS_URL).resolved(url)  # the page's links are site-relative
        if absolute.scheme() in ("http", "https"):
            QDesktopServices.openUrl(absolute)


def open_terms(parent: QWidget, path: Path | None = None) -> DemoTermsDialog | None:
    """Show the demo model's terms (non-modal to the event loop: .open()). None when the demo
    model is not installed."""
    path = path or engines.demo_terms_path()
    if path is None:
        return None
    dialog = DemoTermsDialog(path, parent.window())
    dialog.finished.connect(dialog.deleteLater)
    dialog.open()
    return dialog


def terms_button(parent: QWidget | None = None) -> QPushButton:
    """"Gemma terms…": opens the terms; hidden when the demo model is not installed."""
    button = QPushButton("Gemma terms…", parent, objectName="demoTermsButton")
    button.setAccessibleName("Read the Gemma terms of the demo model")
    button.setToolTip("The terms of use that apply to the built-in demo model")
    button.clicked.connect(lambda: open_terms(button))
    button.setVisible(engines.demo_terms_path() is not None)
    return button


def demo_note(parent: QWidget | None = None) -> QLabel:
    """The demo model's label, for panels and forms (next to a `terms_button`); hidden when
    the demo model is not installed."""
    label = QLabel(f"⚠ {engines.DEMO_LABEL}. The Gemma terms apply to it.", parent,
                   objectName="demoNote")
    label.setWordWrap(True)
    label.setAccessibleName("About the demo model")
    label.setVisible(engines.demo_terms_path() is not None)
    return label


class DemoNotice(QLabel):
    """Next to the model while the demo model answers: what it is, and a link to its terms."""

    def __init__(self, offline: EngineSupervisor, parent: QWidget | None = None) -> None:
        super().__init__(f"⚠ {engines.DEMO_LABEL} · <a href='terms'>Gemma terms</a>", parent,
                         objectName="demoNotice")
        self.setWordWrap(True)
        self.setAccessibleName("Demo model")
        self.setToolTip("The built-in demo model is tiny and not instruction-tuned: it is "
                        "there to try the app offline, not to rely on. Pick another GGUF "
                        "model file in Settings.")
        self.linkActivated.connect(lambda _link: open_terms(self))
        offline.demo_changed.connect(self.setVisible)
        self.setVisible(offline.demo_in_use)
