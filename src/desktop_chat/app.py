"""Composition root: command line, logging, QApplication, qasync loop, and the wiring.

Everything is built here and passed in; nothing else looks anything up globally.

The window comes in two parts (issue #18: on screen in half a second). `open_window` makes
what its first frame shows, from the few modules that needs; `finish_window` makes the rest
(the history, the services, the conversation, the sidebar's list), importing its ~70
modules one at a time (`WINDOW_MODULES`). The app's start (`main`) runs `finish_window`'s
steps one per turn of the event loop after the first frame, so that typing is never held up
for long; `build_window` (tests, the self-test, embedding) runs them all at once.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncGenerator, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
import qasync
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

import desktop_chat
from desktop_chat import APP_DISPLAY_NAME, APP_NAME, ORG_NAME, resources
from desktop_chat.core import logs
from desktop_chat.core.config.providers import OFFLINE, PRESETS, preset
from desktop_chat.core.config.settings import SettingsFile
from desktop_chat.core.helper_flags import ENGINE_HOST_FLAG, IMPORT_HOST_FLAG, MATH_HOST_FLAG
from desktop_chat.core.model.message import ReplyState
from desktop_chat.ui import deferred, import_hook, single_instance, theme
from desktop_chat.ui.crash import install_excepthook
from desktop_chat.ui.main_window import MainWindow

if TYPE_CHECKING:
    from desktop_chat.core.history.store import Store
    from desktop_chat.ui.tools import ToolService

log = logging.getLogger("desktop_chat.app")

WINDOW_STATE_FILE = "window.ini"
# PySide6 makes its Python classes on first use. The first time it wraps a widget that Qt
# made (the transcript's viewport), it makes every QWidget subclass of QtWidgets at once,
# with their enum types: ~30 ms in one piece. `finish_window` makes them a few at a time
# first (a name missing from another PySide6 version is skipped), and QStyle (~20 enum
# types, for the sidebar's rows and the scroll bars) with them.
QT_WIDGET_CLASSES = (
    "QAbstractButton", "QAbstractItemView", "QAbstractSlider", "QAbstractSpinBox",
    "QCalendarWidget", "QCheckBox", "QColorDialog", "QColumnView", "QComboBox",
    "QCommandLinkButton", "QDateEdit", "QDateTimeEdit", "QDial", "QDialog", "QDialogButtonBox",
    "QDockWidget", "QDoubleSpinBox", "QErrorMessage", "QFileDialog", "QFocusFrame",
    "QFontComboBox", "QFontDialog", "QGraphicsView", "QGroupBox", "QHeaderView", "QInputDialog",
    "QKeySequenceEdit", "QLCDNumber", "QLabel", "QLineEdit", "QListView", "QListWidget",
    "QMainWindow", "QMdiArea", "QMdiSubWindow", "QMenu", "QMenuBar", "QMessageBox",
    "QPlainTextEdit", "QProgressBar", "QProgressDialog", "QPushButton", "QRadioButton",
    "QRhiWidget", "QRubberBand", "QScrollArea", "QScrollBar", "QSizeGrip", "QSlider", "QSpinBox",
    "QSplashScreen", "QSplitter", "QSplitterHandle", "QStackedWidget", "QStatusBar", "QTabBar",
    "QTabWidget", "QTableView", "QTableWidget", "QTextBrowser", "QTimeEdit", "QToolBar",
    "QToolBox", "QToolButton", "QTreeView", "QTreeWidget", "QUndoView", "QWizard", "QWizardPage",
    "QStyle",
)
QT_CLASSES_PER_STEP = 6
# What `finish_window` imports, one module per step, each after what it imports: none of
# them then loads another of ours, so a step costs one module (at most ~15 ms). Kept so by
# tests/ui/test_window_parts.py, which names any module that is missing or out of order.
WINDOW_MODULES = (
    "desktop_chat.core.config.secrets",
    "desktop_chat.core.history",
    "desktop_chat.core.history.schema",
    "desktop_chat.core.documents",
    "desktop_chat.core.documents.extract",
    "desktop_chat.core.documents.chunks",
    "desktop_chat.core.history.tool_calls",
    "desktop_chat.core.history.records",
    "desktop_chat.core.history.documents",
    "desktop_chat.core.history.search",
    "desktop_chat.core.history.db",
    "desktop_chat.core.history.store",
    "desktop_chat.core.llm.errors",
    "desktop_chat.core.render.math",
    "desktop_chat.core.render.markdown",
    "desktop_chat.core.render.math_host",
    "desktop_chat.ui.tasks",
    "desktop_chat.ui.math_images",
    "desktop_chat.ui.transcript_accessible",
    "desktop_chat.core.config.first_run",
    "desktop_chat.core.engine",
    "desktop_chat.core.engine.process",
    "desktop_chat.core.engine.offline",
    "desktop_chat.core.llm.events",
    "desktop_chat.core.llm.responses",
    "desktop_chat.core.llm.client",
    "desktop_chat.core.llm.discovery",
    "desktop_chat.core.chat.documents",
    "desktop_chat.core.chat.pacing",
    "desktop_chat.core.chat.retrieval",
    "desktop_chat.core.chat.context",
    "desktop_chat.core.chat.turn",
    "desktop_chat.core.tools",
    "desktop_chat.core.tools.catalog",
    "desktop_chat.core.tools.config",
    "desktop_chat.core.tools.host",
    "desktop_chat.core.tools.consent",
    "desktop_chat.core.tools.toolbox",
    "desktop_chat.core.chat.session",
    "desktop_chat.ui.controller",
    "desktop_chat.ui.engine_supervisor",
    "desktop_chat.ui.connections",
    "desktop_chat.ui.library",
    "desktop_chat.core.tools.secrets",
    "desktop_chat.ui.tools",
    "desktop_chat.ui.transfers",
    "desktop_chat.core.history.recovery",
    "desktop_chat.core.render.guard",
    "desktop_chat.ui.clipboard",
    "desktop_chat.core.documents.pages",
    "desktop_chat.ui.plain_text",
    "desktop_chat.ui.reply_view",
    "desktop_chat.ui.document_chips",
    "desktop_chat.ui.follow",
    "desktop_chat.ui.message_actions",
    "desktop_chat.ui.message_editor",
    "desktop_chat.ui.progressive",
    "desktop_chat.ui.tool_approval",
    "desktop_chat.ui.tool_rows",
    "desktop_chat.ui.transcript_painter",
    "desktop_chat.ui.transcript",
    "desktop_chat.ui.copy_actions",
    "desktop_chat.ui.file_menu",
    "desktop_chat.ui.demo_terms",
    "desktop_chat.ui.setup_flow",
    "desktop_chat.ui.sidebar",
    "desktop_chat.ui.welcome",
    "desktop_chat.ui.server_context",
    "desktop_chat.ui.tool_view",
)


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


class Opening:
    """What `open_window` made, for `finish_window`."""

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str], data_dir: Path,
                 stored: SettingsFile, window: MainWindow) -> None:
        self.args = args
        self.environ = environ
        self.data_dir = data_dir
        self.stored = stored
        self.window = window
        # the first frame: what is not needed for it loads after it
        self.first_frame = deferred.FirstFrame(window)
        self.first_frame.watch(window)
        # set once the window is whole and markdown loaded (the app's start; at once in
        # `build_window`): start-up requests then go out (`wait_settled`)
        self.settled = asyncio.Event()

    async def wait_settled(self) -> None:
        """For `Connections`: its start-up requests (the model list) load the SDK, which
        would otherwise compete with the window's own loading."""
        await self.first_frame.wait()
        await self.settled.wait()


