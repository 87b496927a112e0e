"""Composition root: command line, logging, QApplication, qasync loop, and the wiring.

Everything is built here and passed in; nothing else looks anything up globally.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncGenerator, Mapping
from datetime import timedelta
from pathlib import Path

import platformdirs
import qasync
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

import desktop_chat
from desktop_chat import APP_DISPLAY_NAME, APP_NAME, ORG_NAME, resources
from desktop_chat.core import logs
from desktop_chat.core.config.providers import OFFLINE, PRESETS, preset
from desktop_chat.core.config.secrets import Secrets
from desktop_chat.core.config.settings import SettingsFile
from desktop_chat.core.helper_flags import ENGINE_HOST_FLAG, IMPORT_HOST_FLAG, MATH_HOST_FLAG
from desktop_chat.core.history import recovery, schema
from desktop_chat.core.history.store import HISTORY_FILE, Store, StoreError
from desktop_chat.core.llm import errors
from desktop_chat.core.model.message import ReplyState
from desktop_chat.core.render import markdown
from desktop_chat.ui import (
    deferred,
    import_hook,
    single_instance,
    theme,
    transcript_accessible,
)
from desktop_chat.ui.connections import Connections
from desktop_chat.ui.controller import ChatController
from desktop_chat.ui.crash import install_excepthook
from desktop_chat.ui.library import Library
from desktop_chat.ui.main_window import MainWindow
from desktop_chat.ui.tools import ToolService
from desktop_chat.ui.transfers import Transfers

log = logging.getLogger("desktop_chat.app")

WINDOW_STATE_FILE = "window.ini"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=APP_NAME,
        description="A native desktop chat client for OpenAI-compatible servers. "
        "OPENAI_API_KEY and OPENAI_BASE_URL are honoured.",
    )
    parser.add_argument("--data-dir", type=Path, help="settings, history and logs (default: "
                        "the platform's user data folder)")
    parser.add_argument("--base-url", help="OpenAI-compatible API base URL, e.g. "
                        "http://127.0.0.1:11434/v1 (default: OPENAI_BASE_URL or OpenAI)")
    parser.add_argument("--model", help="model name for new messages")
    parser.add_argument("--gguf", type=Path, metavar="PATH",
                        help="chat offline with this GGUF model file (built-in engine; needs "
                        'the optional extra: pip install ".[local]" in the source folder)')
    parser.add_argument("--smoke-prompt", metavar="TEXT",
                        help="for automated checks: send TEXT, print the reply, exit "
                        "(0 if it completed)")
    parser.add_argument("--self-test", action="store_true",
                        help="build the window offscreen, check the runtime, print a report")
    parser.add_argument("--mcp-config", type=Path, metavar="PATH",
                        help='MCP tool servers for this run: a {"mcpServers": {...}} JSON file '
                        "(the format of Claude desktop, Cursor and others)")
    parser.add_argument("--version", action=_PrintVersion, nargs=0,
                        help="show the version and exit")
    return parser.parse_args(argv)


class _PrintVersion(argparse.Action):
    """argparse's "version" action, with the version read only when asked for (see
    desktop_chat.__getattr__)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"{APP_NAME} {desktop_chat.__version__}")  # on stdout, as argparse's does
        parser.exit()


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def create_main_window(argv: list[str] | None = None) -> MainWindow:
    """The fully wired window, for a running QApplication with a qasync loop as the current
    asyncio event loop. Used by `main`, the tests and anyone automating the app."""
    return build_window(parse_args(argv), os.environ)


