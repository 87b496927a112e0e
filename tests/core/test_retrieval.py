"""Hybrid retrieval without Qt, against the loopback server's real /embeddings route: a
question in other words than the document finds its deep page where BM25 alone does not;
passages are embedded once per document and model, kept in the history, and go with it; an
endpoint that fails falls back to BM25, said once and logged, and the turn goes on."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_chat.core.chat import documents as chat_documents
from desktop_chat.core.chat.retrieval import EMBED_BATCH, HybridRetrieval, fuse, pack
from desktop_chat.core.chat.session import ChatSession
from desktop_chat.core.chat.usage import estimate_tokens
from desktop_chat.core.config.providers import Endpoint
from desktop_chat.core.documents.extract import Section, whole_text
from desktop_chat.core.history import documents, schema
from desktop_chat.core.history.documents import StoredDocument
from desktop_chat.core.history.store import Store
from desktop_chat.core.llm.client import ChatClient
from desktop_chat.core.llm.errors import ChatError
from desktop_chat.core.model.message import DocumentRef, ReplyState
from tests.support.chat_wire import Scenario
from tests.support.documents import FACT, SYNONYM_QUESTION, filler
from tests.support.openai_server import LoopbackServer, embed_text

MODEL = "test-embedding"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(Scenario(deltas=["Marmalade Quasar."])) as running:
        yield running


def book(store: Store, pages: int = 300, fact_page: int = 237) -> DocumentRef:
    sections = []
    for page in range(1, pages + 1):
        text = filler(page)
        if page == fact_page:
            text = f"{text[:400]} {FACT} {text[400:]}"
        sections.append(Section(f"Port operations report, section {page}.\n{text}", page))
    ref = DocumentRef("ab" * 32, "port report.pdf", "pdf", 1, pages,
                      estimate_tokens(whole_text(sections)))
    return store.add_document(StoredDocument.of(ref, sections))


def client_for(server: LoopbackServer) -> ChatClient:
    return ChatClient(Endpoint(server.base_url, "sk-test", 5.0, 5.0))


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_fusion_ranks_by_reciprocal_ranks() -> None:
    assert fuse([[1, 2, 3], [3, 1, 4]]) == [1, 3, 2, 4]  # 1: 1/61 + 1/62 beats 3: 1/63 + 1/61
    assert fuse([[5], []]) == [5]
    assert fuse([]) == []


def test_the_servers_vectors_bring_synonyms_together() -> None:
    def cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / ((sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5)

    question = embed_text(SYNONYM_QUESTION)
    assert cosine(question, embed_text(FACT)) > 0.3
    assert cosine(question, embed_text(filler(5))) < cosine(question, embed_text(FACT))


def test_a_question_in_other_words_finds_the_deep_page_only_with_embeddings(
        store: Store, server: LoopbackServer) -> None:
    ref = book(store)
    budget = chat_documents.budget_for(8192, 0.5)
    by_words = chat_documents.choose(store, [ref], SYNONYM_QUESTION, budget)
    assert by_words and not any(FACT in p.text.replace("\n", " ") for p in by_words)

    async def hybrid() -> tuple[list, list]:
        retrieval = HybridRetrieval(store, client_for(server), MODEL)
        try:
            first = await retrieval.search([ref.sha256], SYNONYM_QUESTION)
            again = await retrieval.search([ref.sha256], SYNONYM_QUESTION)
        finally:
            retrieval.close()
            await retrieval.client.aclose()
        return first, again

    first, again = run(hybrid())
    assert first is not None and again == first
    # fused: high in the list (BM25's best "harbour" passage may share the top), not first
    [deep] = [n for n, p in enumerate(first) if FACT in p.text.replace("\n", " ")]
    assert first[deep].page == 237 and deep < 3
    passages = store._rows("SELECT count(*) FROM document_chunks")[0][0]
    # every passage embedded once (in batches), then only the questions
    asked = server.embeddings_asked
    assert len(asked) == -(-passages // EMBED_BATCH) + 2
    assert sum(len(r.body["input"]) for r in asked) == passages + 2
    assert {r.body["model"] for r in asked} == {MODEL}
    kept = store._rows("SELECT count(*) FROM document_vectors WHERE model = ?", (MODEL,))
    assert kept[0][0] == passages
    chosen = chat_documents.choose(store, [ref], SYNONYM_QUESTION, budget, found=first)
    assert 237 in [p.page for p in chosen]
    assert sum(estimate_tokens(p.text) for p in chosen) <= budget


def test_a_turn_with_embeddings_sends_the_deep_page(store: Store, server: LoopbackServer
                                                     ) -> None:
    ref = book(store)
    session = ChatSession(client_for(server), "test-model", store=store, context_window=8192)
    session.retrieval = HybridRetrieval(store, session.client, MODEL)
    turn = session.start(SYNONYM_QUESTION, documents=[ref])

    async def go() -> None:
        try:
            await session.run(turn)
        finally:
            session.retrieval.close()
            await session.client.aclose()

    run(go())
    assert turn.reply.state is ReplyState.COMPLETE
    [request] = server.replies_asked
    sent = request.body["messages"][-1]["content"]
    assert FACT in sent.replace("\n", " ")
    assert '<document source="port report.pdf, page 237">' in sent
    assert 237 in [p.page for p in turn.reply.passages]


@pytest.mark.parametrize("fault", ["unknown model", "no endpoint", "server error"])
def test_failing_embeddings_fall_back_to_words_once_and_say_so(
        store: Store, server: LoopbackServer, caplog: pytest.LogCaptureFixture,
        fault: str) -> None:
    ref = book(store)
    if fault == "unknown model":
        server.embedding_models = set()
    elif fault == "no endpoint":
        server.embeddings_scenario = Scenario(status=404, error_body={
            "error": {"message": "Unknown path /v1/embeddings"}})
    else:
        server.embeddings_scenario = Scenario(status=500)
    notices: list[str] = []
    session = ChatSession(client_for(server), "test-model", store=store, context_window=8192)
    session.retrieval = HybridRetrieval(store, session.client, MODEL, notices.append)

    async def two_turns() -> None:
        try:
            for prompt in ("Where do the barges berth?", "And the cranes?"):
                turn = session.start(prompt, documents=[ref] if not session.messages else ())
                await session.run(turn)
                assert turn.reply.state is ReplyState.COMPLETE
        finally:
            session.retrieval.close()
            await session.client.aclose()

    with caplog.at_level(logging.WARNING, "desktop_chat.documents"):
        run(two_turns())
    assert len(server.embeddings_asked) == 1  # tried once, then words only
    assert len(server.replies_asked) == 2
    sent = server.replies_asked[0].body["messages"][-1]["content"]
    assert "barge" in sent and '<document source="port report.pdf, page' in sent  # BM25's
    [notice] = notices
    assert notice.startswith("Embeddings are not available: The server gave no embeddings "
                             f"for model '{MODEL}' (HTTP ")
    assert "searched by their words only (BM25)" in notice and "nothing was lost" in notice
    assert any("searching documents by words only" in r.getMessage() for r in caplog.records)
    assert session.retrieval.unavailable is not None


def test_vectors_are_kept_after_a_backup_and_go_with_their_document(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with Store(path) as store:
        ref = book(store, pages=3, fact_page=2)
        session = ChatSession(ChatClient.__new__(ChatClient), "m", store=store)
        session.start("hello", documents=[ref])
        before = len(schema.backups(path))
        [(chunk, _text), *_] = store.unembedded_passages([ref.sha256], MODEL)
        store.add_passage_vectors(MODEL, [(chunk, pack([1.0, 0.0, 0.5]))])
        assert len(schema.backups(path)) == before + 1  # the table came after a backup
        with sqlite3.connect(schema.backups(path)[-1]) as old:
            assert not old.execute("SELECT 1 FROM sqlite_master WHERE name = "
                                   "'document_vectors'").fetchall()
        assert store.passage_vectors(ref.sha256, MODEL) == [(chunk, pack([1.0, 0.0, 0.5]))]
        assert len(store.unembedded_passages([ref.sha256], MODEL)) == len(
            store.unembedded_passages([ref.sha256], "other-model")) - 1
        store.add_passage_vectors(MODEL, [(chunk, pack([0.0, 1.0, 0.0]))])  # no second backup
        assert len(schema.backups(path)) == before + 1
        store.discard_conversation(session.conversation_id)
        assert store.document(ref.sha256) is None
        assert store._rows("SELECT count(*) FROM document_vectors")[0][0] == 0
        assert documents.has_vectors(store._conn)


def test_malformed_embeddings_are_a_clear_error(server: LoopbackServer) -> None:
    async def ask() -> None:
        client = client_for(server)
        try:
            await client.embed("nope", ["text"])
        finally:
            await client.aclose()

    server.embedding_models = set()
    with pytest.raises(ChatError, match="no embeddings for model 'nope' \\(HTTP 404"):
        run(ask())


def test_a_document_is_embedded_ahead_and_the_question_waits_for_it(
        store: Store, server: LoopbackServer) -> None:
    ref = book(store, pages=40, fact_page=33)
    retrieval = HybridRetrieval(store, client_for(server), MODEL)

    async def ahead_then_ask() -> list | None:
        try:
            preparing = asyncio.ensure_future(retrieval.prepare([ref.sha256]))
            await asyncio.sleep(0)  # it holds the embedding lock: the question waits for it
            found = await retrieval.search([ref.sha256], SYNONYM_QUESTION)
            await preparing
            return found
        finally:
            retrieval.close()
            await retrieval.client.aclose()

    found = run(ahead_then_ask())
    passages = store._rows("SELECT count(*) FROM document_chunks")[0][0]
    assert sum(len(r.body["input"]) for r in server.embeddings_asked) == passages + 1
    assert found is not None and 33 in [p.page for p in found[:3]]
