"""`--gguf` failures that the window explains at once, with or without the `[local]` extra:
the engine not installed (the install command), a file that is not a GGUF model. Nothing is
started, sending is refused with the same reason, and the typed text stays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
import qasync
from keyring.backends import fail

from desktop_chat.app import close_window_services, create_main_window
from desktop_chat.core.engine import offline as engines
from tests.ui.conftest import ChatDriver, wait_until


@pytest.fixture
def start(qloop: qasync.QEventLoop, qtbot: object, tmp_path: Path) -> Iterator[object]:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    chats: list[ChatDriver] = []

    def launch(gguf: Path) -> ChatDriver:
        window = create_main_window(["--data-dir", str(tmp_path / "data"), "--gguf", str(gguf)])
        qtbot.addWidget(window)  # type: ignore[attr-defined]
        window.show()
        chats.append(ChatDriver(window, qloop))
        return chats[-1]

    yield launch
    for chat in chats:
        chat.window.close()
        qloop.run_until_complete(close_window_services(chat.window))
    keyring.set_keyring(previous)


def explained(chat: ChatDriver) -> str:
    wait_until(chat.loop, chat.window.errorBanner.isVisible, 10.0)
    text = chat.window.errorBanner.text()
    engine = chat.window.connections.offline.engine  # type: ignore[union-attr]
    assert engine is None or not engine.running
    assert chat.window.statusBar().currentMessage() == ""
    chat.type("hello")
    chat.press_enter()
    assert not chat.window.stopButton.isEnabled(), "a reply started without an engine"
    assert chat.window.errorBanner.text() == text and chat.window.composer.toPlainText() == (
        "hello")
    return text


def test_engine_not_installed_shows_the_install_command(
    start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engines, "ENGINE_MODULES", ("desktop_chat_no_such_engine",))
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF" + bytes(20))
    text = explained(start(model))
    assert "The built-in offline engine is not installed" in text
    assert engines.INSTALL_HINT in text


@pytest.mark.skipif(not engines.engine_available(), reason="the install check comes first")
def test_a_file_that_is_not_a_model_is_named(start, tmp_path: Path) -> None:
    notes = tmp_path / "notes.gguf"
    notes.write_text("these are my notes, not a model")
    text = explained(start(notes))
    assert "notes.gguf is not a GGUF model file" in text
