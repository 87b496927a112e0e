"""Type, Enter, watch the reply stream, copy it: the product's core job, end to end."""

from __future__ import annotations

from pathlib import Path

from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver

DATA = Path(__file__).parents[1] / "data"


def test_reply_streams_and_copies_exactly(chat: ChatDriver, server: LoopbackServer) -> None:
    deltas = ["Hello", ", ", "wörld", " 🎉", "", "\r\n", "line two"]
    server.push(Scenario(deltas=deltas, pace=0.01))
    chat.send("Say hello")
    assert chat.window.stopButton.isEnabled()
    assert chat.window.composer.toPlainText() == ""
    chat.wait_for_reply()
    chat.copy_last_reply()
    assert chat.clipboard("text/plain") == "".join(deltas)
    assert chat.clipboard("text/markdown") == "".join(deltas)
    assert "wörld" in chat.clipboard("text/html")
    assert "Say hello" in chat.transcript_text()
    assert "Hello, wörld 🎉" in chat.transcript_text()
    assert server.requests[-1].body["messages"][-1] == {"role": "user", "content": "Say hello"}
