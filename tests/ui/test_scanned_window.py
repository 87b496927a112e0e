"""A scanned PDF (pages that are only pictures) through the real window: it says there is no
text layer; to a model that sees images it offers 'Send pages as images', which draws the
pages (off the GUI thread) and sends them as the message's image parts; to one that does not,
it says so plainly and nothing is offered. Nothing typed is lost either way."""

from __future__ import annotations

import base64
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolButton

from desktop_chat.core.documents.pages import LONG_SIDE_PX, MAX_PAGES
from tests.support.documents import make_scanned_pdf
from tests.support.openai_server import LoopbackServer
from tests.ui.app_support import Launcher, profile, snapshot
from tests.ui.conftest import ChatDriver, wait_until
from tests.ui.test_images_window import drop_files


def offer(chat: ChatDriver) -> QToolButton | None:
    return chat.window.documentStrip.findChild(QToolButton, "sendPagesButton")


def test_a_scanned_pdf_is_offered_to_a_vision_model_and_sent_as_page_images(
        chat: ChatDriver, server: LoopbackServer, tmp_path: Path) -> None:
    chat.type("What does this form say?")
    drop_files(chat, make_scanned_pdf(tmp_path / "form.pdf", pages=3))
    banner, strip = chat.window.errorBanner, chat.window.documentStrip
    wait_until(chat.loop, lambda: offer(chat) is not None)
    assert "'form.pdf' has no text layer: its 3 pages are pictures (a scan)" in banner.text()
    assert "This model can see images: 'Send pages as images' on its chip" in banner.text()
    assert strip.isVisible() and strip.scans == ["form.pdf"] and strip.documents == []
    snapshot(chat, "scanned-offer")
    QTest.mouseClick(offer(chat), Qt.MouseButton.LeftButton)
    images = chat.window.attachmentStrip
    wait_until(chat.loop, lambda: len(images.attachments) == 3)
    assert not strip.isVisible() and not banner.isVisible()
    assert [a.name for a in images.attachments] == [f"form page {n}.jpg" for n in (1, 2, 3)]
    assert chat.window.composer.toPlainText() == "What does this form say?"
    chat.window.composer.setFocus()
    QTest.keyClick(chat.window.composer, Qt.Key.Key_Return)
    chat.wait_for_reply()
    parts = server.replies_asked[-1].body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url", "image_url"]
    assert parts[0]["text"] == "What does this form say?"
    url = parts[1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    page = QImage.fromData(base64.b64decode(url.split(",", 1)[1]))
    assert max(page.width(), page.height()) == LONG_SIDE_PX  # an A4 page, long side
    assert page.pixelColor(page.width() // 2, page.height() // 2).lightness() > 200  # paper


def test_only_the_first_pages_of_a_long_scan_are_drawn(
        chat: ChatDriver, server: LoopbackServer, tmp_path: Path) -> None:
    drop_files(chat, make_scanned_pdf(tmp_path / "book.pdf", pages=MAX_PAGES + 2))
    wait_until(chat.loop, lambda: offer(chat) is not None)
    assert f"attaches the first {MAX_PAGES} of its {MAX_PAGES + 2} pages" in (
        chat.window.errorBanner.text())
    QTest.mouseClick(offer(chat), Qt.MouseButton.LeftButton)
    wait_until(chat.loop, lambda: len(chat.window.attachmentStrip.attachments) == MAX_PAGES)


def test_a_scanned_pdf_for_a_model_without_vision_says_so_plainly(
        app: Launcher, server: LoopbackServer, tmp_path: Path) -> None:
    app.write_settings({"profiles": [profile("text", server.base_url, sees_images=False)],
                        "active_profile": "text"})
    chat = app.start()
    chat.type("Summarise this please")
    drop_files(chat, make_scanned_pdf(tmp_path / "scan.pdf", pages=1))
    banner = chat.window.errorBanner
    wait_until(chat.loop, lambda: banner.isVisible() and "no text layer" in banner.text())
    assert "'scan.pdf' has no text layer: its page is a picture (a scan)" in banner.text()
    assert "The model of this connection does not take images" in banner.text()
    assert "Send pages as images" not in banner.text() and offer(chat) is None
    assert not chat.window.documentStrip.isVisible()
    assert chat.window.composer.toPlainText() == "Summarise this please"
    assert server.replies_asked == []
