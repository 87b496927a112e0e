"""The offline engine without llama.cpp: ports, GGUF files (header checks, metadata, chat
format), the host's command line, and the demo model's one-time assembly and checksum.
Engine processes are in tests/integration/test_engine_process.py."""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import struct
import sys
import textwrap
import types
import uuid
from pathlib import Path

import pytest

from desktop_chat import engine_host
from desktop_chat.core.engine import offline as engine
from desktop_chat.core.engine.offline import (
    DEMO_LABEL,
    EngineError,
    Launch,
    LocalEngine,
    demo_model,
    free_port,
    host_command,
    read_gguf_header,
)
from tests.integration.engine_support import gguf_bytes, python, write

# -- ports -------------------------------------------------------------------------------------


def test_free_port_is_on_loopback_and_not_taken() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = {free_port() for _ in range(20)}
    assert taken not in ports
    port = ports.pop()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # really free: binding it works


# -- GGUF files ---------------------------------------------------------------------------------


def test_valid_gguf_header_is_read(tmp_path: Path) -> None:
    header = read_gguf_header(write(tmp_path, gguf_bytes([("a", 4, 1)], tensors=7)))
    assert (header.version, header.tensor_count, header.kv_count) == (3, 7, 1)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<html>Not found</html>" * 3, "is not a GGUF model file"),
        (b"", "is not a GGUF model file"),
        (b"GGUF\x03\x00", "damaged or incomplete"),
        (gguf_bytes(version=1), "GGUF version 1 file"),
        (gguf_bytes(version=7), "reads versions 2 and 3"),
        (b"GGUF" + struct.pack(">IQQ", 3, 1, 0), "big-endian"),
        (gguf_bytes(tensors=0), "contains no model weights"),
        (gguf_bytes(tensors=1 << 40), "damaged or incomplete"),
    ],
    ids=["html", "empty", "truncated", "v1", "v7", "big-endian", "no-tensors", "absurd"],
)
def test_bad_gguf_files_are_explained(tmp_path: Path, data: bytes, expected: str) -> None:
    with pytest.raises(EngineError) as caught:
        read_gguf_header(write(tmp_path, data))
    assert expected in caught.value.message


def test_missing_file_and_folder_are_explained(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        read_gguf_header(tmp_path / "nope.gguf")
    with pytest.raises(EngineError, match="is a folder"):
        read_gguf_header(tmp_path)


def test_metadata_is_read_and_arrays_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_bytes([
        ("general.architecture", 8, "gemma3"),
        ("tokenizer.ggml.tokens", 9, (8, ["<pad>", "<eos>", "hello"])),
        ("tokenizer.ggml.scores", 9, (6, [0.5, 1.5, 2.5])),
        ("gemma3.context_length", 4, 32768),
        ("general.name", 8, "Gemma 3 270m"),
    ]))
    meta = engine_host.read_gguf_metadata(path)
    assert meta["general.architecture"] == "gemma3"
    assert meta["gemma3.context_length"] == 32768
    assert meta["general.name"] == "Gemma 3 270m"
    assert meta["tokenizer.ggml.tokens"] is None
    assert engine_host.context_size_for(meta, 4096) == 4096
    assert engine_host.context_size_for(meta, 65536) == 32768


def test_metadata_running_past_the_end_is_refused(tmp_path: Path) -> None:
    data = gguf_bytes([("general.name", 8, "a long enough name")])
    with pytest.raises(ValueError):
        engine_host.read_gguf_metadata(write(tmp_path, data[:-5]))


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"tokenizer.chat_template": "{% for m in messages %}...", "general.architecture":
          "gemma3"}, None),
        ({"general.architecture": "gemma3"}, "gemma"),
        ({"general.architecture": "llama", "tokenizer.ggml.pre": "llama-bpe"}, "llama-3"),
        ({"general.architecture": "llama", "general.name": "Meta Llama 3.1 8B"}, "llama-3"),
        ({"general.architecture": "llama", "general.name": "Llama 2 7B"}, "llama-2"),
        ({"general.architecture": "qwen2"}, "chatml"),
        ({"general.architecture": "mistral3"}, "mistral-instruct"),
        ({"general.architecture": "somethingnew"}, "chatml"),
    ],
)
def test_chat_format_prefers_the_gguf_template_then_the_family(
    metadata: dict[str, object], expected: str | None,
) -> None:
    assert engine_host.chat_format_for(metadata) == expected


# -- starting and stopping ----------------------------------------------------------------------


def test_corrupt_file_fails_before_anything_starts(tmp_path: Path) -> None:
    started: list[Launch] = []

    def command(launch: Launch) -> list[str]:
        started.append(launch)
        return [sys.executable, "-c", "pass"]

    local = LocalEngine(command=command)
    with pytest.raises(EngineError, match="is not a GGUF model file"):
        asyncio.run(local.start(write(tmp_path, b"PK\x03\x04 a zip, not a model")))
    assert started == []
    assert not local.running


