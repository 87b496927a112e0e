"""The real offline engine (llama.cpp through llama-cpp-python) on the tiny demo model.

Marked `local`: runs when the `[local]` extra is installed (`.ci/run` installs it), skipped
otherwise. Each test starts a real engine process (~2 s with the 253 MB demo model).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from desktop_chat.core.config.providers import OFFLINE, PRESETS, Endpoint, GenerationParams
from desktop_chat.core.engine.offline import (
    DemoModel,
    EngineError,
    LocalEngine,
    demo_available,
    demo_model,
    engine_available,
)
from desktop_chat.core.llm.client import ChatClient, ChatRequest
from desktop_chat.core.llm.events import Failed, Finished, TextDelta
from tests.integration.engine_support import alive, wait_gone

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(not (engine_available() and demo_available()),
                       reason='needs the offline engine: pip install -e ".[local]"'),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoModel:
    return demo_model(tmp_path_factory.mktemp("data"))


def test_real_engine_streams_a_reply_that_can_be_stopped(demo: DemoModel) -> None:
    progress: list[str] = []
    local = LocalEngine()

    async def scenario() -> tuple[list[str], list[object]]:
        url = await local.start(demo.path, progress.append)
        pid = local.pid
        assert pid is not None and alive(pid)
        profile = dataclasses.replace(PRESETS[OFFLINE].new_profile("offline"), base_url=url,
                                      model=local.model_id, gguf_path=str(demo.path))
        client = ChatClient(Endpoint.for_profile(profile, None))
        try:
            prompt = [{"role": "user", "content": "Count from one to fifty in words."}]
            # greedy: the demo model's long answer to this prompt, the same on every run
            long_reply = ChatRequest(profile.model, prompt,
                                     GenerationParams(temperature=0, max_tokens=200))
            deltas: list[str] = []
            async with contextlib.aclosing(client.stream(long_reply)) as events:
                async for event in events:
                    assert not isinstance(event, Failed | Finished), event
                    if isinstance(event, TextDelta) and event.text:
                        deltas.append(event.text)
                    if len(deltas) >= 3:
                        break  # the user pressed Stop mid-reply
            # the engine takes the next request after a stopped one
            short = ChatRequest(profile.model, prompt, GenerationParams(max_tokens=4))
            finished = [event async for event in client.stream(short)]
        finally:
            await client.aclose()
        await local.stop()
        assert await wait_gone(pid), "the engine process outlived stop()"
        return deltas, finished

    deltas, finished = asyncio.run(scenario())
    assert len(deltas) == 3 and "".join(deltas).strip()
    assert isinstance(finished[-1], Finished) and finished[-1].reason in ("length", "stop")
    assert any(isinstance(event, TextDelta) for event in finished)
    # the demo GGUF has no template, and it is a base model: a plain transcript, not gemma's
    # turn tokens (which it never learned)
    assert local.chat_format == "transcript"
    assert local.context_size == 4096
    assert any(text.endswith("100%") for text in progress), progress
    assert not local.running


def test_truncated_model_file_is_reported_as_damaged(demo: DemoModel, tmp_path: Path) -> None:
    truncated = tmp_path / "half-downloaded.gguf"
    with open(demo.path, "rb") as source:
        truncated.write_bytes(source.read(16 << 20))  # header and metadata, no weights
    local = LocalEngine()
    with pytest.raises(EngineError) as caught:
        asyncio.run(local.start(truncated))
    assert "half-downloaded.gguf could not be loaded: it looks damaged or incomplete" in (
        caught.value.message)
    assert "not within the file bounds" in caught.value.message
    assert not local.running


APP = textwrap.dedent("""
    import asyncio, sys
    from desktop_chat.core.engine.offline import LocalEngine

    async def main():
        local = LocalEngine()
        await local.start(sys.argv[1])
        print(local.pid, flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())
""")


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_engine_does_not_outlive_an_app_killed_by_sigkill(demo: DemoModel) -> None:
    app = subprocess.Popen([sys.executable, "-c", APP, str(demo.path)], cwd=ROOT,
                           stdout=subprocess.PIPE)
    engine_pid = 0
    try:
        assert app.stdout is not None
        engine_pid = int(app.stdout.readline() or 0)
        assert engine_pid and alive(engine_pid)
        app.send_signal(signal.SIGKILL)
        app.wait(10)
        assert asyncio.run(wait_gone(engine_pid, 10.0)), "orphaned engine process"
    finally:
        app.kill()
        if engine_pid and alive(engine_pid):
            os.kill(engine_pid, signal.SIGKILL)
