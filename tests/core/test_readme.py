"""The README tells a new user what works (issue #14, defect 13): every shortcut the window
lists is in its key table, the offline install hint is the README's own command, and the
libxcb-cursor0 note sits next to the launch command."""

from __future__ import annotations

import ast
from pathlib import Path

from desktop_chat.core.engine.offline import INSTALL_HINT

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
README_NAMES = {"Return": "Enter", "Shift+Return": "Shift+Enter", "Del": "Delete"}


def shortcuts() -> list[str]:
    """The keys ui/shortcuts_help.py lists (read as source: core tests load no Qt)."""
    tree = ast.parse((ROOT / "src/desktop_chat/ui/shortcuts_help.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "SHORTCUTS":
            return [pair.elts[0].value for pair in node.value.elts]  # type: ignore[attr-defined]
    raise AssertionError("SHORTCUTS not found")


def key_table() -> str:
    start = README.index("| key | action |")
    return README[start:README.index("\n\n", start)]


def test_every_shortcut_is_in_the_key_table() -> None:
    table = key_table()
    keys = shortcuts()
    assert "Ctrl+/" in keys
    missing = [k for k in keys if README_NAMES.get(k, k) not in table]
    assert missing == []


def test_the_offline_hint_is_the_readmes_install_command() -> None:
    assert 'pip install ".[local]"' in INSTALL_HINT
    assert 'pip install ".[local]"' in README
    assert "desktop-chat[local]" not in INSTALL_HINT


def test_libxcb_cursor_note_is_next_to_the_launch_command() -> None:
    launch = README.index(".venv/bin/desktop-chat")
    note = README.index("libxcb-cursor0")
    assert 0 < note - launch < 400
