"""`--self-test`: build the window offscreen and check the runtime pieces a frozen build can
lose (Qt platform plugin, sqlite, TLS certificates, resources, markdown). Exit 0 or 1."""

from __future__ import annotations

import argparse
import os
import sqlite3
import ssl
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

CONTRACT_NAMES = ("composer", "sendButton", "stopButton", "transcript", "conversationList",
                  "newChatButton", "modelPicker")


def run_self_test(args: argparse.Namespace) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    checks: list[tuple[str, Callable[[], str]]] = [
        ("sqlite", _check_sqlite),
        ("tls", _check_tls),
        ("resources", _check_resources),
        ("markdown", _check_markdown),
        ("documents", _check_documents),
        ("keychain", _check_keychain),
        ("mcp", _check_mcp),
        ("window", lambda: _check_window(args)),
        ("document extras", _check_document_extras),
        ("math", _check_math),
    ]
    failed = 0
    for name, check in checks:
        try:
            detail = check()
            line = f"PASS {name}: {detail}"
        except Exception as exc:  # report every failure, then exit non-zero
            failed += 1
            line = f"FAIL {name}: {type(exc).__name__}: {exc}"
        print(line, flush=True)
    # Worded unlike a test runner's summary, so CI logs are not mistaken for the test count.
    verdict = "all checks OK" if not failed else f"{failed} check(s) FAILED"
    print(f"self-test: {verdict} ({len(checks)} checks)", flush=True)
    return 1 if failed else 0


def _check_sqlite() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "t.db")
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        db.execute("CREATE VIRTUAL TABLE t USING fts5(body)")
        db.close()
    if mode != "wal":
        raise RuntimeError(f"WAL not available (journal_mode={mode})")
    return f"SQLite {sqlite3.sqlite_version}, WAL, FTS5"


def _check_tls() -> str:
    context = ssl.create_default_context()
    count = context.cert_store_stats().get("x509_ca", 0)
    try:
        import truststore  # the SDK's HTTP stack verifies against the OS trust store

        truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_default_certs()
        return f"{ssl.OPENSSL_VERSION}; OS trust store via truststore; {count} CA certs in ssl"
    except ImportError:
        pass
    if count == 0:
        import certifi  # the fallback bundle

        context.load_verify_locations(certifi.where())
        count = context.cert_store_stats().get("x509_ca", 0)
    if count == 0:
        raise RuntimeError("no CA certificates found")
    return f"{ssl.OPENSSL_VERSION}; {count} CA certificates"


def _check_resources() -> str:
    from desktop_chat import resources

    icon = resources.path("desktop-chat.svg")
    if not icon.is_file() or b"<svg" not in icon.read_bytes():
        raise FileNotFoundError(icon)
    return str(icon)


def _check_markdown() -> str:
    from desktop_chat.core.render import markdown

    html = markdown.to_html("**bold** <script>x</script>")
    if "<strong>bold</strong>" not in html or "<script>" in html:
        raise RuntimeError(f"unexpected rendering: {html!r}")
    return "markdown-it renders, raw HTML escaped"


def _check_math() -> str:
    """One formula drawn the way the transcript draws it: ziamath with its bundled fonts, then
    QtSvg. A frozen app without the fonts (package data) would show formulas as source."""
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QFont, QImage, QTextDocument
    from PySide6.QtWidgets import QApplication

    from desktop_chat.core.render.math import Formula
    from desktop_chat.ui.math_images import MathImages

    _qt_app = QApplication.instance() or QApplication([sys.argv[0]])
    doc = QTextDocument()
    math = MathImages(doc, lambda: (QFont(), "#000000", 1.0))
    tag = math.html(Formula("\\frac{1}{2}", True, "$$", "$$"))
    if 'src="' not in tag:
        raise RuntimeError(f"the formula was not drawn (ziamath or its fonts missing): {tag}")
    name = tag.split('src="', 1)[1].split('"', 1)[0]
    image = doc.resource(QTextDocument.ResourceType.ImageResource, QUrl(name))
    if not isinstance(image, QImage) or not any(
            image.pixelColor(x, y).alpha() for x in range(image.width())
            for y in range(image.height())):
        raise RuntimeError("the formula drew nothing (QtSvg missing?)")
    return f"ziamath draws \\frac{{1}}{{2}} ({image.width()}x{image.height()} px)"
# The smallest PDF with a text layer (no xref table: PDFium rebuilds it, as for many real files).
_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 100]/Contents 4 0 R"
        b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
        b"4 0 obj<</Length 45>>stream\nBT /F1 18 Tf 10 50 Td (Self-test page) Tj ET\n"
        b"endstream endobj\n5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n")


