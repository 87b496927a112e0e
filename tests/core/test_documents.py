"""Documents as context, without Qt: reading each kind of file, every way a file can be
refused, passages, the index in the history, what a prompt gets, export and import."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from desktop_chat.core.chat import documents as chat_documents
from desktop_chat.core.chat.session import ChatSession
from desktop_chat.core.documents.chunks import CHUNK_CHARS, chunk_sections, split_text
from desktop_chat.core.documents.extract import (
    DocumentError,
    ScannedDocument,
    Section,
    extract_bytes,
    extract_file,
    kind_of,
)
from desktop_chat.core.history import documents, schema
from desktop_chat.core.history.store import Store
from desktop_chat.core.history.transfer import TransferError, export_json, import_json
from desktop_chat.core.llm.client import ChatClient
from desktop_chat.core.model.message import Message, Passage, ReplyState, Role
from tests.support.documents import (
    FACT,
    FACT_QUESTION,
    make_damaged_pdf,
    make_docx,
    make_encrypted_pdf,
    make_pdf,
    make_scanned_pdf,
    make_zip_bomb_docx,
)


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pdf(tmp_path_factory.mktemp("docs") / "port report.pdf", pages=300,
                    fact_page=237)


@pytest.fixture(scope="module")
def long_docx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_docx(tmp_path_factory.mktemp("docs") / "handbook.docx", pages=40, fact_page=31)


# -- reading ---------------------------------------------------------------------------------


def test_a_300_page_pdf_is_read_page_by_page(long_pdf: Path) -> None:
    seen: list[tuple[int, int]] = []
    doc = extract_file(long_pdf, lambda done, total: seen.append((done, total)))
    assert (doc.kind, doc.pages, len(doc.sections)) == ("pdf", 300, 300)
    assert seen[0] == (1, 300) and seen[-1] == (300, 300)
    [page] = [s.page for s in doc.sections if "Marmalade Quasar" in s.text]
    assert page == 237
    assert "[page 237]" in doc.text and len(doc.sha256) == 64


def test_a_word_file_keeps_its_pages_and_headings(long_docx: Path) -> None:
    doc = extract_file(long_docx)
    assert (doc.kind, doc.pages) == ("docx", 40)
    [section] = [s for s in doc.sections if "Marmalade Quasar" in s.text]
    assert (section.page, section.heading) == (31, "Chapter 31")


def test_text_kinds_are_told_by_bytes_then_name() -> None:
    assert kind_of("x.bin", b"%PDF-1.7 ...") == "pdf"
    assert kind_of("notes.md", b"# Title") == "markdown"
    assert kind_of("main.rs", b"fn main() {}") == "code"
    assert kind_of("Makefile", b"all:\n") == "code"
    assert kind_of("table.csv", b"a,b\n1,2") == "csv"
    assert kind_of("photo.dat", b"\x89PNG\r\n\x1a\n\0\0") is None  # binary: not a document
    assert kind_of("archive.zip", b"PK\x03\x04") is None


def test_markdown_and_html_are_split_at_headings() -> None:
    md = extract_bytes(b"Intro text\n\n## Setup\nInstall it.\n```\n# not a heading\n```\n"
                       b"## Use\nRun it.", "guide.md")
    assert [s.heading for s in md.sections] == ["", "Setup", "Use"]
    assert "# not a heading" in md.sections[1].text
    page = extract_bytes(b"<html><head><style>p{}</style><script>alert(1)</script></head>"
                         b"<body><h1>Menu</h1><p>Soup &amp; bread</p><h2>Prices</h2>"
                         b"<p>Cheap</p></body></html>", "menu.html")
    assert [(s.heading, s.text.splitlines()[-1]) for s in page.sections] == [
        ("Menu", "Soup & bread"), ("Prices", "Cheap")]
    assert "alert" not in page.text


@pytest.mark.parametrize(("data", "expected"), [
    ("Café naïve façade — señor".encode("cp1252") * 20, "Café naïve façade — señor"),
    ("Привет, как дела? Это тест. ".encode("cp1251") * 20, "Привет, как дела?"),
    ("Grüße aus Köln".encode("utf-16"), "Grüße aus Köln"),
    ("\ufeffBOM text".encode(), "BOM text"),
])
def test_text_encodings_are_detected(data: bytes, expected: str) -> None:
    assert expected in extract_bytes(data, "notes.txt").text


# -- refusals ----------------------------------------------------------------------------------


def _refusal(path: Path, **kwargs: object) -> str:
    with pytest.raises(DocumentError) as caught:
        extract_file(path, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


def test_faults_each_get_a_clear_message(tmp_path: Path) -> None:
    assert "protected by a password" in _refusal(make_encrypted_pdf(tmp_path / "locked.pdf"))
    assert "damaged or not really a PDF" in _refusal(make_damaged_pdf(tmp_path / "bad.pdf"))
    assert "zip bomb" in _refusal(make_zip_bomb_docx(tmp_path / "bomb.docx", inflated_mb=300))
    (tmp_path / "empty.txt").write_bytes(b"")
    assert "'empty.txt' is empty" in _refusal(tmp_path / "empty.txt")
    (tmp_path / "blank.md").write_text("  \n\n \t\n")
    assert "has no text in it" in _refusal(tmp_path / "blank.md")
    (tmp_path / "big.txt").write_text("x" * 5000)
    assert "'big.txt' is 5 KB; documents up to 4 KB can be attached. Split it" in _refusal(
        tmp_path / "big.txt", max_bytes=4096)
    assert "no longer there" in _refusal(tmp_path / "gone.pdf")
    assert "is a folder" in _refusal(tmp_path)
    noise = bytes(range(1, 256)) * 40
    (tmp_path / "noise.txt").write_bytes(noise[::-1] + noise)
    assert "encoding that could not be recognised" in _refusal(tmp_path / "noise.txt")
    (tmp_path / "picture.bmp").write_bytes(b"BM\0\0\0\0" * 100)
    assert "not a document desktop-chat can read" in _refusal(tmp_path / "picture.bmp")
    (tmp_path / "fake.docx").write_bytes(b"PK\x03\x04 not really a zip")
    assert "damaged" in _refusal(tmp_path / "fake.docx")


def test_a_scanned_pdf_says_it_has_no_text_layer(tmp_path: Path) -> None:
    with pytest.raises(ScannedDocument, match=r"no text layer.*OCR"):
        extract_file(make_scanned_pdf(tmp_path / "scan.pdf", pages=2))


# -- passages ------------------------------------------------------------------------------------


def test_passages_stay_in_their_section_with_overlap() -> None:
    words = [f"w{n}" for n in range(2000)]
    pieces = split_text(" ".join(words), size=500, overlap=80)
    assert all(len(p) <= 500 for p in pieces)
    for before, after in itertools.pairwise(pieces):
        # the cut is covered: the next piece starts with the previous one's last words
        overlap = after.split()[:after.split().index(before.split()[-1]) + 1]
        assert overlap == before.split()[-len(overlap):] and 10 <= len(overlap) <= 20
    joined = {w for p in pieces for w in p.split()}
    assert joined == set(words)
    chunks = chunk_sections([Section("a " * 900, 1), Section("b " * 10, 2, "Two")])
    assert {c.page for c in chunks if "b" in c.text} == {2}
    assert all(c.text.count("b") == 0 for c in chunks if c.page == 1)
    assert all(len(c.text) <= CHUNK_CHARS for c in chunks)


# -- the index -------------------------------------------------------------------------------


def test_a_document_is_kept_once_and_found_by_bm25(store: Store, long_pdf: Path) -> None:
    ref = chat_documents.read_document(store, long_pdf)
    again = chat_documents.read_document(store, long_pdf)
    assert (ref.pages, ref.kind, ref.name) == (300, "pdf", "port report.pdf")
    assert again == ref and ref.tokens > 50_000
    rows = store._rows("SELECT count(*) FROM documents")[0][0]
    assert rows == 1
    best = store.search_documents([ref.sha256], FACT_QUESTION)
    assert best[0].page == 237 and "Marmalade Quasar" in best[0].text
    assert store.search_documents([ref.sha256], 'NEAR( "* -') == []  # syntax is just text


def _session(store: Store, window: int = 8192) -> ChatSession:
    client = ChatClient.__new__(ChatClient)  # requests are only built here, never sent
    return ChatSession(client, "m", store=store, context_window=window)


def test_a_long_document_sends_the_deep_page_and_names_it(store: Store, long_pdf: Path
                                                          ) -> None:
    ref = chat_documents.read_document(store, long_pdf)
    session = _session(store)
    turn = session.start(FACT_QUESTION, documents=[ref])
    request = session.build_request(turn)
    sent = request.messages[-1]["content"]
    assert FACT in sent.replace("\n", " ")
    assert 'source="port report.pdf, page 237"' in sent
    assert sent.endswith(FACT_QUESTION)
    assert chat_documents.budget_for(8192, 0.5) >= chat_documents.estimate_tokens(sent) - 200
    assert turn.reply.passages[0].page == 237
    # the reply keeps its sources; the prompt its document, across a restart
    turn.reply.append_text("Marmalade Quasar.")
    turn.reply.state = ReplyState.COMPLETE
    store.finish_reply(turn.reply)
    with Store(store.path) as reopened:
        prompt, reply = reopened.active_path(session.conversation_id)
        assert prompt.documents == [ref]
        assert reply.passages == turn.reply.passages
        assert chat_documents.context_text(reopened, reply.passages) in sent


def test_a_short_document_is_sent_whole_with_its_name(store: Store, tmp_path: Path) -> None:
    (tmp_path / "recipe.md").write_text("# Pancakes\n\nTwo eggs, one cup of flour.\n")
    ref = chat_documents.read_document(store, tmp_path / "recipe.md")
    session = _session(store)
    turn = session.start("How many eggs?", documents=[ref])
    sent = session.build_request(turn).messages[-1]["content"]
    assert '<document source="recipe.md (whole document)">' in sent
    assert "Two eggs, one cup of flour." in sent
    assert turn.reply.passages == [Passage(ref.sha256, "recipe.md", whole=True)]
    # later prompts get it too, without attaching it again
    session.messages.append(Message.of(Role.ASSISTANT, "Two."))
    follow_up = session.start("And flour?")
    assert "one cup of flour" in session.build_request(follow_up).messages[-1]["content"]


def test_documents_go_with_their_last_conversation(store: Store, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha beta gamma")
    ref = chat_documents.read_document(store, tmp_path / "a.txt")
    first, second = _session(store), _session(store)
    first.start("one", documents=[ref])
    second.start("two", documents=[ref])
    store.discard_conversation(first.conversation_id)
    assert store.document(ref.sha256) is not None  # still used by the second
    store.delete_conversation(second.conversation_id)
    assert store.purge_deleted() == 1
    assert store.document(ref.sha256) is None
    assert store._rows("SELECT count(*) FROM document_chunks")[0][0] == 0


def test_a_document_never_sent_is_forgotten(store: Store, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha beta gamma")
    ref = chat_documents.read_document(store, tmp_path / "a.txt")
    assert store.forget_unused_documents(older_than_s=3600) == 0  # maybe still being sent
    assert store.forget_unused_documents(older_than_s=-1) == 1
    assert store.document(ref.sha256) is None


def test_the_first_document_adds_its_tables_after_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with Store(path) as store:
        assert not documents.has_tables(store._conn)  # a history without documents stays
        assert store.search_documents(["0" * 64], "anything") == []  # compact, and reads
        assert store.active_path(store.create_conversation("c")) == []  # work without them
        session = _session(store)
        session.start("hello")
        assert schema.backups(path) == []
        (tmp_path / "a.txt").write_text("alpha beta")
        chat_documents.read_document(store, tmp_path / "a.txt")
        assert documents.has_tables(store._conn)
        [backup] = schema.backups(path)
        with sqlite3.connect(backup) as old:
            assert old.execute("SELECT count(*) FROM messages").fetchone()[0] == 2
            assert not old.execute("SELECT 1 FROM sqlite_master WHERE name = 'documents'"
                                   ).fetchall()


def test_export_and_import_carry_documents_and_sources(store: Store, fresh: Store,
                                                        long_docx: Path) -> None:
    ref = chat_documents.read_document(store, long_docx)
    session = _session(store)
    turn = session.start(FACT_QUESTION, documents=[ref])
    session.build_request(turn)
    turn.reply.append_text("Marmalade Quasar.")
    turn.reply.state = ReplyState.COMPLETE
    store.finish_reply(turn.reply)
    data = export_json(store)
    [conversation] = data["conversations"]
    assert conversation["documents"][0]["sha256"] == ref.sha256
    result = import_json(fresh, data)
    assert result.conversations == 1
    [summary] = fresh.list_conversations()
    prompt, reply = fresh.active_path(summary.id)
    assert prompt.documents == [ref]
    assert reply.passages[0].heading == "Chapter 31" and reply.passages[0].page == 31
    assert fresh.search_documents([ref.sha256], FACT_QUESTION)[0].page == 31
    conversation["uid"] = "another"  # a reference to a document the file lacks is refused
    conversation["documents"] = []
    with pytest.raises(TransferError, match="document the file does not hold"):
        import_json(fresh, data)


def test_a_prompt_none_of_whose_words_are_in_it_gets_the_beginning(store: Store,
                                                                    long_pdf: Path) -> None:
    ref = chat_documents.read_document(store, long_pdf)
    passages = chat_documents.choose(store, [ref], "Summarise this, please!", budget=2000)
    assert passages and passages[0].page == 1
    assert [p.page for p in passages] == sorted(p.page for p in passages)
    sent = sum(chat_documents.estimate_tokens(p.text) + 12 for p in passages)
    assert sent <= 2000
