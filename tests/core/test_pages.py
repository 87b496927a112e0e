"""A scanned PDF's pages drawn for a vision model, without Qt: page cap, size, pixels, the
messages, and a file gone before its pages are drawn."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_chat.core.documents.extract import DocumentError, ScannedDocument, extract_file
from desktop_chat.core.documents.pages import (
    LONG_SIDE_PX,
    MAX_PAGES,
    render_pages,
    scanned_message,
)
from tests.support.documents import make_scanned_pdf


def test_the_first_pages_are_drawn_at_the_chosen_size(tmp_path: Path) -> None:
    scan = make_scanned_pdf(tmp_path / "scan.pdf", pages=MAX_PAGES + 3)
    with pytest.raises(ScannedDocument) as refused:
        extract_file(scan)
    assert (refused.value.name, refused.value.pages) == ("scan.pdf", MAX_PAGES + 3)
    pages = list(render_pages(scan))
    assert [p.page for p in pages] == list(range(1, MAX_PAGES + 1))
    first = pages[0]
    assert first.height == LONG_SIDE_PX and abs(first.width - 595.28 * LONG_SIDE_PX / 841.89) < 1.5
    assert len(first.pixels) == first.stride * first.height and first.stride >= 4 * first.width
    assert first.pixels[:4] == b"\xff\xff\xff\xff"  # RGBX: a white corner
    # the picture's black bar is drawn: some pixels are dark
    assert min(first.pixels[0::4]) < 64


def test_drawing_stops_when_asked_and_a_vanished_file_is_said(tmp_path: Path) -> None:
    scan = make_scanned_pdf(tmp_path / "scan.pdf", pages=4)
    drawn = []
    for page in render_pages(scan, stop=lambda: len(drawn) >= 2):
        drawn.append(page.page)
    assert drawn == [1, 2]
    with pytest.raises(DocumentError, match=r"'gone\.pdf' is no longer there"):
        list(render_pages(tmp_path / "gone.pdf"))


def test_the_message_says_what_can_be_done() -> None:
    seeing = scanned_message("form.pdf", 3, sees_images=True)
    assert seeing.startswith("'form.pdf' has no text layer: its 3 pages are pictures")
    assert "'Send pages as images' on its chip attaches its pages" in seeing
    assert f"the first {MAX_PAGES} of its 40 pages" in scanned_message("b.pdf", 40, True)
    blind = scanned_message("form.pdf", 1, sees_images=False)
    assert "its page is a picture" in blind and "does not take images" in blind
    assert "Send pages" not in blind