def build_window(args: argparse.Namespace, environ: Mapping[str, str], *,
                 fast_start: bool = False) -> MainWindow:
    """The window with everything wired. `fast_start` (the app's own start, `main`): what
    its first frame does not show, the Tools menu with its panels, is built just after that
    frame (`add_tool_view`) instead of before it."""
    if import_hook.is_active():  # not started by `launch.main` (tests, embedding)
        # pydantic (the SDK's models), whole, on this thread, before the SDK's helper thread
        # imports it under PySide6's hook: see ui/import_hook.py. ~50 ms.
        import pydantic._internal._validators  # noqa: F401
    data_dir = resolve_data_dir(args)
    # every preset's key variable is redacted from the first log line on
    env_keys = [environ.get(p.key_env, "") for p in PRESETS.values() if p.key_env]
    logs.setup(data_dir / "logs", secrets=[k for k in env_keys if k.strip()])
    stored = SettingsFile(data_dir, environ, args.base_url, args.model)
    if args.gguf is not None:
        stored.use_run_profile(dataclasses.replace(
            preset(OFFLINE).new_profile("command-line"), gguf_path=str(args.gguf)))
    settings = stored.settings
    secrets = Secrets(data_dir, environ, on_secret=logs.add_secret,
                      plaintext_accepted=settings.plaintext_keys_accepted)
    profile = settings.active()
    log.info("%s starting; data dir %s; profile %s", APP_NAME, data_dir,
             f"{profile.id} ({profile.base_url or profile.preset}, model {profile.model})"
             if profile else "none (first run)")
    if schema.needs_migration(data_dir / HISTORY_FILE):
        # upgrading an old history removes every key it knows from stored errors: look them
        # all up first (each lookup tells the redaction about the key)
        for known in settings.profiles:
            secrets.get(known)
    store, store_notice = open_history(data_dir)
    loop = asyncio.get_event_loop()
    first_frame = deferred.FirstFrame()  # what is not needed for it loads after it
    transcript_accessible.install()  # screen readers read the transcript's formulas as LaTeX
    connections = Connections(loop, stored, secrets, data_dir, first_frame=first_frame.wait)
    client = connections.initial_client()
    tools = ToolService(loop, data_dir, args.mcp_config, secrets=secrets)
    controller = ChatController(loop, client, profile.model if profile else "",
                                settings.system_prompt, store=store, tools=tools.box)
    controller.set_document_share(settings.document_share)
    connections.controller = controller
    notice = stored.notice or store_notice
    if (notice is None and not client.key_pending and client.endpoint.needs_key
            and client.endpoint.api_key is None):
        notice = errors.no_key(client.endpoint.base_url).message  # say so before the first send
    window_state = QSettings(str(data_dir / WINDOW_STATE_FILE), QSettings.Format.IniFormat)
    library = Library(store, in_use=controller.is_replying_in)
    library.renamed.connect(controller.conversation_renamed)
    library.deleted.connect(controller.conversation_deleted)
    transfers = Transfers(loop, store)
    window = MainWindow(controller, library, APP_DISPLAY_NAME, notice=notice,
                        state=window_state, transfers=transfers, connections=connections)
    transfers.setParent(window)
    tools.setParent(window)
    first_frame.setParent(window)
    if fast_start:
        first_frame.shown.connect(lambda: add_tool_view(window, tools))
    else:
        add_tool_view(window, tools)
    first_frame.shown.connect(lambda: after_first_frame(window, store))
    first_frame.watch(window)
    controller.setParent(window)
    library.setParent(window)
    connections.setParent(window)
    if store is not None:
        window.destroyed.connect(store.close)
    return window


def add_tool_view(window: MainWindow, tools: ToolService) -> None:
    """The Tools menu, the tool calls' panel and the servers' prompts and resources. Its
    modules load here: ~8 ms less before the first frame (issue #18). The servers start
    after it (`ToolView`); a reply cannot ask for a tool before the SDK has loaded, which
    happens after the first frame too."""
    from desktop_chat.ui.tool_view import ToolView

    window.tools = ToolView(window, tools)


def after_first_frame(window: MainWindow, store: Store | None) -> None:
    """The window is on screen: load what it did without (each also loads on first use),
    and check the history's pages (`open_history` left that out)."""
    log.info("first frame shown")
    loading = deferred.Loading()  # the helper threads first: they have the most to do
    window.controller.tasks.start(_settle_after_loading(window, loading),
                                  what="Loading in the background")
    if store is not None:
        window.controller.tasks.start(_check_history(window, store),
                                      what="Checking the history file")
    # its own turn of the loop, so that input in between is handled
    QTimer.singleShot(0, lambda: _add_emoji_font(window))


def _add_emoji_font(window: MainWindow) -> None:
    from desktop_chat.ui import emoji_font  # needed only now: ~2 ms less before the first frame

    if emoji_font.ensure_emoji_font() is not None:  # colour emoji where the platform has none
        window.update()  # what the first frame drew with the font as it was


