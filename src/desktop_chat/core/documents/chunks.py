"""Cutting a document into passages a search can find and a model can read: each passage
stays inside one section (so it has one page and heading), breaks at paragraph, then line,
then word boundaries, and repeats the end of the previous passage (the overlap) so a fact
that straddles a cut is whole in one of them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from desktop_chat.core.documents.extract import Section

CHUNK_CHARS = 1200  # about 300 tokens: several per prompt fit even a small context window
OVERLAP_CHARS = 200


@dataclass(frozen=True, slots=True)
class Chunk:
    position: int  # order in the document
    text: str
    page: int | None = None
    heading: str = ""


def chunk_sections(sections: list[Section], size: int = CHUNK_CHARS,
                   overlap: int = OVERLAP_CHARS) -> list[Chunk]:
    out: list[Chunk] = []
    for section in sections:
        for text in split_text(section.text, size, overlap):
            out.append(Chunk(len(out), text, section.page, section.heading))
    return out


def split_text(text: str, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[str]:
    """Pieces of at most about `size` characters, each starting with the last `overlap`
    characters (whole words) of the one before."""
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for unit in _units(text, max(1, size - overlap - 1)):  # the overlap + a unit fit
        if current and len(current) + len(unit) + 1 > size:
            pieces.append(current)
            current = _tail(current, overlap)
        current = f"{current}\n{unit}" if current else unit
    if current and (not pieces or current != _tail(pieces[-1], overlap)):
        pieces.append(current)
    return pieces


def _units(text: str, size: int) -> list[str]:
    """Paragraphs; a paragraph longer than `size` by lines; a line longer than that by
    words (a word longer than that is cut)."""
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if len(paragraph) <= size:
            units.append(paragraph) if paragraph else None
            continue
        for line in paragraph.splitlines():
            if len(line) <= size:
                units.append(line)
                continue
            words = ""
            for word in line.split():
                while len(word) > size:
                    units.append(word[:size])
                    word = word[size:]
                if words and len(words) + len(word) + 1 > size:
                    units.append(words)
                    words = ""
                words = f"{words} {word}" if words else word
            if words:
                units.append(words)
    return units


def _tail(text: str, overlap: int) -> str:
    if overlap <= 0:
        return ""
    tail = text[-overlap:]
    space = tail.find(" ")
    return tail[space + 1:] if 0 <= space < len(tail) - 1 else tail
