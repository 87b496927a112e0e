"""A server that quotes the key back in an in-stream error (issue #20): the reply is kept, its
error is recorded without the key, and neither the history nor its exports hold the key; a
history written before that is cleaned when the app opens it, with keys from the keychain
too (shaped like no well-known key, so only knowing them keeps them out)."""

from __future__ import annotations

from pathlib import Path

from desktop_chat.core.config.secrets import SERVICE
from desktop_chat.core.history import schema
from desktop_chat.core.history.store import HISTORY_FILE, Store
from tests.core.test_key_redaction import ECHO, make_v3
from tests.support.keyrings import MemoryKeyring
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.app_support import Launcher, profile, send_and_wait
from tests.ui.test_key_safety import files_holding


def test_a_key_echoed_mid_reply_reaches_neither_history_nor_exports(
        app: Launcher, server: LoopbackServer, tmp_path: Path) -> None:
    key = "Kc7dPq20LmXw9VbN4tRs1YhE"
    app.write_settings({"profiles": [profile("one", server.base_url, needs_key=True)]})
    app.use_keychain(MemoryKeyring()).set_password(SERVICE, "one", key)
    chat = app.start()
    server.push(Scenario(deltas=["Half ", "an answer"], stream_error_after_events=2,
                         stream_error={"message": ECHO.format(key=key),
                                       "type": "invalid_request_error"}))
    send_and_wait(chat, "hello")
    assert server.replies_asked[-1].headers["authorization"] == f"Bearer {key}"
    exports = tmp_path / "exports"
    exports.mkdir()
    assert chat.window.fileMenu.export_to(exports / "chat.md", "markdown")
    assert chat.window.fileMenu.export_to(exports / "all.json", "all")
    app.stop(chat)
    with Store(app.data_dir / HISTORY_FILE) as store:
        [summary] = store.list_conversations()
        reply = store.active_path(summary.id)[-1]
    assert reply.content == "Half an answer"
    assert reply.error is not None and "Incorrect API key provided: [REDACTED]" in reply.error
    assert files_holding(app.data_dir, [key]) == []
    assert files_holding(exports, [key]) == []
    assert "[REDACTED]" in (exports / "chat.md").read_text(encoding="utf-8")


def test_opening_an_old_history_removes_the_keychain_key_from_it(
        app: Launcher, server: LoopbackServer) -> None:
    key = "Hw3nQz81JpLs5TcV0bXr7MyA"
    app.data_dir.mkdir(parents=True)
    history = app.data_dir / HISTORY_FILE
    make_v3(history, [ECHO.format(key=key)])
    app.write_settings({"profiles": [profile("one", server.base_url, needs_key=True)],
                        "active_profile": "one"})
    app.use_keychain(MemoryKeyring()).set_password(SERVICE, "one", key)
    assert files_holding(app.data_dir, [key]) == [f"{HISTORY_FILE}: {key}"]
    chat = app.start()
    app.stop(chat)
    assert schema.needs_migration(history) is False
    [backup] = schema.backups(history)  # the old file, kept aside as for every migration
    assert files_holding(app.data_dir, [key], skip={backup.name}) == []
    with Store(history) as store:
        assert store.message(2).error == ECHO.format(key="[REDACTED]")  # type: ignore[union-attr]