async def _settle_after_loading(window: MainWindow, loading: deferred.Loading) -> None:
    try:
        await loading.done()
        # then, still while threads switch every 1 ms (see deferred.Loading)
        await window.documentReader.warm_up()
    finally:
        loading.finish(keep_gc_off=window.controller.is_streaming)
    # read from the package's metadata in a helper thread by `Loading`
    QApplication.setApplicationVersion(desktop_chat.__version__)
    log.info("%s %s", APP_NAME, desktop_chat.__version__)


async def _check_history(window: MainWindow, store: Store) -> None:
    notice = await asyncio.to_thread(recovery.check_open, store)
    if notice:  # the file was damaged and has been recovered (or could not be)
        window.show_error(notice, pinned=True)
        window.library.changed.emit()


# A write from the GUI thread waits at most this long for another writer (an import): longer
# would freeze the window; a reply that cannot be saved yet is retried (see ChatController).
GUI_WRITE_WAIT_S = 0.05


def open_history(data_dir: Path) -> tuple[Store | None, str | None]:
    """The history store (recovered if damaged), with replies cut off by a crash marked
    interrupted. Without a usable store the app still chats (in memory) and says why."""
    store, notice = recovery.open_history(data_dir / HISTORY_FILE, check=False)
    if store is None:
        return None, notice
    store.limit_write_wait(GUI_WRITE_WAIT_S)
    try:
        interrupted = store.mark_interrupted_on_start()
        if interrupted:
            log.warning("%d reply(s) were cut off by a crash; marked interrupted", interrupted)
        store.purge_deleted(timedelta(days=30))
        store.forget_unused_documents()  # read for a message that was never sent
    except StoreError as exc:  # e.g. a full disk: reading still works
        log.error("start-up upkeep of the history failed: %s", exc)
        notice = notice or f"{exc} New messages may not be saved."
    return store, notice or store.damage_notice()


def resolve_data_dir(args: argparse.Namespace) -> Path:
    """The data folder, created if need be. One that cannot be created is still returned:
    the app then works for the session and says that nothing is saved (`open_history`)."""
    data_dir: Path = args.data_dir or default_data_dir()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.error("cannot create the data folder %s: %s", data_dir, exc)
    return data_dir


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [ENGINE_HOST_FLAG]:  # the frozen app runs its own offline engine this way
        from desktop_chat.engine_host import main as engine_host_main

        return engine_host_main(argv[1:])
    if argv[:1] == [MATH_HOST_FLAG]:  # and its formula helper (core/render/math_host.py)
        from desktop_chat.core.render.math_host import main as math_host_main

        return math_host_main(argv[1:])
    if argv[:1] == [IMPORT_HOST_FLAG]:  # and its import helper (core/history/import_process.py)
        from desktop_chat.core.history.import_process import main as import_host_main

        return import_host_main(argv[1:])
    _ensure_std_streams()
    args = parse_args(argv)
    if args.self_test:
        from desktop_chat.selftest import run_self_test

        return run_self_test(args)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    configure_application(app)
    data_dir = resolve_data_dir(args)
    if single_instance.ask_running_instance(data_dir):
        print(f"{APP_NAME} is already running for {data_dir}; its window was brought forward.")
        return 0
    instance = single_instance.InstanceServer(data_dir)
    loop = create_event_loop(app)
    with loop:
        window = build_window(args, os.environ, fast_start=True)
        instance.raise_requested.connect(lambda: _bring_forward(window))
        settle_startup_objects()
        install_excepthook(window, data_dir / "logs" / logs.LOG_FILE)
        loop.set_exception_handler(_log_loop_exception)
        run = _smoke(window, args.smoke_prompt) if args.smoke_prompt else _run(window)
        status = loop.run_until_complete(run)
    release_clipboard(app)
    return status


def _bring_forward(window: MainWindow) -> None:
    window.showNormal()
    window.raise_()
    window.activateWindow()


def release_clipboard(app: QApplication) -> None:
    """On platforms whose clipboard is a C++ global (offscreen, minimal), data we copied is
    deleted after Python has shut down, which crashes in shiboken: drop it while we can.
    Real desktop clipboards keep their content and are left alone."""
    if app.platformName() in ("offscreen", "minimal"):
        app.clipboard().clear()


