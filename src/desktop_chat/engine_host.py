"""The offline engine's own process: serves one GGUF model over the OpenAI API on 127.0.0.1.

    python -m desktop_chat.engine_host --model M.gguf --port N --parent-pid PID
    desktop-chat --engine-host --model ...        (a frozen app: app.main routes the flag here)

Runs llama-cpp-python's server (its `create_app` and uvicorn, in this process) and exits by
itself as soon as the app that started it is gone — Linux's parent-death signal plus a watchdog
thread that polls the parent — so even a SIGKILL of the app leaves no engine behind.

Progress goes to stdout as `engine-host: {json}` lines (core/engine/process.py reads them);
llama.cpp's own log goes to stderr and explains failures (bad file, out of memory).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from desktop_chat.core.engine.offline import (
    DEFAULT_CONTEXT,
    HOST,
    EngineError,
    read_gguf_header,
)
from desktop_chat.core.engine.process import STATUS_PREFIX

# Chat formats registered by llama-cpp-python, for models whose GGUF carries no template.
_FAMILY_FORMATS = (
    ("gemma", "gemma"), ("qwen", "chatml"), ("mistral", "mistral-instruct"),
    ("mixtral", "mistral-instruct"), ("chatglm", "chatglm3"), ("baichuan", "baichuan-2"),
)
# Base models (not instruction-tuned) never learned a turn format: the family's (gemma's
# <start_of_turn>) made the demo model ramble for hundreds of tokens in mixed languages, while a
# plain transcript gets short, on-topic replies that end by themselves (16 prompts: median 9
# tokens, 15 of 16 stopped at "User:", against 300 tokens and 4 of 16). Only for families whose
# instruction-tuned GGUFs always carry a template, so no template there means a base model.
TRANSCRIPT = "transcript"
TRANSCRIPT_PREAMBLE = "A conversation between a user and a helpful assistant."
TRANSCRIPT_STOP = ["\nUser:"]
_BASE_WITHOUT_TEMPLATE = ("gemma",)
_INSTRUCT = re.compile(r"(?<![a-z])(it|instruct|chat|sft|dpo|rlhf)(?![a-z])")
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}
_STRING, _ARRAY = 8, 9
_keep_alive: list[object] = []  # ctypes callbacks must outlive the C code that calls them


def status(event: str, **data: Any) -> None:
    print(STATUS_PREFIX + json.dumps({"event": event, **data}), flush=True)


# -- what to run -------------------------------------------------------------------------------


def read_gguf_metadata(path: Path) -> dict[str, object]:
    """The GGUF's scalar and string metadata (arrays such as the vocabulary are skipped)."""
    header = read_gguf_header(path)
    meta: dict[str, object] = {}
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = 24
        for _ in range(header.kv_count):
            key, pos = _string(data, pos)
            (kind,) = struct.unpack_from("<I", data, pos)
            meta[key], pos = _value(data, pos + 4, kind)
    return meta


