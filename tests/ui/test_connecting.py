"""Connecting as a new user does (issue #14): the default model is the server's first chat
model (defect 6), addresses typed without scheme or /v1 work (7), the composer has the focus
once connected (10). The offline check (11) is in tests/core/test_addresses_and_models.py."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

from tests.support.openai_server import LoopbackServer
from tests.ui.app_support import Launcher, press, profile, send_and_wait

LM_STUDIO_KINDS = {"data": [{"id": "nomic-embed-text", "type": "embeddings"},
                            {"id": "zeta-chat", "type": "llm"},
                            {"id": "alpha-chat", "type": "llm"}]}


def test_default_model_is_the_servers_first_chat_model(app: Launcher,
                                                       server: LoopbackServer) -> None:
    server.models = ["nomic-embed-text", "zeta-chat", "alpha-chat"]
    server.native["GET /api/v0/models"] = LM_STUDIO_KINDS
    app.write_settings({"profiles": [profile("lms", server.base_url, model="")],
                        "active_profile": "lms"})
    chat = app.start()
    assert chat.window.controller.model == "zeta-chat"  # not "alpha-chat", not the embedder
    picker = chat.window.modelPicker
    assert "nomic-embed-text" not in [picker.itemText(i) for i in range(picker.count())]


def test_the_last_used_model_wins(app: Launcher, server: LoopbackServer) -> None:
    server.models = ["zeta-chat", "alpha-chat"]
    app.write_settings({"profiles": [profile("lms", server.base_url, model="")],
                        "active_profile": "lms"})
    chat = app.start()
    chat.window.modelPicker.setEditText("alpha-chat")
    send_and_wait(chat, "hi")
    again = app.restart(chat)
    assert again.window.controller.model == "alpha-chat"


def test_a_bare_address_in_the_welcome_panel_finds_v1(app: Launcher,
                                                      server: LoopbackServer) -> None:
    server.only_v1 = True
    chat = app.start()
    welcome = chat.window.setup.welcome
    welcome.customUrl.setText(f"127.0.0.1:{server.port}")  # no scheme, no /v1
    press(chat, welcome.connectButton)
    stored = app.stored_settings()
    active = next(p for p in stored["profiles"] if p["id"] == stored["active_profile"])
    assert active["base_url"] == f"http://127.0.0.1:{server.port}/v1"
    send_and_wait(chat, "hello")
    assert "Hello world" in chat.transcript_text()


def test_a_profile_saved_without_v1_is_pointed_at_it(app: Launcher,
                                                     server: LoopbackServer) -> None:
    server.only_v1 = True
    app.write_settings({"profiles": [profile("local", f"http://127.0.0.1:{server.port}")],
                        "active_profile": "local"})
    chat = app.start()
    stored = app.stored_settings()
    assert stored["profiles"][0]["base_url"] == f"http://127.0.0.1:{server.port}/v1"
    send_and_wait(chat, "hello")
    assert "Hello world" in chat.transcript_text()


def test_focus_is_in_the_composer_after_connecting(app: Launcher,
                                                   server: LoopbackServer) -> None:
    chat = app.start()
    welcome = chat.window.setup.welcome
    welcome.customUrl.setText(server.base_url)
    welcome.customUrl.setFocus()
    press(chat, welcome.connectButton)
    assert QApplication.focusWidget() is chat.window.composer
