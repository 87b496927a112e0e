"""The theme in Qt terms: follow the system's light/dark scheme (also where the platform's
palette does not), and hand widgets the design tokens of `core.render.theme` as Qt values."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from desktop_chat.core.render.theme import Theme

_DARK = {
    QPalette.ColorRole.Window: "#202124",
    QPalette.ColorRole.WindowText: "#e8eaed",
    QPalette.ColorRole.Base: "#17181a",
    QPalette.ColorRole.AlternateBase: "#2a2b2e",
    QPalette.ColorRole.Text: "#e8eaed",
    QPalette.ColorRole.Button: "#2d2e31",
    QPalette.ColorRole.ButtonText: "#e8eaed",
    QPalette.ColorRole.Highlight: "#3b82f6",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#8ab4f8",
    QPalette.ColorRole.PlaceholderText: "#9aa0a6",
    QPalette.ColorRole.ToolTipBase: "#2d2e31",
    QPalette.ColorRole.ToolTipText: "#e8eaed",
}


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


PREFERENCE = "desktopChatTheme"  # an application property: "system", "light" or "dark"
BASE_FONT_SIZE = "desktopChatBaseFontSize"  # an application property: the platform's size
_SCHEMES = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}


def set_preference(app: QGuiApplication, preference: str) -> None:
    """The user's choice in Settings; "system" follows the desktop."""
    app.setProperty(PREFERENCE, preference)
    hints = app.styleHints()
    if hasattr(hints, "setColorScheme"):  # Qt 6.8+: native styles follow too
        hints.setColorScheme(_SCHEMES.get(preference, Qt.ColorScheme.Unknown))
    follow_color_scheme(app)


def apply_appearance(app: QGuiApplication, preference: str, font_size: float) -> None:
    """Settings > Appearance: the theme and the text size in points (0: the platform's).
    Applied before the window's first frame, and again whenever the settings change."""
    set_preference(app, preference)
    base = app.property(BASE_FONT_SIZE)
    if base is None:  # the first time: the size the platform gave, kept for "0"
        base = app.font().pointSizeF()
        app.setProperty(BASE_FONT_SIZE, base)
    size = font_size or float(base)
    font = app.font()
    if size > 0 and font.pointSizeF() != size:
        font.setPointSizeF(size)
        app.setFont(font)  # widgets without a font of their own follow


def follow_color_scheme(app: QGuiApplication) -> None:
    """Apply a dark palette when the system (or the user's choice) asks for dark and the
    platform palette is light (offscreen, some Linux desktops); the platform's own palette
    otherwise."""
    preference = app.property(PREFERENCE) or "system"
    if preference in _SCHEMES:
        wants_dark = preference == "dark"
    else:
        wants_dark = app.styleHints().colorScheme() == Qt.ColorScheme.Dark
    if wants_dark and not is_dark(app.palette()):
        app.setPalette(dark_palette())
    elif not wants_dark and is_dark(app.palette()):
        app.setPalette(QPalette())  # back to the platform's own
        if is_dark(app.palette()):  # a dark desktop asked for light: our light palette
            app.setPalette(QApplication.style().standardPalette())


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in _DARK.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7f8389"))
    return palette


def current(palette: QPalette | None = None) -> Theme:
    """The design tokens for the scheme the application shows now."""
    return Theme(dark=is_dark(palette or QGuiApplication.palette()))


def qcolor(hex_color: str, alpha: float = 1.0) -> QColor:
    color = QColor(hex_color)
    color.setAlphaF(alpha)
    return color


def point_size(offset: int) -> float:
    """A size on the theme's type scale: the platform's default plus `offset` points."""
    base = QGuiApplication.font().pointSizeF()
    return max(6.0, (base if base > 0 else 9.0) + offset)
