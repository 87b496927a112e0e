"""The window's one icon set (Phosphor, as SVG files in resources/icons), tinted by the theme.

An icon is drawn from its SVG at the exact size and device pixel ratio asked for, in the colour
asked for, so it stays sharp at 2x and follows light and dark. Disabled icons are drawn faded.
Icons are cached per (name, colour); an SVG file is parsed once.
"""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QIconEngine, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QToolButton

from desktop_chat import resources


@cache
def _renderer(name: str) -> QSvgRenderer:
    path = resources.path(f"icons/{name}.svg")
    renderer = QSvgRenderer(str(path)) if path.is_file() else None
    if renderer is None or not renderer.isValid():
        raise FileNotFoundError(f"icon {name!r} is missing from resources/icons")
    return renderer


class _TintedSvg(QIconEngine):
    def __init__(self, name: str, color: QColor) -> None:
        super().__init__()
        self._name = name
        self._color = QColor(color)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode,
              state: QIcon.State) -> None:
        ratio = painter.device().devicePixelRatioF() if painter.device() else 1.0
        pixmap = self._tinted(rect.size(), ratio, mode)
        painter.drawPixmap(rect, pixmap)

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self._tinted(size, 1.0, mode)

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State,
                     scale: float) -> QPixmap:
        return self._tinted(size, scale, mode)

    def clone(self) -> QIconEngine:
        return _TintedSvg(self._name, self._color)

    def _tinted(self, size: QSize, ratio: float, mode: QIcon.Mode) -> QPixmap:
        pixmap = QPixmap(max(1, round(size.width() * ratio)), max(1, round(size.height() * ratio)))
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        _renderer(self._name).render(painter, QRectF(pixmap.rect()))
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
        color = QColor(self._color)
        if mode == QIcon.Mode.Disabled:
            color.setAlphaF(color.alphaF() * 0.4)
        painter.fillRect(pixmap.rect(), color)
        painter.end()
        pixmap.setDevicePixelRatio(ratio)
        return pixmap


def icon(name: str, color: QColor | str) -> QIcon:
    """The icon `name` (a file in resources/icons without .svg) in `color`."""
    return _icon(name, QColor(color).name(QColor.NameFormat.HexArgb))


@cache
def _icon(name: str, argb: str) -> QIcon:
    _renderer(name)  # fail here, loudly, for a name that does not exist
    return QIcon(_TintedSvg(name, QColor(argb)))


def icon_button(name: str, text: str, tip: str, size: int = 18) -> QToolButton:
    """An icon-only button of the window: `text` is its accessible name (read by screen
    readers, shown nowhere), `tip` its tooltip; the caller sets the icon (`icon`)."""
    button = QToolButton(objectName=name)
    button.setText(text)
    button.setAccessibleName(text)
    button.setToolTip(tip)
    button.setIconSize(QSize(size, size))
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    return button
