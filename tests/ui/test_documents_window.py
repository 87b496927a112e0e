"""Documents through the real window and the loopback server: attached by drop, paste or the
Attach button, read in the background into chips, sent whole or as the passages that answer
the question (with their source), listed under the reply with the exact context sent, kept
across a restart; every bad file refused with a message while nothing typed is lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog

from desktop_chat.core.documents.extract import MAX_DOCUMENT_BYTES
from desktop_chat.core.render.actions import Action, link
from desktop_chat.ui.document_chips import TextViewer
from tests.support.documents import (
    FACT,
    FACT_QUESTION,
    make_damaged_pdf,
    make_docx,
    make_encrypted_pdf,
    make_pdf,
    make_zip_bomb_docx,
)
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, wait_until
from tests.ui.test_images_window import drop_files

ANSWER = ["The cat is called ", "Marmalade Quasar (port report.pdf, page 237)."]


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pdf(tmp_path_factory.mktemp("docs") / "port report.pdf", 300, 237)


def ready(chat: ChatDriver, count: int = 1) -> None:
    strip = chat.window.documentStrip
    wait_until(chat.loop, lambda: len(strip.documents) == count and not strip.reading)


def last_sent(server: LoopbackServer) -> str:
    content = server.replies_asked[-1].body["messages"][-1]["content"]
    assert isinstance(content, str)
    return content


def click(chat: ChatDriver, href: str) -> None:
    chat.window.transcript._anchor_clicked(QUrl(href))


def viewers(chat: ChatDriver) -> list[TextViewer]:
    return [v for v in chat.window.findChildren(TextViewer) if v.isVisible()]


def test_a_question_about_a_deep_pdf_page_gets_that_page_and_its_source(
        chat: ChatDriver, server: LoopbackServer, long_pdf: Path) -> None:
    server.push(Scenario(deltas=ANSWER))
    drop_files(chat, long_pdf)
    strip = chat.window.documentStrip
    assert strip.isVisible() and strip.reading == ["port report.pdf"]  # read in the background
    ready(chat)
    [chip] = strip.documents
    assert "port report.pdf · 300 pages · ≈" in strip.text_of(strip._items[0].key)
    assert chip.pages == 300
    chat.send(FACT_QUESTION)
    chat.wait_for_reply()
    sent = last_sent(server)
    assert FACT in sent.replace("\n", " ")  # the deep page's passage went to the model
    assert '<document source="port report.pdf, page 237">' in sent
    assert sent.endswith(FACT_QUESTION) and len(sent) < 40_000  # passages, not 300 pages
    assert not strip.isVisible()
    text = chat.transcript_text()
    assert "Document: port report.pdf · 300 pages" in text
    assert "Sources\n[1] port report.pdf, page 237 — “" in text and "Marmalade Quasar" in text
    click(chat, link(Action.SOURCE, 0))
    [passage] = viewers(chat)
    assert passage.windowTitle() == "port report.pdf, page 237"
    assert "Marmalade Quasar" in passage.text.toPlainText()
    passage.close()
    click(chat, link(Action.CONTEXT, 1))  # "What was sent": exactly the message sent
    [context] = viewers(chat)
    assert context.text.toPlainText() == sent
    context.close()


def test_a_word_file_pasted_in_answers_from_its_deep_page(
        chat: ChatDriver, server: LoopbackServer, tmp_path: Path) -> None:
    handbook = make_docx(tmp_path / "handbook.docx", pages=40, fact_page=31)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(handbook))])
    QGuiApplication.clipboard().setMimeData(mime)
    chat.window.composer.paste()
    ready(chat)
    chat.send(FACT_QUESTION)
    chat.wait_for_reply()
    sent = last_sent(server)
    assert FACT in sent.replace("\n", " ")
    assert '<document source="handbook.docx, page 31">' in sent


def test_a_short_file_is_sent_whole_and_with_every_later_prompt(
        chat: ChatDriver, server: LoopbackServer, tmp_path: Path) -> None:
    recipe = tmp_path / "pancakes.md"
    recipe.write_text("# Pancakes\n\nTwo eggs, one cup of flour, a pinch of salt.\n")
    drop_files(chat, recipe)
    ready(chat)
    chat.send("How many eggs?")
    chat.wait_for_reply()
    sent = last_sent(server)
    assert sent.startswith("The user attached the documents below.")
    assert ('<document source="pancakes.md (whole document)">\n# Pancakes\n\nTwo eggs, one '
            "cup of flour, a pinch of salt.\n</document>") in sent
    assert "[1] pancakes.md (whole document)" in chat.transcript_text()
    chat.send("And salt?")
    chat.wait_for_reply()
    assert "a pinch of salt" in last_sent(server)  # still part of the conversation


def test_a_file_deleted_after_it_was_read_is_still_sent_and_kept(
        make_window: Callable[..., ChatDriver], server: LoopbackServer, tmp_path: Path,
        long_pdf: Path) -> None:
    chat = make_window()
    copy = tmp_path / "port report.pdf"
    copy.write_bytes(long_pdf.read_bytes())
    drop_files(chat, copy)
    ready(chat)
    copy.unlink()  # the text was read already: the history owns a copy
    chat.send(FACT_QUESTION)
    chat.wait_for_reply()
    assert FACT in last_sent(server).replace("\n", " ")
    chat.window.close()
    again = make_window()  # a restart: the sources are still under the reply
    wait_until(again.loop, lambda: "Sources" in again.transcript_text())
    assert "[1] port report.pdf, page 237" in again.transcript_text()
    again.send("And what does it weigh?")
    again.wait_for_reply()
    assert "port report.pdf, page 237" in last_sent(server)  # retrieval across restarts


def test_sending_waits_for_a_document_still_being_read(
        chat: ChatDriver, server: LoopbackServer, long_pdf: Path) -> None:
    drop_files(chat, long_pdf)
    chat.send(FACT_QUESTION)  # at once: the reading has not even started
    banner = chat.window.errorBanner
    assert banner.isVisible() and "'port report.pdf' is still being read" in banner.text()
    assert chat.window.composer.toPlainText() == FACT_QUESTION
    assert server.replies_asked == []
    ready(chat)
    chat.press_enter()
    chat.wait_for_reply()
    assert FACT in last_sent(server).replace("\n", " ")


def test_the_attach_button_opens_a_file_chooser_without_blocking(
        chat: ChatDriver, server: LoopbackServer, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The meeting moved to Thursday.")
    chat.window.attachButton.click()
    [dialog] = [d for d in chat.window.findChildren(QFileDialog) if d.isVisible()]
    dialog.selectFile(str(notes))
    dialog.accept()
    ready(chat)
    assert [d.name for d in chat.window.documentStrip.documents] == ["notes.txt"]
    chat.window.documentStrip._remove(chat.window.documentStrip._items[0].key)
    assert chat.window.documentStrip.documents == [] and not chat.window.documentStrip.isVisible()


def _oversize(path: Path) -> Path:
    with path.open("wb") as file:  # sparse: the size is checked before anything is read
        file.truncate(MAX_DOCUMENT_BYTES + 1)
    return path


def _unknown_encoding(path: Path) -> Path:
    noise = bytes(range(1, 256)) * 40
    path.write_bytes(noise[::-1] + noise)
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


FAULTS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("locked.pdf", make_encrypted_pdf, "'locked.pdf' is protected by a password"),
    ("broken.pdf", make_damaged_pdf, "'broken.pdf' is damaged or not really a PDF"),
    ("empty.txt", _empty, "'empty.txt' is empty"),
    ("huge.txt", _oversize, "'huge.txt' is 64.0 MB; documents up to 64.0 MB can be attached"),
    ("bomb.docx", lambda p: make_zip_bomb_docx(p, 300), "(a 'zip bomb'). It was not opened"),
    ("legacy.txt", _unknown_encoding, "'legacy.txt' is in a text encoding that could not be "
                                      "recognised"),
    ("vanished.pdf", lambda p: p, "'vanished.pdf' is no longer there"),
]


@pytest.mark.parametrize(("name", "make", "message"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_file_that_cannot_be_used_is_refused_clearly_and_nothing_is_lost(
        chat: ChatDriver, server: LoopbackServer, tmp_path: Path, name: str,
        make: Callable[[Path], Path], message: str) -> None:
    chat.type("Summarise this please")
    drop_files(chat, make(tmp_path / name))
    banner = chat.window.errorBanner
    wait_until(chat.loop, lambda: banner.isVisible() and message in banner.text())
    assert chat.window.composer.toPlainText() == "Summarise this please"
    assert chat.window.documentStrip.documents == []
    assert not chat.window.documentStrip.isVisible()
    assert server.replies_asked == []


def test_the_documents_share_setting_decides_whole_or_passages(
        make_window: Callable[..., ChatDriver], server: LoopbackServer, tmp_path: Path) -> None:
    chat = make_window(settings={"document_share": 0.05})  # ~400 tokens of an unknown window
    notes = tmp_path / "notes.txt"
    paragraphs = [f"Item {n}: the quarterly ledger lists shipments and tariffs." for n in range(80)]
    paragraphs[61] = "Item 61: the spare key is under the blue flowerpot."
    notes.write_text("\n\n".join(paragraphs))
    drop_files(chat, notes)
    ready(chat)
    chat.send("Where is the spare key?")
    chat.wait_for_reply()
    sent = last_sent(server)
    assert '<document source="notes.txt">' in sent and "(whole document)" not in sent
    assert "the spare key is under the blue flowerpot" in sent
    assert "Item 2:" not in sent  # passages only, within the share
