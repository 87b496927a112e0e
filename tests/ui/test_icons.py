"""The icon set: every icon the window may ask for exists, is drawn in the colour asked for,
and is sharp at 2x."""

import ast
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

from desktop_chat.ui import icons

ROOT = Path(__file__).resolve().parents[2]


def _names() -> list[str]:
    tree = ast.parse((ROOT / "packaging" / "make_icons.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "NAMES":
            return sorted(ast.literal_eval(node.value))
    raise AssertionError("NAMES not found")


@pytest.mark.parametrize("name", _names())
def test_every_icon_draws_in_its_colour(qapp, name):
    image = icons.icon(name, "#c0392b").pixmap(QSize(24, 24)).toImage()
    painted = [image.pixelColor(x, y) for x in range(24) for y in range(24)
               if image.pixelColor(x, y).alpha() > 200]
    assert painted, f"{name} draws nothing"
    # (premultiplied alpha rounds edge pixels by a step or two)
    assert all(abs(c.red() - 0xc0) + abs(c.green() - 0x39) + abs(c.blue() - 0x2b) <= 6
               for c in painted)


def test_icons_are_drawn_at_the_device_pixel_ratio(qapp):
    sharp = icons.icon("copy", "#000000")
    pixmap = sharp.pixmap(QSize(16, 16), 2.0)
    assert (pixmap.width(), pixmap.devicePixelRatio()) == (32, 2.0)


def test_disabled_icons_are_faded(qapp):
    found = icons.icon("send", "#000000")
    normal = found.pixmap(QSize(24, 24), QIcon.Mode.Normal).toImage()
    faded = found.pixmap(QSize(24, 24), QIcon.Mode.Disabled).toImage()
    strongest = max(normal.pixelColor(x, y).alpha() for x in range(24) for y in range(24))
    strongest_faded = max(faded.pixelColor(x, y).alpha() for x in range(24) for y in range(24))
    assert strongest_faded < strongest * 0.5


def test_an_unknown_icon_fails_loudly(qapp):
    with pytest.raises(FileNotFoundError):
        icons.icon("no-such-icon", "#000000")
