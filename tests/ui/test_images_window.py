"""Images through the real window: pasted into the composer, shown above it, sent as a data-URL
content part, shown as a thumbnail in the transcript, kept in the history; refused with a
clear message by a server without vision (prompt and image given back) or when the file
cannot be sent."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QColor, QImage, QTextCharFormat, QTextDocument
from PySide6.QtWidgets import QLabel

from desktop_chat.core.model.message import MAX_ATTACHMENT_BYTES
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.app_support import snapshot
from tests.ui.conftest import ChatDriver, wait_until
from tests.ui.test_history import click_row

REJECTION = {"error": {"message": "Invalid content type. image_url is only supported by "
                       "certain models.", "type": "invalid_request_error",
                       "param": "messages.[0].content.[1].type", "code": None}}


def picture(width: int = 48, height: int = 32, color: str = "#d93025") -> QImage:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(color))
    return image


def paste(chat: ChatDriver, image: QImage) -> None:
    mime = QMimeData()
    mime.setImageData(image)
    assert chat.window.composer.canInsertFromMimeData(mime)
    chat.window.composer.insertFromMimeData(mime)


def drop_files(chat: ChatDriver, *paths: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    chat.window.composer.insertFromMimeData(mime)


def strip_thumbnails(chat: ChatDriver) -> list[QLabel]:
    strip = chat.window.attachmentStrip
    return [label for label in strip.findChildren(QLabel)
            if label.isVisible() and not label.pixmap().isNull()]


def transcript_images(chat: ChatDriver) -> list[QImage]:
    """The images shown in the transcript, from the document's own resources."""
    document = chat.window.transcript.document()
    found = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt: QTextCharFormat = it.fragment().charFormat()
            if fmt.isImageFormat():
                name = fmt.toImageFormat().name()
                found.append(document.resource(QTextDocument.ResourceType.ImageResource,
                                                QUrl(name)))
            it += 1
        block = block.next()
    return found


def image_part(server: LoopbackServer) -> bytes:
    content = server.replies_asked[-1].body["messages"][-1]["content"]
    assert isinstance(content, list), content
    (image,) = [p for p in content if p["type"] == "image_url"]
    url = image["image_url"]["url"]
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return base64.b64decode(url.removeprefix(prefix))


def test_a_pasted_image_is_sent_shown_and_kept(chat: ChatDriver, server: LoopbackServer,
                                               make_window: Callable[..., ChatDriver]) -> None:
    chat.type("What colour is this?")
    paste(chat, picture())
    assert chat.window.composer.toPlainText() == "What colour is this?"  # no text pasted
    assert chat.window.attachmentStrip.isVisible() and len(strip_thumbnails(chat)) == 1
    chat.press_enter()
    chat.wait_for_reply()
    content = server.replies_asked[-1].body["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "What colour is this?"}
    sent = QImage.fromData(image_part(server))
    assert (sent.width(), sent.height()) == (48, 32)
    assert sent.pixelColor(5, 5) == QColor("#d93025")
    assert chat.window.attachmentStrip.isHidden() and chat.window.composer.toPlainText() == ""
    shown = transcript_images(chat)
    assert len(shown) == 1 and shown[0].width() == 48
    snapshot(chat, "chat-with-image")

    chat.window.newChatButton.click()
    wait_until(chat.loop, lambda: not transcript_images(chat))
    click_row(chat, 0)
    wait_until(chat.loop, lambda: "What colour is this?" in chat.transcript_text())
    assert len(transcript_images(chat)) == 1
    chat.send("And now?")  # the earlier image goes with the history
    chat.wait_for_reply()
    first_turn = server.replies_asked[-1].body["messages"][0]["content"]
    assert [p["type"] for p in first_turn] == ["text", "image_url"]

    chat.window.close()
    again = make_window()  # a restart reopens the last chat, image included
    wait_until(again.loop, lambda: "What colour is this?" in again.transcript_text())
    assert len(transcript_images(again)) == 1


def test_an_image_alone_can_be_sent(chat: ChatDriver, server: LoopbackServer) -> None:
    paste(chat, picture(color="#1a73e8"))
    chat.press_enter()
    chat.wait_for_reply()
    assert QImage.fromData(image_part(server)).pixelColor(1, 1) == QColor("#1a73e8")
    assert chat.window.conversationList.count() == 1


def test_a_server_without_vision_refuses_and_gives_prompt_and_image_back(
        chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(status=400, error_body=REJECTION))
    chat.type("Describe it")
    paste(chat, picture())
    chat.press_enter()
    chat.wait_for_reply()
    shown = chat.window.shown_error()  # in the card where the reply would have been
    assert "does not accept images" in shown and "test-model" in shown
    assert chat.window.composer.toPlainText() == "Describe it"
    assert len(chat.window.attachmentStrip.attachments) == 1
    assert len(strip_thumbnails(chat)) == 1
    assert transcript_images(chat) == [] and "Describe it" not in chat.transcript_text()
    chat.window.attachmentStrip.remove(0)  # the user takes the image out and sends again
    chat.press_enter()
    chat.wait_for_reply()
    assert server.replies_asked[-1].body["messages"][-1]["content"] == "Describe it"
    assert "Hello world" in chat.transcript_text()


def test_files_that_cannot_be_sent_are_refused_and_nothing_is_lost(
        chat: ChatDriver, server: LoopbackServer, tmp_path: Path) -> None:
    chat.type("Look at these")
    paste(chat, picture())
    huge = tmp_path / "huge.png"
    with huge.open("wb") as file:  # sparse: the size is checked before reading
        file.truncate(MAX_ATTACHMENT_BYTES + 1)
    drop_files(chat, huge)
    banner = chat.window.errorBanner
    assert banner.isVisible() and "'huge.png' is 20.0 MB" in banner.text()
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture at all", encoding="utf-8")
    drop_files(chat, fake)
    assert "'notes.png' is not a PNG, JPEG, GIF or WebP image" in banner.text()
    report = tmp_path / "report.pdf"  # not an image: read as a document, refused as one
    report.write_bytes(b"%PDF-1.7 ...")
    drop_files(chat, report)
    wait_until(chat.loop, lambda: "'report.pdf' is damaged or not really a PDF" in
               banner.text())
    drop_files(chat, tmp_path)  # a folder
    wait_until(chat.loop, lambda: f"'{tmp_path.name}' is a folder" in banner.text())
    assert not chat.window.documentStrip.isVisible()
    assert chat.window.composer.toPlainText() == "Look at these"
    assert len(chat.window.attachmentStrip.attachments) == 1
    assert server.requests == []
    good = tmp_path / "photo.png"
    picture(color="#188038").save(str(good))
    drop_files(chat, good)
    assert [a.name for a in chat.window.attachmentStrip.attachments] == [
        "pasted image.png", "photo.png"]
    chat.press_enter()
    chat.wait_for_reply()
    parts = server.replies_asked[-1].body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url"]