def test_missing_engine_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "ENGINE_MODULES", ("desktop_chat_no_such_module",))
    local = LocalEngine(check_installed=True, command=python("pass"))
    with pytest.raises(EngineError, match=r'pip install "\.\[local\]" in the desktop-chat source'):
        asyncio.run(local.start(write(tmp_path, gguf_bytes())))


def test_host_command_runs_the_module_or_the_frozen_app(monkeypatch: pytest.MonkeyPatch) -> None:
    launch = Launch(Path("/m/x.gguf"), "127.0.0.1", 4242, 99, 4096, "x")
    argv = host_command(launch)
    assert argv[:3] == [sys.executable, "-m", "desktop_chat.engine_host"]
    assert engine_host.parse_args(argv[3:]).port == 4242
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    frozen = host_command(launch)
    assert frozen[:2] == [sys.executable, engine.ENGINE_HOST_FLAG]
    args = engine_host.parse_args(frozen[2:])
    assert (args.model, args.parent_pid, args.n_ctx, args.alias) == ("/m/x.gguf", 99, 4096, "x")


def test_host_ignores_server_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "users-other-key")
    monkeypatch.setenv("Port", "1")
    monkeypatch.setenv("CONFIG_FILE", "/nowhere.json")
    monkeypatch.setenv("KEEP_ME", "yes")
    engine_host._ignore_settings_environment({"api_key", "port", "model"})
    assert [os.environ.get(k) for k in ("API_KEY", "Port", "CONFIG_FILE", "KEEP_ME")] == [
        None, None, None, "yes"]


# -- the demo model -----------------------------------------------------------------------------


@pytest.fixture
def fake_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A stand-in for the gemma package: same interface, a few bytes of "model"."""
    import hashlib

    content = gguf_bytes([("general.architecture", 8, "gemma3")])
    name = f"fake_demo_gguf_{uuid.uuid4().hex}"  # a fresh module for every test
    package = tmp_path / "pkgs" / name
    (package / "data").mkdir(parents=True)
    (package / "data" / "SHA256SUMS").write_text(
        f"{hashlib.sha256(content).hexdigest()}  demo.gguf\n")
    (package / "data" / "GEMMA_TERMS.html").write_text("<p>terms</p>")
    (package / "__init__.py").write_text(textwrap.dedent(f"""
        from pathlib import Path
        MODEL_NAME = "demo.gguf"
        CONTENT = {content!r}
        assembled = []
        def default_output_path(base_dir=None):
            base = Path(base_dir)
            base.mkdir(parents=True, exist_ok=True)
            return base / MODEL_NAME
        def assemble(output_path=None, overwrite=False):
            assembled.append(output_path)
            Path(output_path).write_bytes(CONTENT)
            return Path(output_path)
    """))
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.setattr(engine, "DEMO_PACKAGE", name)
    hashed: list[Path] = []
    real_hash = engine._sha256_file
    monkeypatch.setattr(engine, "_sha256_file", lambda p: hashed.append(p) or real_hash(p))
    return types.SimpleNamespace(module=importlib.import_module(name), hashed=hashed,
                                 content=content, models=tmp_path / "models",
                                 data=tmp_path / "data")


def test_demo_model_is_assembled_once_and_not_rehashed(fake_demo: types.SimpleNamespace) -> None:
    first = demo_model(fake_demo.data, fake_demo.models)
    assert first.path == fake_demo.models / "demo.gguf"
    assert first.path.read_bytes() == fake_demo.content
    assert first.terms_path.read_text() == "<p>terms</p>"
    assert first.label == DEMO_LABEL
    assert len(fake_demo.module.assembled) == 1 and len(fake_demo.hashed) == 1
    again = demo_model(fake_demo.data, fake_demo.models)
    assert again == first
    assert len(fake_demo.module.assembled) == 1 and len(fake_demo.hashed) == 1  # stamp trusted


def test_demo_model_changed_on_disk_is_checked_and_rebuilt(
    fake_demo: types.SimpleNamespace,
) -> None:
    first = demo_model(fake_demo.data, fake_demo.models)
    first.path.write_bytes(b"GGUF" + b"\0" * 40)  # damaged after the stamp was written
    again = demo_model(fake_demo.data, fake_demo.models)
    assert again.path.read_bytes() == fake_demo.content
    assert len(fake_demo.module.assembled) == 2


def test_demo_model_with_wrong_checksum_is_refused(fake_demo: types.SimpleNamespace) -> None:
    fake_demo.module.CONTENT = b"GGUF tampered"
    with pytest.raises(EngineError, match="could not be prepared") as caught:
        demo_model(fake_demo.data, fake_demo.models)
    assert "SHA256SUMS" in caught.value.message
    assert not (fake_demo.data / "engine" / engine.DEMO_STAMP).exists()

