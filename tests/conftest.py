"""Shared fixtures. Qt ones live in tests/ui/conftest.py so that core tests never load Qt."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.openai_server import LoopbackServer

if TYPE_CHECKING:
    import qasync
    from PySide6.QtWidgets import QApplication

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DATA = Path(__file__).parent / "data"
TEST_KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's real key or server."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def qloop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """The one qasync loop of the whole session, for tests/ui and tests/integration alike.
    Defined here, once: a second loop (a fixture re-exported by another conftest is a second
    fixture) leaves asyncio's current loop pointing at it, and a later test's tasks then wait
    on futures of the wrong loop. Qt is imported only when a test asks for the loop, so the
    core tests never load it."""
    from desktop_chat.app import configure_application, create_event_loop, release_clipboard

    configure_application(qapp)
    hooks = sys.get_asyncgen_hooks()
    loop = create_event_loop(qapp)
    yield loop
    loop.close()
    sys.set_asyncgen_hooks(*hooks)
    release_clipboard(qapp)  # or the offscreen clipboard crashes the interpreter's exit