def build_window(args: argparse.Namespace, environ: Mapping[str, str]) -> MainWindow:
    """The whole window, built at once."""
    opening = open_window(args, environ)
    for _ in finish_window(opening):
        pass
    window = opening.window
    window.restore_conversation()
    opening.settled.set()
    store = window.controller.store
    opening.first_frame.shown.connect(lambda: after_first_frame(window, store))
    return window


def open_window(args: argparse.Namespace, environ: Mapping[str, str]) -> Opening:
    """What the window's first frame needs: the data folder, logging, the settings (the
    model's name) and the window's frame (`MainWindow`)."""
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
    app = QApplication.instance()
    if isinstance(app, QApplication):  # the theme and text size the window is drawn with
        theme.apply_appearance(app, stored.settings.theme, stored.settings.font_size)
    profile = stored.settings.active()
    log.info("%s starting; data dir %s; profile %s", APP_NAME, data_dir,
             f"{profile.id} ({profile.base_url or profile.preset}, model {profile.model})"
             if profile else "none (first run)")
    window_state = QSettings(str(data_dir / WINDOW_STATE_FILE), QSettings.Format.IniFormat)
    window = MainWindow(APP_DISPLAY_NAME, state=window_state,
                        model=profile.model if profile else "",
                        provider=profile.name if profile else "", first_run=profile is None)
    return Opening(args, environ, data_dir, stored, window)


