"""Render resources/desktop-chat.svg into the icon files a bundle needs (build time only).

    python packaging/icons.py OUT_DIR

writes OUT_DIR/desktop-chat-<size>.png (16…1024), desktop-chat.png (256), and, when Pillow
is installed, desktop-chat.ico (Windows, 16…256) and desktop-chat.icns (macOS). Uses QtSvg from
the PySide6 in the running interpreter, offscreen: no display needed. The generated files are
build output and stay out of git (build/ is ignored).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SVG = Path(__file__).resolve().parent.parent / "resources" / "desktop-chat.svg"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render(svg: Path, out_dir: Path) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot render {svg}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for size in PNG_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = out_dir / f"desktop-chat-{size}.png"
        if not image.save(str(target), "PNG"):
            raise SystemExit(f"cannot write {target}")
        written.append(target)
    (out_dir / "desktop-chat.png").write_bytes((out_dir / "desktop-chat-256.png").read_bytes())
    return written


def pack(out_dir: Path) -> None:
    """.ico and .icns from the PNGs (Pillow writes both on any OS)."""
    try:
        from PIL import Image
    except ImportError:
        print("icons: Pillow not installed; no .ico/.icns written", file=sys.stderr)
        return
    largest = Image.open(out_dir / "desktop-chat-1024.png")
    sources = [Image.open(out_dir / f"desktop-chat-{s}.png") for s in ICO_SIZES]
    sources[-1].save(out_dir / "desktop-chat.ico", sizes=[(s, s) for s in ICO_SIZES],
                     append_images=sources[:-1])
    largest.save(out_dir / "desktop-chat.icns",
                 append_images=[Image.open(out_dir / f"desktop-chat-{s}.png")
                                for s in (16, 32, 64, 128, 256, 512)])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(argv[0])
    render(SVG, out_dir)
    pack(out_dir)
    print(f"icons: written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