def settle_startup_objects() -> None:
    """Everything built so far lives as long as the app: keep it out of the garbage
    collector's full passes, which otherwise stalled a streaming reply for ~50 ms. (No full
    collection first: at this point it found ~20 unreachable objects and cost the first frame
    20-90 ms.) What loads after the first frame is frozen too (deferred.Loading)."""
    gc.freeze()


def start_warm_up() -> threading.Thread:
    """Markdown and highlighting machinery loaded in the background while the user types
    the first prompt, so that the first reply does not stall on it."""
    thread = threading.Thread(target=_warm_up, name="warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up() -> None:
    started = time.perf_counter()
    markdown.warm_up()
    log.info("markdown and code highlighting ready (%.0f ms)",
             (time.perf_counter() - started) * 1000)


def configure_application(app: QApplication) -> None:
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_DISPLAY_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setDesktopFileName(APP_NAME)
    app.setWindowIcon(QIcon(str(resources.path("desktop-chat.svg"))))
    app.setQuitOnLastWindowClosed(False)  # we stop the loop ourselves, after cleanup
    theme.follow_color_scheme(app)
    app.styleHints().colorSchemeChanged.connect(lambda _scheme: theme.follow_color_scheme(app))


def create_event_loop(app: QApplication) -> qasync.QEventLoop:
    """The qasync loop, set as the current loop, finalizing abandoned async generators as
    asyncio does. qasync installs no async-generator hooks, so an SDK stream abandoned inside
    the SDK would be finalized outside any task, where its cleanup fails (sniffio cannot tell
    the async library) and prints an "Exception ignored" traceback."""
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    def finalize(agen: AsyncGenerator[object, None]) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(lambda: loop.create_task(_close_abandoned(agen, loop)))

    sys.set_asyncgen_hooks(finalizer=finalize)
    return loop


async def _close_abandoned(agen: AsyncGenerator[object, None],
                           loop: asyncio.AbstractEventLoop) -> None:
    """Close a generator the SDK left behind (it closes the HTTP response itself). In the
    app the loop always runs; a test drives it in steps, and a close that lands between two
    steps has no running loop, so sniffio cannot name the library (a RuntimeError). That one
    is logged, not reported as a failed task."""
    try:
        await agen.aclose()
    except RuntimeError as exc:
        if loop.is_running():
            raise
        log.debug("an abandoned async generator closed outside the running loop: %r", exc)


async def _run(window: MainWindow) -> int:
    closed = asyncio.get_running_loop().create_future()
    window.closed.connect(lambda: closed.done() or closed.set_result(None))
    window.show()  # the SDK, markdown and the rest load after its first frame (deferred.py)
    await closed
    await close_window_services(window)
    log.info("closed")
    return 0


async def _smoke(window: MainWindow, prompt: str) -> int:
    """Send one prompt through the real window and print the reply: proves a build works
    end to end (the frozen app in CI)."""
    finished = asyncio.get_running_loop().create_future()
    window.controller.reply_finished.connect(
        lambda reply: finished.done() or finished.set_result(reply))
    window.show()
    if window.connections is not None:
        await window.connections.idle()  # start-up work: the model list, the offline engine
    window.composer.setPlainText(prompt)
    window.send()
    if not window.controller.is_streaming:  # refused (nothing configured, engine failed)
        window.close()
        await close_window_services(window)
        print(f"FAILED: {window.errorBanner.text().lstrip('⚠ ')}", flush=True)
        return 1
    reply = await finished
    window.close()
    await close_window_services(window)
    print(reply.content if reply.content else f"FAILED: {reply.error}", flush=True)
    return 0 if reply.state is ReplyState.COMPLETE else 1


async def close_window_services(window: MainWindow) -> None:
    """Stop a reply in flight (keeping its text), close HTTP clients, stop the offline
    engine, cancel an import in flight (all or nothing: nothing is imported)."""
    await window.controller.aclose()
    if window.connections is not None:
        await window.connections.aclose()
    if window.transfers is not None:
        await window.transfers.aclose()
    if window.tools is not None:
        await window.tools.service.aclose()  # every server stops with the app


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    exc = context.get("exception")
    log.error("event loop: %s", context.get("message"),
              exc_info=exc if isinstance(exc, BaseException) else None)


def _ensure_std_streams() -> None:
    """A windowed build has no stdout/stderr; argparse and print must not crash on that."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
