"""The `openai` SDK, imported once per process in a helper thread.

Importing it takes ~0.7 s on a 2-core machine (its `openai.types` package loads every type
eagerly), and nothing needs it until the first request. So the window appears without it:
the app calls `preload()` once its first frame is on screen, and every request awaits
`load()`, which waits for that import (or starts it, in tests and tools that never preload).
A prompt sent before the import finished simply waits for it.

The import is the process's own state (as `sys.modules` is): this module keeps the one
future of it, nothing else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from types import ModuleType

log = logging.getLogger("desktop_chat.client")

_lock = threading.Lock()
_import: concurrent.futures.Future[ModuleType] | None = None


def preload() -> concurrent.futures.Future[ModuleType]:
    """Start importing the SDK in a daemon thread, once; the future of that import."""
    global _import
    with _lock:
        if _import is None:
            _import = concurrent.futures.Future()
            threading.Thread(target=_import_sdk, args=(_import,), name="openai-import",
                             daemon=True).start()
        return _import


def _import_sdk(future: concurrent.futures.Future[ModuleType]) -> None:
    started = time.perf_counter()
    try:
        # anyio's asyncio backend: else the first request loads it on the event loop (~18 ms)
        import anyio._backends._asyncio  # noqa: F401
        import openai

        # The client imports these with its first request, on the event loop: ~45 ms of
        # CPU there (more where PySide6's import hook is in, see ui/import_hook.py), here
        import openai.resources.chat
        import openai.resources.models
        import openai.resources.responses
    except BaseException as exc:  # a broken install: every request says so
        log.error("the openai SDK could not be imported: %r", exc)
        future.set_exception(exc)
        return
    log.info("openai SDK %s loaded (%.0f ms)", openai.__version__,
             (time.perf_counter() - started) * 1000)
    future.set_result(openai)


def loaded() -> bool:
    """Whether the SDK is ready to use without waiting."""
    return _import is not None and _import.done() and _import.exception() is None


async def load() -> ModuleType:
    """The SDK module, once imported (off the event loop); raises what the import raised."""
    return await asyncio.wrap_future(preload())
