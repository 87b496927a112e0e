"""Keyboard, stop, copy, reasoning, usage and conversations, through the real window."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, run_for, wait_until

DATA = Path(__file__).parents[1] / "data"


def content_of_capture(raw: bytes) -> str:
    """The exact concatenation of the content deltas in an SSE capture."""
    parts = []
    for event in raw.decode("utf-8").split("\n\n"):
        payload = event.removeprefix("data: ").strip()
        if not payload or payload == "[DONE]":
            continue
        for choice in json.loads(payload)["choices"]:
            parts.append(choice["delta"].get("content") or "")
    return "".join(parts)


@pytest.mark.parametrize(
    "deltas",
    [
        ["plain ascii"],
        ["naïve café ", "日本語", " עברית ", "😀👩‍👩‍👧", "\u200b"],
        ["", "", "after empties", ""],
        ["windows\r\n", "line\r", "\n", "split CRLF\r\n\r\n", "end"],
        ["tabs\tand  spaces  ", "\n\n\n", "trailing newlines\n\n"],
        ["x" * 1_000_000],  # one delta of 1 MB
        ["<b>not bold</b> <script>alert(1)</script> &amp; ", "[link](javascript:alert(1))"],
    ],
    ids=["ascii", "unicode-emoji", "empty-deltas", "crlf", "whitespace", "1mb-delta", "html"],
)
def test_copy_is_exact_concatenation(
    chat: ChatDriver, server: LoopbackServer, deltas: list[str]
) -> None:
    server.push(Scenario(deltas=deltas))
    chat.send("go")
    chat.wait_for_reply(timeout=60)
    chat.copy_last_reply()
    assert chat.clipboard("text/plain") == "".join(deltas)
    assert chat.clipboard("text/markdown") == "".join(deltas)


def test_raw_html_is_shown_as_text(chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["<b>not bold</b> <img src='http://example.invalid/x.png'>"]))
    chat.send("go")
    chat.wait_for_reply()
    assert "<b>not bold</b> <img src='http://example.invalid/x.png'>" in chat.transcript_text()
    chat.copy_last_reply()
    html = chat.clipboard("text/html")
    assert "<b>" not in html and "&lt;b&gt;" in html and "<img" not in html


def test_llamacpp_capture_replays(chat: ChatDriver, server: LoopbackServer) -> None:
    """llama.cpp ignores include_usage and ends with finish_reason 'length'."""
    raw = (DATA / "llamacpp_server_unicode.sse").read_bytes()
    server.push(Scenario(raw_sse=raw, pace=0.001))
    chat.send("Écris un poème")
    chat.wait_for_reply()
    expected = content_of_capture(raw)
    chat.copy_last_reply()
    assert chat.clipboard() == expected
    assert "length limit" in chat.transcript_text()
    assert not chat.window.errorBanner.isVisible()
    # llama.cpp sent no usage: the figures are estimated here, and say so
    assert chat.window.tokensLabel.text().startswith("Context: ≈ ")
    assert "(estimated)" in chat.window.tokensLabel.text()


def test_shift_enter_is_a_newline_and_enter_sends(chat: ChatDriver, server: LoopbackServer) -> None:
    composer = chat.window.composer
    QTest.keyClicks(composer, "line one")
    QTest.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    QTest.keyClicks(composer, "line two")
    assert composer.toPlainText() == "line one\nline two"
    assert not chat.window.stopButton.isEnabled()
    chat.press_enter()
    chat.wait_for_reply()
    assert server.requests[-1].body["messages"][-1]["content"] == "line one\nline two"


def test_enter_while_streaming_keeps_the_draft(chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["slow "] * 20, pace=0.02))
    chat.send("first")
    chat.send("second, typed during the reply")
    assert chat.window.composer.toPlainText() == "second, typed during the reply"
    chat.wait_for_reply()
    assert len(server.requests) == 1
    chat.press_enter()
    chat.wait_for_reply()
    assert server.requests[-1].body["messages"][-1]["content"] == "second, typed during the reply"


@pytest.mark.parametrize("how", ["escape", "button"])
def test_stop_keeps_text_and_closes_the_stream(
    chat: ChatDriver, server: LoopbackServer, how: str
) -> None:
    server.push(Scenario(deltas=[f"word{i} " for i in range(400)], pace=0.01))
    chat.send("tell me a long story")
    enabled_while_streaming = []

    def stop() -> None:
        enabled_while_streaming.append(chat.window.stopButton.isEnabled())
        if how == "escape":
            QTest.keyClick(chat.window.composer, Qt.Key.Key_Escape)
        else:
            chat.window.stopButton.click()

    chat.when(lambda: "word5" in chat.transcript_text(), stop, timeout=5)
    assert enabled_while_streaming == [True]
    assert server.wait_for_disconnect(timeout=2), "the HTTP response was not closed"
    assert "■ Stopped" in chat.transcript_text()
    assert chat.window.stateLabel.text() == "Stopped"
    chat.copy_last_reply()
    copied = chat.clipboard()
    assert copied.startswith("word0 word1 word2 word3 word4 word5")
    assert "word399" not in copied
    run_for(chat.loop, 0.1)  # nothing arrives after the stop
    assert chat.transcript_text().count("word") == copied.count("word")


def test_stopped_reply_is_context_for_the_next_prompt(
    chat: ChatDriver, server: LoopbackServer
) -> None:
    server.push(Scenario(deltas=["partial "] * 200, pace=0.01))
    chat.send("one")
    chat.when(lambda: "partial" in chat.transcript_text(), chat.window.controller.stop)
    chat.send("two")
    chat.wait_for_reply()
    roles = [m["role"] for m in server.requests[-1].body["messages"]]
    assert roles == ["user", "assistant", "user"]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_is_shown_apart_from_the_answer(
    chat: ChatDriver, server: LoopbackServer, field: str
) -> None:
    server.push(Scenario(reasoning=["Let me ", "think."], reasoning_field=field,
                         deltas=["The answer."]))
    chat.send("q")
    chat.wait_for_reply()
    assert "Let me think." in chat.transcript_text()
    chat.copy_last_reply()
    assert chat.clipboard() == "The answer."  # reasoning is not part of the reply text


def test_usage_in_status_line(chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["hi"], usage={"prompt_tokens": 9, "completion_tokens": 42,
                                               "total_tokens": 51}))
    chat.send("q")
    chat.wait_for_reply()
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}
    # the context in use (last request + reply) and the spend, each labelled (#14, defect 8)
    assert chat.window.tokensLabel.text() == "Context: 51 tokens  ·  Spent: 51 tokens"
    assert "Last reply: 42 tokens" in chat.window.tokensLabel.toolTip()
    server.push(Scenario(deltas=["again"], usage={"prompt_tokens": 60, "completion_tokens": 8,
                                                  "total_tokens": 68}))
    chat.send("q2")
    chat.wait_for_reply()
    assert chat.window.tokensLabel.text() == "Context: 68 tokens  ·  Spent: 119 tokens"


def test_cost_in_status_line_when_the_profile_has_prices(
    make_window: Callable[..., ChatDriver], server: LoopbackServer
) -> None:
    profile = {"id": "local", "name": "Local", "base_url": server.base_url,
               "model": "test-model", "input_price": 2.0, "output_price": 10.0,
               "context_window": 8192}
    chat = make_window(settings={"profiles": [profile], "active_profile": "local"})
    server.push(Scenario(deltas=["hi"], usage={"prompt_tokens": 1000, "completion_tokens": 500,
                                               "total_tokens": 1500}))
    chat.send("q")
    chat.wait_for_reply()
    # 1,000 x $2/M + 500 x $10/M = $0.007
    assert chat.window.tokensLabel.text() == (
        "Context: 1,500 of 8,192 tokens (18 %)  ·  Spent: 1,500 tokens · $0.0070")


def test_server_rejecting_stream_options_still_works(
    chat: ChatDriver, server: LoopbackServer
) -> None:
    server.default = Scenario(deltas=["fine"], reject_stream_options=True)
    chat.send("q")
    chat.wait_for_reply()
    assert "fine" in chat.transcript_text()
    assert not chat.window.errorBanner.isVisible()
    chat.send("q2")
    chat.wait_for_reply()
    assert "stream_options" not in server.requests[-1].body  # remembered, no second 400
    assert len(server.requests) == 3


def test_model_picker_applies_and_is_remembered(
    make_window: Callable[..., ChatDriver], server: LoopbackServer, tmp_path: Path
) -> None:
    profile = {"id": "local", "name": "Local", "base_url": server.base_url, "model": "m1"}
    chat = make_window(settings={"profiles": [profile], "active_profile": "local"})
    chat.window.modelPicker.setEditText("other-model")  # typed, not confirmed: a send takes it
    chat.send("q")
    chat.wait_for_reply()
    assert server.requests[-1].body["model"] == "other-model"
    assert "Model: other-model" in chat.window.modelLabel.text()
    saved = json.loads((tmp_path / "data" / "settings.json").read_text())
    assert saved["profiles"][0]["model"] == "other-model"  # remembered for this profile


def test_new_chat_and_switching_conversations(chat: ChatDriver, server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["first answer"]), Scenario(deltas=["second answer"]))
    chat.send("first question")
    chat.wait_for_reply()
    QTest.keyClick(chat.window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert chat.transcript_text().strip() == ""
    chat.send("second question")
    chat.wait_for_reply()
    assert server.requests[-1].body["messages"] == [
        {"role": "user", "content": "second question"}
    ]
    titles = [chat.window.conversationList.item(i).text()
              for i in range(chat.window.conversationList.count())]
    assert titles == ["second question", "first question"]
    view = chat.window.conversationList
    rect = view.visualItemRect(view.item(1))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    wait_until(chat.loop, lambda: "first answer" in chat.transcript_text())
    assert "second answer" not in chat.transcript_text()


def test_copy_with_no_reply_says_so(chat: ChatDriver) -> None:
    assert chat.window.copy_last_reply() is False
    assert "no reply" in chat.window.statusBar().currentMessage()


def test_widgets_have_contract_names(chat: ChatDriver) -> None:
    from PySide6.QtWidgets import QWidget

    for name in ("composer", "sendButton", "stopButton", "transcript", "conversationList",
                 "newChatButton", "modelPicker"):
        widget = chat.window.findChild(QWidget, name)
        assert widget is not None, name
        assert widget.accessibleName(), name


def test_long_unbroken_runs_wrap_but_copy_clean(chat: ChatDriver, server: LoopbackServer) -> None:
    blob = "QUJD" * 5000  # 20,000 chars of base64, no whitespace
    server.push(Scenario(deltas=[blob[:7000], blob[7000:]]))
    chat.send("give me the blob")
    chat.wait_for_reply()
    chat.window.transcript.selectAll()
    chat.window.transcript.copy()
    selected = chat.clipboard()
    assert blob in selected and "\u200b" not in selected
    chat.copy_last_reply()
    assert chat.clipboard() == blob


def test_ctrl_slash_lists_the_shortcuts(chat: ChatDriver) -> None:
    QTest.keyClick(chat.window, Qt.Key.Key_Slash, Qt.KeyboardModifier.ControlModifier)
    box = chat.window.findChild(QMessageBox, "shortcutsDialog")
    assert box is not None and box.isVisible()
    text = box.text()
    for expected in ("Ctrl+Shift+C", "Copy the last reply", "Ctrl+,", "Settings", "Esc"):
        assert expected in text
    box.close()
