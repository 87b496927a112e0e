"""Documents made by the tests (no binaries in the repository): long PDFs and Word files with
one unique fact on a deep page, and the bad inputs the app must refuse clearly."""

from __future__ import annotations

import io
import random
import textwrap
import zipfile
from pathlib import Path

FACT = "The lighthouse keeper's cat is named Marmalade Quasar and weighs 7.3 kilograms."
FACT_QUESTION = "What is the name of the lighthouse keeper's cat?"
# The same question in other words: none of them is in the fact's passage (BM25 misses it),
# while the loopback server's embeddings know the synonyms (tests/support/openai_server.py).
SYNONYM_QUESTION = "Which feline belongs to our harbour beacon custodian? How heavy?"
_WORDS = [
    "harbour", "tide", "ledger", "shipment", "invoice", "rope", "anchor", "quay", "cargo",
    "manifest", "customs", "tariff", "vessel", "crane", "berth", "warehouse", "forklift", "pallet",
    "container", "schedule", "pilot", "barge", "dredge", "buoy", "channel", "draught", "keel",
    "hull", "stern", "bow", "deck", "mast", "sail"
]


def filler(page: int, words: int = 180) -> str:
    """Plausible, repetitive text that never mentions the fact's words."""
    rng = random.Random(page)
    return " ".join(rng.choice(_WORDS) for _ in range(words)) + "."


def make_pdf(path: Path, pages: int = 300, fact_page: int | None = 237,
             fact: str = FACT) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for number in range(1, pages + 1):
        pdf.add_page()
        text = filler(number)
        if number == fact_page:
            text = f"{text[:400]} {fact} {text[400:]}"
        # lines wrapped here: fpdf2's own line breaking takes ~30 ms a page
        for line in [f"Port operations report, section {number}.", *textwrap.wrap(text, 90)]:
            pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT", h=5)
    pdf.output(str(path))
    return path


def make_scanned_pdf(path: Path, pages: int = 3) -> Path:
    """Pages that are only pictures: no text layer."""
    from fpdf import FPDF
    from PIL import Image

    image = Image.new("RGB", (200, 280), "white")
    for x in range(20, 180):
        for y in range(40, 44):
            image.putpixel((x, y), (0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.image(io.BytesIO(buffer.getvalue()), x=10, y=10, w=190)
    pdf.output(str(path))
    return path


def make_encrypted_pdf(path: Path) -> Path:
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret",
                       encryption_method=EncryptionMethod.AES_256)
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 5, "Confidential figures.")
    pdf.output(str(path))
    return path


def make_damaged_pdf(path: Path) -> Path:
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\n" + bytes(
        random.Random(1).randrange(256) for _ in range(4000)))
    return path


def make_docx(path: Path, pages: int = 40, fact_page: int | None = 31,
              fact: str = FACT) -> Path:
    import docx

    document = docx.Document()
    for number in range(1, pages + 1):
        document.add_heading(f"Chapter {number}", level=1)
        text = filler(number)
        if number == fact_page:
            text = f"{text[:300]} {fact} {text[300:]}"
        document.add_paragraph(text)
        if number < pages:
            document.add_page_break()
    document.save(str(path))
    return path


def make_zip_bomb_docx(path: Path, inflated_mb: int = 400) -> Path:
    """A .docx whose one part inflates from a few hundred KB to `inflated_mb` MB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(inflated_mb):
                member.write(block)
    return path