def load_steps() -> Iterator[str]:
    """What the rest of the window needs loaded, a little per step (each yields what it
    loaded): PySide6's widget classes, then `WINDOW_MODULES`. Loaded already, a step costs
    nothing."""
    from PySide6 import QtWidgets

    for first in range(0, len(QT_WIDGET_CLASSES), QT_CLASSES_PER_STEP):
        names = QT_WIDGET_CLASSES[first:first + QT_CLASSES_PER_STEP]
        for name in names:
            getattr(QtWidgets, name, None)
        yield ", ".join(names)
    for name in WINDOW_MODULES:
        importlib.import_module(name)
        yield name


def finish_window(opening: Opening) -> Iterator[None]:
    """The rest of the window, in steps: its modules, the keys, the history, the services,
    and the window's parts (`MainWindow.attach`)."""
    for _ in load_steps():
        yield
    from desktop_chat.core.config.secrets import Secrets
    from desktop_chat.core.history import schema
    from desktop_chat.core.history.store import HISTORY_FILE
    from desktop_chat.core.llm import errors
    from desktop_chat.ui import transcript_accessible
    from desktop_chat.ui.connections import Connections
    from desktop_chat.ui.controller import ChatController
    from desktop_chat.ui.library import Library
    from desktop_chat.ui.tools import ToolService
    from desktop_chat.ui.transfers import Transfers

    args, data_dir, stored, window = (opening.args, opening.data_dir, opening.stored,
                                      opening.window)
    settings = stored.settings
    secrets = Secrets(data_dir, opening.environ, on_secret=logs.add_secret,
                      plaintext_accepted=settings.plaintext_keys_accepted)
    profile = settings.active()
    if schema.needs_migration(data_dir / HISTORY_FILE):
        # upgrading an old history removes every key it knows from stored errors: look them
        # all up first (each lookup tells the redaction about the key)
        for known in settings.profiles:
            secrets.get(known)
    store, store_notice = open_history(data_dir)
    yield
    loop = asyncio.get_event_loop()
    transcript_accessible.install()  # screen readers read the transcript's formulas as LaTeX
    connections = Connections(loop, stored, secrets, data_dir,
                              first_frame=opening.wait_settled)
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
    library = Library(store, in_use=controller.is_replying_in)
    library.renamed.connect(controller.conversation_renamed)
    library.deleted.connect(controller.conversation_deleted)
    transfers = Transfers(loop, store)
    for part in (transfers, tools, controller, library, connections):
        part.setParent(window)
    if store is not None:
        window.destroyed.connect(store.close)
    yield
    yield from window.attach(controller, library, notice=notice, transfers=transfers,
                             connections=connections)
    yield
    add_tool_view(window, tools)
    yield


