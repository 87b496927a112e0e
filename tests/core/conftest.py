"""Fixtures shared by the core tests: history stores in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_chat.core.history.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "history.sqlite3") as opened:
        yield opened


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Store]:
    """A second, empty store (an import's destination, say)."""
    with Store(tmp_path / "other" / "history.sqlite3") as opened:
        yield opened