_DOCX_XML = ('<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/'
             'main"><w:body><w:p><w:r><w:t>Self-test paragraph</w:t></w:r></w:p></w:body>'
             '</w:document>')


def _check_documents() -> str:
    """PDFium, zlib + expat (Word files) and charset-normalizer are in the build and read a
    file each."""
    import io
    import zipfile

    from desktop_chat.core.documents.extract import extract_bytes

    pdf = extract_bytes(_PDF, "self-test.pdf")
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as word:
        word.writestr("word/document.xml", _DOCX_XML)
    docx_text = extract_bytes(data.getvalue(), "self-test.docx").text
    legacy = extract_bytes("Café crème brûlée, façade naïve. ".encode("cp1252") * 8, "t.txt")
    if ("Self-test page" not in pdf.text or docx_text != "Self-test paragraph"
            or "crème brûlée" not in legacy.text):
        raise RuntimeError(f"unexpected text: {pdf.text!r}, {docx_text!r}")
    return "PDF (PDFium), Word and a cp1252 text file read"


def _check_document_extras() -> str:
    """numpy (hybrid retrieval's vectors) and Qt's JPEG writer (a scanned PDF's pages as
    images) are in the build and work. After the window check: it made the QApplication."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from desktop_chat.core.chat.retrieval import fuse, pack
    from desktop_chat.ui.document_chips import page_images

    vectors = np.frombuffer(pack([1.0, 0.0]) + pack([0.6, 0.8]), dtype="<f4").reshape(2, 2)
    best = [int(i) for i in np.argsort(-(vectors @ np.array([0.0, 1.0], dtype=np.float32)))]
    if best != [1, 0] or fuse([[1, 2], [2, 3]]) != [2, 1, 3]:
        raise RuntimeError(f"unexpected ranking: {best}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "self-test.pdf"
        path.write_bytes(_PDF)
        [page] = page_images(path)
    if page.mime != "image/jpeg" or page.size < 1000:
        raise RuntimeError(f"the page was drawn as {page.mime}, {page.size} bytes")
    return f"vectors ranked (numpy {np.__version__}); a PDF page drawn as JPEG"


NATIVE_KEYRING = {"linux": "keyring.backends.SecretService", "win32": "keyring.backends.Windows",
                  "darwin": "keyring.backends.macOS"}


def _check_keychain() -> str:
    """The platform's keychain backend must be in the build (a frozen app can lose it: keyring
    finds backends through entry points). No keychain *running* is fine: the app says so."""
    import importlib
    import importlib.metadata

    import keyring

    native = next((m for p, m in NATIVE_KEYRING.items() if sys.platform.startswith(p)), None)
    if native is not None:
        importlib.import_module(native)
    backend = type(keyring.get_keyring())
    return (f"keyring {importlib.metadata.version('keyring')}; {native} present; in use: "
            f"{backend.__module__}.{backend.__name__}")


def _check_mcp() -> str:
    """The MCP SDK (tools) round trip, on a thread of its own: no event loop runs yet."""
    from concurrent.futures import ThreadPoolExecutor

    from desktop_chat.core.tools import probe

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(probe.self_test).result(timeout=60)


def _check_window(args: argparse.Namespace) -> str:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QWidget

    from desktop_chat import app as app_module
    from desktop_chat import resources
    from desktop_chat.ui import icons

    qt_app = QApplication.instance() or QApplication([sys.argv[0]])
    app_module.configure_application(qt_app)  # type: ignore[arg-type]
    if QIcon(str(resources.path("desktop-chat.svg"))).isNull():
        raise RuntimeError("the SVG icon does not load (imageformats/iconengines plugin missing)")
    if icons.icon("send", "#000000").pixmap(16, 16).toImage().pixelColor(8, 8).alpha() == 0:
        raise RuntimeError("the icon set does not draw (resources/icons or QtSvg missing)")
    from desktop_chat.ui import emoji_font
    emoji = emoji_font.ensure_emoji_font()
    if emoji is None or not emoji_font.has_emoji(emoji):
        raise RuntimeError("no font draws emoji (the bundled OpenMoji font is missing)")
    loop = app_module.create_event_loop(qt_app)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        args = argparse.Namespace(**{**vars(args), "data_dir": args.data_dir or Path(tmp)})
        window = app_module.build_window(args, os.environ)
        window.show()
        missing = [n for n in CONTRACT_NAMES if window.findChild(QWidget, n) is None]
        window.close()
        loop.run_until_complete(app_module.close_window_services(window))
    loop.close()
    if missing:
        raise RuntimeError(f"widgets missing: {missing}")
    return (f"{qt_app.platformName()} platform, main window with all named widgets, "
            f"emoji drawn with {emoji}")
