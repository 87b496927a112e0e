"""Searching documents by meaning through the real window: embeddings turned on in Settings
find the deep page of a question worded in other words (the loopback server's /embeddings);
an endpoint that fails falls back to words (BM25) with one notice, and the reply comes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.support.chat_wire import Scenario
from tests.support.documents import FACT, SYNONYM_QUESTION, make_pdf
from tests.support.openai_server import LoopbackServer
from tests.ui.app_support import Launcher, accept, open_settings, profile
from tests.ui.conftest import ChatDriver, until
from tests.ui.test_documents_window import last_sent
from tests.ui.test_images_window import drop_files

EMBEDDINGS = {"embeddings": True, "embedding_model": "test-embedding"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pdf(tmp_path_factory.mktemp("docs") / "port report.pdf", 120, 97)


def ask(chat: ChatDriver, server: LoopbackServer, pdf: Path, question: str,
        before_sending: Callable[[], bool] = lambda: True) -> None:
    """Attach `pdf`, wait for it and `before_sending`, send `question`, wait for the reply:
    all in one run of the loop, as background embedding goes on from the attach to the
    send (see `wait_until` on why the loop must not stop meanwhile)."""
    strip, sent = chat.window.documentStrip, len(server.replies_asked)

    async def scenario() -> None:
        drop_files(chat, pdf)
        await until(chat.loop, lambda: len(strip.documents) == 1 and not strip.reading)
        await until(chat.loop, before_sending)
        chat.send(question)
        await until(chat.loop, lambda: len(server.replies_asked) > sent
                    and not chat.window.stopButton.isEnabled())

    chat.loop.run_until_complete(scenario())


def test_embeddings_turned_on_in_settings_find_the_deep_page_in_other_words(
        app: Launcher, server: LoopbackServer, report: Path) -> None:
    app.write_settings({"profiles": [profile("lan", server.base_url)], "active_profile": "lan"})
    chat = app.start()
    dialog = open_settings(chat)
    (form,) = dialog.providers.forms()
    assert not form.embeddings.isChecked() and form.embeddingModel.isHidden()  # off by default
    QTest.mouseClick(form.embeddings, Qt.MouseButton.LeftButton)
    assert form.embeddingModel.isVisible()
    form.embeddingModel.setText("test-embedding")
    accept(chat, dialog)
    assert app.stored_settings()["profiles"][0] | EMBEDDINGS == app.stored_settings(
        )["profiles"][0]
    server.push(Scenario(deltas=["Marmalade Quasar, 7.3 kg (page 97)."]))
    store = chat.window.controller.store

    def embedded() -> int:
        return sum(len(r.body["input"]) for r in server.embeddings_asked)

    def passages() -> int:
        return store._rows("SELECT count(*) FROM document_chunks")[0][0]

    # the passages are embedded in the background once the file is read, before any question
    ask(chat, server, report, SYNONYM_QUESTION, lambda: passages() and embedded() == passages())
    assert embedded() == passages() + 1  # then only the question
    sent = last_sent(server)
    assert FACT in sent.replace("\n", " ")  # the words of the question are not in it
    assert '<document source="port report.pdf, page 97">' in sent
    assert server.embeddings_asked and {
        r.body["model"] for r in server.embeddings_asked} == {"test-embedding"}
    assert "[" in chat.transcript_text() and "port report.pdf, page 97" in chat.transcript_text()
    assert not chat.window.errorBanner.isVisible()


@pytest.mark.parametrize("fault", ["unknown model", "failing endpoint"])
def test_failing_embeddings_fall_back_to_words_with_one_notice(
        app: Launcher, server: LoopbackServer, report: Path, fault: str) -> None:
    if fault == "unknown model":
        server.embedding_models = set()
    else:
        server.embeddings_scenario = Scenario(status=503, error_body={
            "error": {"message": "embeddings backend is down"}})
    app.write_settings({"profiles": [profile("lan", server.base_url, **EMBEDDINGS)],
                        "active_profile": "lan"})
    chat = app.start()
    banner, notices = chat.window.errorBanner, []

    def notice_shown() -> bool:  # said when the attached file's passages could not be embedded
        if banner.isVisible() and "Embeddings are not available" in banner.text():
            notices.append(banner.text())
        return bool(notices)

    ask(chat, server, report, "Which barge left the harbour?", notice_shown)
    assert "Embeddings are not available: The server gave no embeddings for model " \
           "'test-embedding' (HTTP " in notices[0]
    assert "searched by their words only (BM25)" in notices[0]
    sent = last_sent(server)
    assert '<document source="port report.pdf, page' in sent and "barge" in sent  # BM25's
    assert chat.window.controller.session.messages[-1].content == "Hello world"
    asked = len(server.embeddings_asked)
    chat.send("And the cranes?")
    chat.wait_for_reply()
    assert len(server.embeddings_asked) == asked == 1  # not tried again this session
    assert not banner.isVisible()  # said once
    log = (app.data_dir / "logs").glob("*.log")
    assert any("searching documents by words only" in p.read_text() for p in log)
