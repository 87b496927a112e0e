"""A scanned PDF's pages as pictures, for a model that can see images.

A PDF whose pages are only images has no text to extract (extract.ScannedDocument). Rather
than OCR on this computer, its pages can go to a vision model as images: PDFium renders them
(in C, outside the GIL, in the documents thread) one page at a time to raw pixels, which the
window encodes as JPEG and attaches as the message's image parts.

Choices: at most `MAX_PAGES` pages per message (10: each page costs a vision model roughly
800-1,600 tokens, so ten fit a small context window beside the question, and a request stays
a few MB); pages scaled so that their long side is `LONG_SIDE_PX` (1600 px: about 190 dpi for
A4 or Letter, enough for body text; larger is scaled down by the servers anyway: OpenAI to
768 px on the short side, Anthropic to about 1,568 px on the long side).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from desktop_chat.core.documents.extract import DocumentError

MAX_PAGES = 10
LONG_SIDE_PX = 1600


@dataclass(frozen=True, slots=True)
class PageImage:
    """One rendered page: `pixels` are RGBX, 4 bytes a pixel, rows `stride` bytes apart."""

    page: int  # 1-based
    width: int
    height: int
    stride: int
    pixels: bytes


def scanned_message(name: str, pages: int, sees_images: bool) -> str:
    """What the window says about a PDF without a text layer."""
    pictures = "its page is a picture" if pages == 1 else f"its {pages} pages are pictures"
    said = f"'{name}' has no text layer: {pictures} (a scan), so there is no text to read."
    if sees_images:
        first = (f"the first {MAX_PAGES} of its {pages} pages" if pages > MAX_PAGES else
                 "its page" if pages == 1 else "its pages")
        return (f"{said} This model can see images: 'Send pages as images' on its chip "
                f"attaches {first} to your message as pictures. Or run it through OCR "
                "(e.g. 'ocrmypdf') and attach the result.")
    return (f"{said} Run it through OCR (a scanner's software, or 'ocrmypdf') and attach the "
            "result. The model of this connection does not take images (Settings › "
            "Providers), so its pages cannot be sent as pictures either.")


def render_pages(path: Path, max_pages: int = MAX_PAGES, long_side: int = LONG_SIDE_PX,
                 stop: Callable[[], bool] | None = None) -> Iterator[PageImage]:
    """The first `max_pages` pages of the PDF at `path`, one at a time (a page's pixels are
    ~7 MB: none is kept longer than its caller needs it). Raises DocumentError (user text)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_raw

    name = path.name
    try:
        pdf = pdfium.PdfDocument(str(path))
    except FileNotFoundError:
        raise DocumentError(f"'{name}' is no longer there: it was moved or deleted. Attach "
                            "it again from where it is now.") from None
    except (pdfium.PdfiumError, OSError) as exc:
        raise DocumentError(f"The pages of '{name}' could not be drawn ({exc}).") from None
    try:
        for index in range(min(len(pdf), max_pages)):
            if stop is not None and stop():
                return
            page = pdf[index]
            try:
                width, height = page.get_size()
                scale = long_side / max(width, height, 1.0)
                # RGBX whatever the page holds: what the window's encoder is told
                bitmap = page.render(scale=scale, rev_byteorder=True,
                                     force_bitmap_format=pdfium_raw.FPDFBitmap_BGRx)
                try:
                    yield PageImage(index + 1, bitmap.width, bitmap.height, bitmap.stride,
                                    bytes(bitmap.buffer))
                finally:
                    bitmap.close()
            except pdfium.PdfiumError as exc:
                raise DocumentError(f"Page {index + 1} of '{name}' could not be drawn "
                                    f"({exc}).") from None
            finally:
                page.close()
    finally:
        pdf.close()