def add_tool_view(window: MainWindow, tools: ToolService) -> None:
    """The Tools menu's entries, the tool calls' panel and the servers' prompts and
    resources. The servers start after it (`ToolView`)."""
    from desktop_chat.ui.tool_view import ToolView

    window.tools = ToolView(window, tools)


def after_first_frame(window: MainWindow, store: Store | None, *,
                      pause_after_markdown: bool = False) -> deferred.Loading:
    """The window is on screen and whole: load what it did without (each also loads on
    first use), and check the history's pages (`open_history` left that out)."""
    log.info("the window is whole")
    # the helper threads first: they have the most to do
    loading = deferred.Loading(pause_after_markdown=pause_after_markdown)
    window.controller.tasks.start(_settle_after_loading(window, loading),
                                  what="Loading in the background")
    if store is not None:
        window.controller.tasks.start(_check_history(window, store),
                                      what="Checking the history file")
    # its own turn of the loop, so that input in between is handled
    QTimer.singleShot(0, lambda: _add_emoji_font(window))
    return loading


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
    from desktop_chat.core.history import recovery

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
    from desktop_chat.core.history import recovery
    from desktop_chat.core.history.store import HISTORY_FILE, StoreError

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
        opening = open_window(args, os.environ)
        window = opening.window
        instance.raise_requested.connect(lambda: _bring_forward(window))
        install_excepthook(window, data_dir / "logs" / logs.LOG_FILE)
        loop.set_exception_handler(_log_loop_exception)
        finishing = loop.create_task(finish_in_turns(opening))
        run = (_smoke(window, finishing, args.smoke_prompt) if args.smoke_prompt
               else _run(window, finishing))
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
    from desktop_chat.core.render import markdown

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


async def finish_in_turns(opening: Opening) -> bool:
    """After the first frame: `finish_window`, one step per turn of the event loop (typing
    and painting are handled in between), then the background loading. False if the window
    could not be finished (said in it, and logged)."""
    window = opening.window
    await opening.first_frame.wait()
    log.info("first frame shown")
    gc.disable()  # its passes over what is being imported would hold up the loop
    try:
        for _ in finish_window(opening):
            await asyncio.sleep(0)  # a turn of the loop: input, timers, painting
    except Exception as exc:
        log.exception("the window could not be finished")
        window.show_error(f"{APP_DISPLAY_NAME} could not finish starting "
                          f"({type(exc).__name__}: {exc}). The log has the details; please "
                          "report it.", pinned=True)
        return False
    finally:
        settle_startup_objects()
        gc.enable()
    await asyncio.sleep(0)  # the window's first paint with all its parts comes first
    loading = after_first_frame(window, window.controller.store, pause_after_markdown=True)
    # The conversation left open: shown once markdown is loaded, while nothing else loads
    # (loading markdown on this thread while the SDK loaded in another froze the window for
    # ~400 ms; measured with `benchmarks/startup.py --history`)
    try:
        await loading.markdown_ready()
        window.restore_conversation()
        await window.controller.wait_opened()
    finally:
        loading.resume()
        opening.settled.set()
    return True


async def _run(window: MainWindow, finishing: asyncio.Task[bool]) -> int:
    closed = asyncio.get_running_loop().create_future()
    window.closed.connect(lambda: closed.done() or closed.set_result(None))
    window.show()  # the rest of the window, then the SDK, markdown etc. after its first frame
    await closed
    if not await finishing:
        return 1
    await close_window_services(window)
    log.info("closed")
    return 0


async def _smoke(window: MainWindow, finishing: asyncio.Task[bool], prompt: str) -> int:
    """Send one prompt through the real window and print the reply: proves a build works
    end to end (the frozen app in CI)."""
    window.show()
    if not await finishing:
        print(f"FAILED: {window.errorBanner.text().lstrip('⚠ ')}", flush=True)
        return 1
    finished = asyncio.get_running_loop().create_future()
    window.controller.reply_finished.connect(
        lambda reply: finished.done() or finished.set_result(reply))
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
