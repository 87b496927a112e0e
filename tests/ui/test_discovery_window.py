"""Local servers found while Settings is open are offered first in Providers → Add; one
click adds a profile with the server's address and models."""

from __future__ import annotations

from desktop_chat.core.config.providers import Preset
from tests.support.openai_server import LoopbackServer
from tests.ui.app_support import Launcher, accept, open_settings, profile, send_and_wait, settle
from tests.ui.test_errors import free_port


def test_a_server_found_from_settings_becomes_a_profile(
        app: Launcher, server: LoopbackServer) -> None:
    app.write_settings({"profiles": [profile("one", "http://127.0.0.1:9/v1")]})
    chat = app.start()
    closed = free_port()

    def port_of(preset: Preset) -> int:
        return server.port if preset.key == "ollama" else closed

    chat.window.connections.port_of = port_of
    dialog = open_settings(chat)
    settle(chat)  # the probe Settings started
    menu = dialog.providers.addButton.menu()
    found = [a for a in menu.actions() if a.text().startswith("Ollama at ")]
    assert [a.text() for a in found] == [
        f"Ollama at {server.base_url} ({len(server.models)} models)"]
    found[0].trigger()
    form = dialog.providers.current_form()
    assert form is not None
    dialog.providers.make_current_active()
    accept(chat, dialog)
    stored = app.stored_settings()
    added = stored["profiles"][-1]
    assert (added["preset"], added["base_url"], stored["active_profile"]) == (
        "ollama", server.base_url, added["id"])
    assert added["model"] in server.models
    send_and_wait(chat, "hello")
    assert server.replies_asked[-1].body["model"] == added["model"]
