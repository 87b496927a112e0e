"""Reading a file into text: what kind of document it is (from its bytes first, its name
second), its text in sections (a PDF page, a part of a Word file or a web page under one
heading), and a message for the user for every way that can fail.

Why pypdfium2 for PDF rather than pypdf: PDFium is the engine Chrome uses, so it reads the
damaged and odd files people actually have; it extracts a 300-page file about ten times
faster; and its work happens in C, outside the GIL, so a worker thread reading a large PDF
leaves the window's event loop alone (pypdf is pure Python and would compete with it).

Word files are zip archives: the archive's table of contents is checked before anything is
unpacked, so a "zip bomb" (a few KB that inflate to gigabytes) is refused unread. Their text is
read from `word/document.xml` with the standard library's ElementTree (expat refuses entity
expansion attacks) rather than python-docx: importing python-docx (and lxml) takes ~0.1 s of
held GIL, which stalled the window's event loop for 175-260 ms on the first Word file of a
session (measured: benchmarks/documents.py's meter around the import in a worker thread);
the text, headings, tables and page breaks are all this needs.
Text files are decoded as UTF-8 (with or without a byte order mark), UTF-16/32 with a BOM,
else by charset-normalizer's detection; a file it cannot place is refused rather than shown
as mojibake.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

log = logging.getLogger("desktop_chat.documents")

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
# A Word file's parts, unpacked: real documents with many images stay far below this.
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200  # deflate reaches ~1000:1 only on degenerate (bomb) data
MAX_ZIP_MEMBERS = 20_000
# Fewer characters than this per page on average: no text layer (a scan; at most a stamped
# page number or two).
MIN_TEXT_PER_PAGE = 8

# Progress: (done, total), e.g. pages read. Raising from it cancels the extraction.
Progress = Callable[[int, int], None]

KIND_LABELS = {"pdf": "PDF", "docx": "Word document", "markdown": "Markdown", "html": "web page",
               "csv": "CSV table", "code": "source code", "text": "text"}
_BY_EXTENSION = {
    ".pdf": "pdf", ".docx": "docx",
    ".md": "markdown", ".markdown": "markdown", ".mdown": "markdown",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".csv": "csv", ".tsv": "csv",
    ".txt": "text", ".text": "text", ".log": "text", ".rst": "text", ".tex": "text",
    ".org": "text", ".adoc": "text",
}
CODE_EXTENSIONS = frozenset(
    [
        ".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".c", ".h", ".cc", ".cpp",
        ".cxx", ".hpp", ".hh", ".java", ".kt", ".kts", ".go", ".rs", ".rb", ".php", ".swift", ".m",
        ".mm", ".cs", ".fs", ".scala", ".clj", ".hs", ".ml", ".lua", ".pl", ".r", ".jl", ".dart",
        ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd", ".sql", ".css", ".scss", ".less",
        ".vue", ".svelte", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf",
        ".xml", ".gradle", ".cmake", ".mk", ".dockerfile", ".proto", ".graphql", ".ipynb", ".env"
    ])
_CODE_NAMES = frozenset({"makefile", "dockerfile", "cmakelists.txt", "readme", "license"})


class DocumentError(ValueError):
    """A file that cannot be used as a document; the message is for the user as is."""


class ScannedDocument(DocumentError):
    """A PDF whose pages are pictures: there is no text to read without OCR (its pages can
    go to a vision model as images: core/documents/pages.py)."""

    def __init__(self, message: str, name: str = "", pages: int = 0) -> None:
        super().__init__(message)
        self.name = name
        self.pages = pages


@dataclass(frozen=True, slots=True)
class Section:
    """A stretch of a document's text that one place names: `page` (1-based; None for a
    document without pages) and the `heading` it sits under ("" if none)."""

    text: str
    page: int | None = None
    heading: str = ""


@dataclass(slots=True)
class Extracted:
    name: str
    kind: str
    sha256: str
    size: int
    sections: list[Section] = field(default_factory=list)
    pages: int | None = None

    @property
    def text(self) -> str:
        """The whole text as it is sent when it fits: pages marked, so the model can cite
        them."""
        return whole_text(self.sections)


def whole_text(sections: list[Section]) -> str:
    out: list[str] = []
    page: int | None = None
    for section in sections:
        if section.page is not None and section.page != page:
            page = section.page
            out.append(f"[page {page}]")
        out.append(section.text)
    return "\n\n".join(t for t in out if t)


def kind_of(name: str, head: bytes) -> str | None:
    """The kind of document from the file's first bytes, then its name; None when it is
    none we read (an image, an archive, a program)."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    suffix = Path(name).suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        return "docx" if suffix in ("", ".docx") else None
    if suffix in (".pdf", ".docx"):
        return suffix[1:]  # claims it; reading it says what is wrong
    if _looks_binary(head):
        return None
    if suffix in _BY_EXTENSION:
        return _BY_EXTENSION[suffix]
    if suffix in CODE_EXTENSIONS or Path(name).name.lower() in _CODE_NAMES:
        return "code"
    return "text"  # no NUL bytes, no known binary signature: read it as text


