"""Type, Enter, watch the reply stream, copy it: the product's core job, end to end."""

from __future__ import annotations

from pathlib import Path

from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, until

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


def test_paints_of_the_view_count_in_the_frame_pacing(chat: ChatDriver,
                                                      server: LoopbackServer) -> None:
    """A frame costs its edits and the paints they cause: slow paints space frames out, so
    the view never takes more than its share of the thread from receiving."""
    from desktop_chat.core.chat.pacing import MAX_FRAME_MS

    transcript, controller = chat.window.transcript, chat.window.controller
    paints: list[float] = []
    transcript.painted.connect(paints.append)
    server.push(Scenario(deltas=["word "] * 80, pace=0.02))
    chat.send("Go on")

    async def scenario() -> None:
        await until(chat.loop, lambda: "word" in chat.transcript_text())
        assert controller.frame_interval_ms < MAX_FRAME_MS  # cheap paints: frequent frames
        transcript.painted.emit(400.0)  # as if the last paint had taken 400 ms
        await until(chat.loop, lambda: controller.frame_interval_ms == MAX_FRAME_MS)
        await until(chat.loop, lambda: controller.frame_interval_ms < MAX_FRAME_MS)

    chat.loop.run_until_complete(scenario())
    chat.wait_for_reply()
    assert paints and all(ms >= 0 for ms in paints)  # the view reports its real paints
    assert chat.transcript_text().count("word") == 80
