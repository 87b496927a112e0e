"""Write the app's icon set, resources/icons/*.svg, from the Phosphor icon font.

One icon family for the whole window (design.md): Phosphor (MIT licence, see
resources/icons/LICENSE-phosphor.txt). The font comes with qtawesome; its glyphs are turned into
plain SVG files once, here, so the app itself loads a few small SVGs at start instead of
importing qtawesome and registering a dozen fonts (~0.4 s, measured). Run it after changing
NAMES:  python packaging/make_icons.py   (needs qtawesome and fonttools, both dev-only).
"""

from __future__ import annotations

import json
from pathlib import Path

import qtawesome
from fontTools.pens.svgPathPen import SVGPathPen
from fontTools.ttLib import TTFont

FONT = "phosphor-1.3.0"
# Icon names used by the window -> Phosphor glyph names. Keep this list short and real.
NAMES = {
    "send": "arrow-up", "stop": "stop-fill", "attach": "paperclip", "copy": "copy",
    "copied": "check", "regenerate": "arrow-clockwise", "edit": "pencil-simple",
    "previous": "caret-left", "next": "caret-right", "expand": "caret-right",
    "collapse": "caret-down", "new-chat": "note-pencil", "sidebar": "layout",
    "more": "dots-three", "search": "magnifying-glass", "close": "x",
    "error": "warning-circle", "warning": "warning", "info": "info", "settings": "gear-six",
    "delete": "trash", "rename": "pencil-line", "export": "export",
    "download": "download-simple", "tool": "wrench", "document": "file-text",
    "pdf": "file-pdf", "image": "image", "ok": "check-circle", "failed": "x-circle",
    "spinner": "spinner-gap", "thinking": "brain", "model": "sparkle", "key": "key",
    "globe": "globe", "folder": "folder-open", "show": "eye", "shield": "shield-check",
    "deny": "prohibit", "scroll-down": "arrow-down", "retry": "arrow-counter-clockwise",
    "continue": "play", "chat": "chat-circle", "math": "math-operations", "plus": "plus",
    "history": "clock-counter-clockwise",
}

OUT = Path(__file__).resolve().parent.parent / "resources" / "icons"


def main() -> None:
    fonts = Path(qtawesome.__file__).parent / "fonts"
    font = TTFont(fonts / f"{FONT}.ttf")
    charmap = json.loads((fonts / f"phosphor-charmap-{FONT.split('-')[1]}.json").read_text())
    glyphs, cmap = font.getGlyphSet(), font.getBestCmap()
    size = font["head"].unitsPerEm
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.svg"):
        old.unlink()
    for name, glyph in sorted(NAMES.items()):
        pen = SVGPathPen(glyphs)
        glyphs[cmap[int(charmap[glyph], 16)]].draw(pen)
        # Font units grow upwards; SVG's grow downwards: flip around the em box.
        (OUT / f"{name}.svg").write_text(
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}">'
            f'<path transform="matrix(1 0 0 -1 0 {size})" fill="#000" d="{pen.getCommands()}"/>'
            "</svg>\n")
    print(f"{len(NAMES)} icons written to {OUT}")


if __name__ == "__main__":
    main()