def _string(data: mmap.mmap, pos: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<Q", data, pos)
    end = pos + 8 + length
    if end > len(data):
        raise ValueError("a metadata string runs past the end of the file")
    return data[pos + 8:end].decode("utf-8", "replace"), end


def _value(data: mmap.mmap, pos: int, kind: int) -> tuple[object, int]:
    if kind == _STRING:
        return _string(data, pos)
    if kind in _SCALARS:
        fmt = "<" + _SCALARS[kind]
        return struct.unpack_from(fmt, data, pos)[0], pos + struct.calcsize(fmt)
    if kind != _ARRAY:
        raise ValueError(f"unknown metadata type {kind}")
    item, count = struct.unpack_from("<IQ", data, pos)
    pos += 12
    if item in _SCALARS:
        return None, pos + count * struct.calcsize("<" + _SCALARS[item])
    for _ in range(count):
        _, pos = _value(data, pos, item)
    return None, pos


def chat_format_for(metadata: dict[str, object], file_name: str = "") -> str | None:
    """None when the GGUF has its own chat template (llama-cpp-python then uses it); a plain
    transcript for a known base model; otherwise the family's format, because the library's
    fallback (llama-2) suits few models today."""
    if metadata.get("tokenizer.chat_template"):
        return None
    arch = str(metadata.get("general.architecture", "")).lower()
    name = f"{metadata.get('general.name', '')} {metadata.get('general.basename', '')}".lower()
    if arch.startswith(_BASE_WITHOUT_TEMPLATE) and is_base_model(metadata, file_name):
        return TRANSCRIPT
    if arch == "llama":
        llama3 = metadata.get("tokenizer.ggml.pre") == "llama-bpe" or re.search(
            r"llama[\s_-]*3", name)
        return "llama-3" if llama3 else "llama-2"
    for prefix, chat_format in _FAMILY_FORMATS:
        if arch.startswith(prefix):
            return chat_format
    return "chatml"  # the most common format among current instruction-tuned models


def is_base_model(metadata: dict[str, object], file_name: str = "") -> bool:
    """Named, and nothing in the names says instruction-tuned ("-it", "Instruct", "chat")."""
    names = " ".join(str(metadata.get(key, "")) for key in (
        "general.name", "general.basename", "general.finetune")) + f" {file_name}"
    return bool(names.strip()) and not _INSTRUCT.search(names.lower().replace("_", "-"))


def transcript_prompt(messages: list[dict[str, Any]]) -> str:
    """Preamble (the system prompt, if any), then "User: …" / "Assistant: …" lines, ending
    with "Assistant:" for the model to continue."""
    system = " ".join(_text(m) for m in messages if m.get("role") == "system").strip()
    lines = [system or TRANSCRIPT_PREAMBLE, ""]
    for message in messages:
        if (role := message.get("role")) in ("user", "assistant"):
            lines.append(f"{'User' if role == 'user' else 'Assistant'}: {_text(message)}")
    lines.append("Assistant:")
    return "\n".join(lines)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # parts: the text ones (a base model takes no images)
        content = " ".join(str(part.get("text", "")) for part in content
                           if isinstance(part, dict) and part.get("type") == "text")
    return str(content).strip()


def _register_transcript_format() -> None:
    from llama_cpp import llama_chat_format as formats

    def format_transcript(messages: list[dict[str, Any]], **_kwargs: Any) -> Any:
        return formats.ChatFormatterResponse(prompt=transcript_prompt(messages),
                                             stop=list(TRANSCRIPT_STOP))

    formats.register_chat_format(TRANSCRIPT)(format_transcript)


def context_size_for(metadata: dict[str, object], wanted: int) -> int:
    trained = metadata.get(f"{metadata.get('general.architecture', '')}.context_length")
    return min(wanted, trained) if isinstance(trained, int) and trained > 0 else wanted


def default_threads() -> int:
    """All CPUs but one, which stays free for the window: llama.cpp's threads spin while they
    wait, and on a 2-CPU machine two of them halved the decode rate whenever anything else
    ran (measured: 8-65 tokens/s with 2 threads, a steady 40-49 with 1)."""
    return max(1, min((os.cpu_count() or 2) - 1, 8))


# -- staying alive only as long as the app -----------------------------------------------------


def watch_parent(parent_pid: int, interval_s: float = 0.5) -> None:
    if parent_pid <= 0:
        return
    if sys.platform.startswith("linux"):
        _die_with_parent_linux()
    alive = _parent_probe(parent_pid)
    if not alive():  # the app died before we could watch it
        os._exit(0)

    def watch() -> None:
        while alive():
            time.sleep(interval_s)
        status("parent-gone")
        os._exit(0)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _die_with_parent_linux() -> None:
    """The kernel kills us the moment the app's process dies, even by SIGKILL."""
    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog thread still covers it


def _parent_probe(parent_pid: int) -> Callable[[], bool]:
    if os.name == "nt":
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        synchronize, wait_object_0 = 0x00100000, 0
        handle = kernel32.OpenProcess(synchronize, False, parent_pid)
        if not handle:
            return lambda: False
        _keep_alive.append(handle)  # an open handle also stops the pid from being reused
        return lambda: kernel32.WaitForSingleObject(handle, 0) != wait_object_0
    return lambda: os.getppid() == parent_pid  # reparented to init/subreaper: parent is gone


# -- serving -----------------------------------------------------------------------------------


def _report_load_progress(model: str) -> None:
    """llama.cpp reports model loading progress to a callback that llama-cpp-python does not
    expose; hook its default model parameters so the window can show a percentage."""
    import llama_cpp.llama_cpp as lib

    last = [-1]

    def on_progress(progress: float, _user_data: object) -> bool:
        percent = int(progress * 100)
        if percent >= last[0] + 5 or (percent == 100 and last[0] != 100):
            last[0] = percent
            status("progress", model=model, percent=percent)
        return True

    callback = lib.llama_progress_callback(on_progress)
    original = lib.llama_model_default_params

    def params_with_progress() -> Any:
        params = original()
        params.progress_callback = callback
        return params

    _keep_alive.append(callback)
    lib.llama_model_default_params = params_with_progress


def _ignore_settings_environment(field_names: set[str]) -> None:
    """The server's settings read environment variables (MODEL, PORT, API_KEY, CONFIG_FILE ...
    any case); a user's unrelated API_KEY would lock the app out of its own engine."""
    names = {name.lower() for name in field_names} | {"config_file"}
    for key in [key for key in os.environ if key.lower() in names]:
        del os.environ[key]


def serve(args: argparse.Namespace) -> int:
    path = Path(args.model)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((args.host, args.port))  # claim the port now, before the slow model load
    except OSError as exc:
        status("error", kind="port", detail=str(exc))
        print(f"cannot bind {args.host}:{args.port}: address already in use ({exc})",
              file=sys.stderr)
        return 3
    try:
        metadata = read_gguf_metadata(path)
    except (EngineError, ValueError, OSError, struct.error) as exc:
        metadata = {}  # llama.cpp gives the authoritative error while loading
        print(f"cannot read GGUF metadata: {exc!r}", file=sys.stderr)
    chat_format = args.chat_format or chat_format_for(metadata, path.name)
    n_ctx = context_size_for(metadata, args.n_ctx)
    status("loading", model=path.name, n_ctx=n_ctx, chat_format=chat_format or "gguf template",
           threads=args.threads, architecture=str(metadata.get("general.architecture", "")))

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings

    _ignore_settings_environment(set(Settings.model_fields))
    if chat_format == TRANSCRIPT:
        _register_transcript_format()
    _report_load_progress(path.name)
    model_settings = ModelSettings(
        model=str(path), model_alias=args.alias or path.stem, n_ctx=n_ctx,
        chat_format=chat_format, n_threads=args.threads, n_threads_batch=args.threads,
        use_mlock=False, verbose=True)
    try:
        app = create_app(server_settings=ServerSettings(host=args.host, port=args.port),
                         model_settings=[model_settings])
    except MemoryError as exc:
        status("error", kind="memory", detail=repr(exc))
        print(f"MemoryError: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the reason is in llama.cpp's log lines just before
        status("error", kind="load", detail=repr(exc))
        print(f"failed to load model: {exc!r}", file=sys.stderr)
        return 2
    status("loaded", model=path.name)
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=1)
    status("serving", url=f"http://{args.host}:{args.port}/v1")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="desktop_chat.engine_host", description=__doc__)
    parser.add_argument("--model", required=True, help="the GGUF file to serve")
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, default=0,
                        help="exit when this process is gone (0: never)")
    parser.add_argument("--n-ctx", type=int, default=DEFAULT_CONTEXT,
                        help="context size in tokens (capped at what the model was trained for)")
    parser.add_argument("--alias", default="", help="the model id /v1/models reports")
    parser.add_argument("--chat-format", default=None,
                        help="override: a llama-cpp-python chat format name")
    parser.add_argument("--threads", type=int, default=default_threads())
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    watch_parent(args.parent_pid)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