def _looks_binary(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return False  # a BOM: UTF-16 text has NUL bytes
    return b"\x00" in head[:8192]


def extract_file(path: Path, progress: Progress | None = None,
                 max_bytes: int = MAX_DOCUMENT_BYTES) -> Extracted:
    """Read `path` as a document. Raises DocumentError (user text) when it cannot be one."""
    name = path.name
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DocumentError(
                f"'{name}' is {size_text(size)}; documents up to {size_text(max_bytes)} can "
                "be attached. Split it, or attach only the part you need.")
        data = path.read_bytes()
    except FileNotFoundError:
        raise DocumentError(f"'{name}' is no longer there: it was moved or deleted before it "
                            "could be read. Attach it again from where it is now.") from None
    except IsADirectoryError:
        raise DocumentError(f"'{name}' is a folder; attach the files in it instead.") from None
    except OSError as exc:
        raise DocumentError(f"'{name}' could not be read: {exc.strerror or exc}.") from exc
    return extract_bytes(data, name, progress)


def size_text(size: int) -> str:
    """"1.5 MB", "12 KB"."""
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{-(-size // 1024)} KB"


def extract_bytes(data: bytes, name: str, progress: Progress | None = None) -> Extracted:
    if not data:
        raise DocumentError(f"'{name}' is empty: there is nothing in it to send.")
    kind = kind_of(name, data[:8192])
    if kind is None:
        raise DocumentError(
            f"'{name}' is not a document desktop-chat can read. Attach PDF, Word (.docx), "
            "text, Markdown, HTML, CSV or source code files.")
    doc = Extracted(name, kind, hashlib.sha256(data).hexdigest(), len(data))
    if kind == "pdf":
        doc.sections, doc.pages = _pdf(data, name, progress)
    elif kind == "docx":
        doc.sections, doc.pages = _docx(data, name)
    else:
        text = decode_text(data, name)
        doc.sections = _html(text) if kind == "html" else (
            _markdown(text) if kind == "markdown" else [Section(text.strip())])
    doc.sections = [s for s in doc.sections if s.text.strip()]
    if not doc.sections:
        raise DocumentError(f"'{name}' has no text in it: there is nothing to send.")
    return doc


# -- PDF --------------------------------------------------------------------------------------


def _pdf(data: bytes, name: str, progress: Progress | None) -> tuple[list[Section], int]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise DocumentError(
                f"'{name}' is protected by a password, so its text cannot be read. Open it "
                "in a PDF reader, save an unprotected copy, and attach that.") from None
        log.info("PDF %s could not be opened: %s", name, exc)
        raise DocumentError(
            f"'{name}' is damaged or not really a PDF, so its text cannot be read. Open it "
            "in a PDF reader; if it shows there, print it to a new PDF and attach that."
        ) from None
    try:
        total = len(pdf)
        sections = []
        for index in range(total):
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                text = textpage.get_text_bounded()
                textpage.close()
            except pdfium.PdfiumError as exc:
                log.info("PDF %s page %d unreadable: %s", name, index + 1, exc)
                text = ""
            finally:
                page.close()
            sections.append(Section(_clean(text), index + 1))
            if progress is not None:
                progress(index + 1, total)
    finally:
        pdf.close()
    letters = sum(len("".join(s.text.split())) for s in sections)
    if total and letters < MIN_TEXT_PER_PAGE * total:
        pictures = "its page is a picture" if total == 1 else f"its {total} pages are pictures"
        raise ScannedDocument(
            f"'{name}' has no text layer: {pictures} (a scan), so there is no text to "
            "send. Run it through OCR (a "
            "scanner's software, or 'ocrmypdf'), then attach the result, or attach "
            "screenshots of the pages you need to a model that can see images.", name, total)
    return sections, total


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return re.sub(r"[ \t]+\n", "\n", text).strip()


# -- Word -------------------------------------------------------------------------------------


def check_zip(data: bytes, name: str) -> None:
    """Refuse an archive that would unpack to far more than a document does."""
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise DocumentError(f"'{name}' is damaged: it is not a readable Word file ({exc}). "
                            "Open it in Word or LibreOffice and save it again.") from None
    unpacked = sum(m.file_size for m in members)
    packed = max(1, sum(m.compress_size for m in members))
    if (len(members) > MAX_ZIP_MEMBERS or unpacked > MAX_UNPACKED_BYTES
            or (unpacked > 16 * 1024 * 1024 and unpacked / packed > MAX_COMPRESSION_RATIO)):
        raise DocumentError(
            f"'{name}' would unpack to {unpacked / 1024 / 1024:.0f} MB from "
            f"{len(data) / 1024:.0f} KB, which no real Word file does (a 'zip bomb'). It "
            "was not opened.")


def _docx(data: bytes, name: str) -> tuple[list[Section], int | None]:
    import io
    from xml.etree import ElementTree as ET  # ~3 ms, for Word files only: not at start

    check_zip(data, name)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            body = ET.fromstring(archive.read("word/document.xml")).find(f"{_W}body")
    except KeyError:
        raise DocumentError(f"'{name}' is not a Word (.docx) file: it has no document in it. "
                            "Open it in Word or LibreOffice and save it as .docx.") from None
    except (ET.ParseError, zipfile.BadZipFile, OSError, ValueError) as exc:
        log.info("Word file %s unreadable: %r", name, exc)
        raise DocumentError(f"'{name}' is damaged: its text cannot be read ({exc}). Open it "
                            "in Word or LibreOffice and save it again.") from None
    if body is None:
        raise DocumentError(f"'{name}' has no text in it: there is nothing to send.")
    return _docx_sections(body)


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _docx_sections(body: Element) -> tuple[list[Section], int | None]:
    """Paragraphs and tables in order; a new section at each heading and page break. Word
    files have no fixed pages, but explicit page breaks (and the breaks Word recorded when it
    last laid the file out) give page numbers that match what the author saw."""
    sections: list[Section] = []
    lines: list[str] = []
    page, heading, breaks = 1, "", False

    def flush() -> None:
        if lines:
            sections.append(Section("\n".join(lines).strip(), page, heading))
            lines.clear()

    for block in body:
        if block.tag == f"{_W}p":
            style = block.find(f"{_W}pPr/{_W}pStyle")
            style_name = style.get(f"{_W}val", "") if style is not None else ""
            text = "".join(t.text or "" for t in block.iter(f"{_W}t"))
            page_breaks = sum(1 for br in block.iter(f"{_W}br")
                              if br.get(f"{_W}type") == "page")
            page_breaks += sum(1 for _ in block.iter(f"{_W}lastRenderedPageBreak"))
            if style_name.lower().startswith(("heading", "title")) and text.strip():
                flush()
                heading = text.strip()
            if page_breaks and not text.strip():
                flush()
                page += page_breaks
                breaks = True
                continue
            if text.strip():
                lines.append(text)
            if page_breaks:
                flush()
                page += page_breaks
                breaks = True
        elif block.tag == f"{_W}tbl":
            for row in block.iter(f"{_W}tr"):
                cells = ["".join(t.text or "" for t in cell.iter(f"{_W}t"))
                         for cell in row.iter(f"{_W}tc")]
                lines.append(" | ".join(c.strip() for c in cells))
    flush()
    if not breaks:
        sections = [Section(s.text, None, s.heading) for s in sections]
    return sections, (page if breaks else None)


# -- text -------------------------------------------------------------------------------------


# Western, Central and Eastern European, Greek, Turkish, Hebrew, Arabic, Baltic (Windows, ISO,
# Mac, DOS code pages), Japanese, Chinese, Korean, Thai.
COMMON_ENCODINGS = [
    "cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2", "cp1251", "koi8_r", "cp1253",
    "cp1254", "cp1255", "cp1256", "cp1257", "mac_roman", "cp437", "cp850", "cp866",
    "shift_jis", "cp932", "euc_jp", "gb18030", "big5", "euc_kr", "cp949", "tis_620",
]


def decode_text(data: bytes, name: str) -> str:
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
                       (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"),
                       (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    sample = data[:1024 * 1024]
    # The encodings files are actually in first: trying all ~90 imports a codec module for
    # each (50 ms of held interpreter on the first file, which the window felt); the rest
    # only when none of these reads cleanly.
    matches = [m for m in from_bytes(sample, cp_isolation=COMMON_ENCODINGS) if m.chaos < 0.1]
    matches = matches or list(from_bytes(sample))
    if matches and matches[0].chaos < 0.1:
        # Western single-byte code pages often tie; Windows-1252 is by far the most common.
        tied = [m.encoding for m in matches if m.chaos <= matches[0].chaos]
        encoding = "cp1252" if "cp1252" in tied else matches[0].encoding
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            pass
    raise DocumentError(
        f"'{name}' is in a text encoding that could not be recognised, so it cannot be read "
        "reliably. Open it in a text editor and save it as UTF-8, then attach it again.")


# Bytes that are not UTF-8: decoding them runs charset-normalizer's whole detection once.
_LEGACY_SAMPLE = "Café naïve façade – “señor”. ".encode("cp1252") * 4


def warm_up() -> None:
    """Load what the first text file in a legacy encoding needs, for a worker thread at a
    quiet moment: charset-normalizer (~25 ms) and the codec modules its first detection
    imports one by one (~24 of them, see COMMON_ENCODINGS), each a few file reads that must
    take the interpreter back from the window's thread. Done while a file is being read, that
    competition stalled the window's loop (benchmarks/documents.py: "first cp1252 text
    file"); after this, detecting an encoding takes a few ms."""
    decode_text(_LEGACY_SAMPLE, "warm-up")


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _markdown(text: str) -> list[Section]:
    sections: list[Section] = []
    lines: list[str] = []
    heading, fenced = "", False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _MD_HEADING.match(line)
        if match:
            sections.append(Section("\n".join(lines).strip(), None, heading))
            lines, heading = [], match.group(2)
        lines.append(line)
    sections.append(Section("\n".join(lines).strip(), None, heading))
    return sections


def _html(text: str) -> list[Section]:
    # Loaded with the first web page: html.parser and its entity tables took ~5 ms of the
    # app's start (issue #18), and most sessions read no web page.
    from desktop_chat.core.documents.web_page import page_sections

    return page_sections(text)
