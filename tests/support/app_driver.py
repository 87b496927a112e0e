"""Run the real app as its own process and send one prompt, for tests that must kill it.

    python -m tests.support.app_driver --data-dir D --base-url URL --prompt TEXT

The app has no automation channel of its own (no socket or script interface; the single-
instance socket only understands "raise"), and a crash test must SIGKILL a *separate* process
mid-reply. So this script does what `desktop_chat.app.main` does — offscreen QApplication,
`configure_application`, the qasync loop, `create_main_window` with these arguments, the
single-instance server, `settle_startup_objects` — then, inside the running loop, types the
prompt into the window's composer and calls `window.send()`, prints ``SENT`` (flushed) and
keeps the loop running until it is killed.

Safety net for test runs that die without cleaning up: the process exits by itself when its
parent goes away, or after ``--max-seconds`` if given.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from desktop_chat.app import (
    configure_application,
    create_event_loop,
    create_main_window,
    settle_startup_objects,
)
from desktop_chat.ui import single_instance
from desktop_chat.ui.main_window import MainWindow


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--model", default="test-model")
    parser.add_argument("--max-seconds", type=float, default=0.0,
                        help="exit after this long (default: run until killed)")
    return parser.parse_args(argv)


def send(window: MainWindow, prompt: str) -> None:
    window.composer.setPlainText(prompt)
    window.send()
    if not window.stopButton.isEnabled():
        print(f"NOT SENT: {window.errorBanner.text()}", flush=True)
        return
    print("SENT", flush=True)


def bring_forward(window: MainWindow) -> None:
    window.showNormal()
    window.raise_()
    window.activateWindow()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    configure_application(app)
    app_args = ["--data-dir", args.data_dir, "--base-url", args.base_url, "--model", args.model]
    instance = single_instance.InstanceServer(Path(args.data_dir))  # as main(): we own it
    loop = create_event_loop(app)
    parent = os.getppid()

    def watch_parent() -> None:
        if os.getppid() != parent:
            os._exit(3)  # orphaned: the test that started us is gone
        loop.call_later(1.0, watch_parent)

    with loop:
        window = create_main_window(app_args)
        instance.raise_requested.connect(lambda: bring_forward(window))
        window.show()
        settle_startup_objects()
        loop.call_soon(send, window, args.prompt)
        loop.call_later(1.0, watch_parent)
        if args.max_seconds > 0:
            loop.call_later(args.max_seconds, os._exit, 4)
        loop.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
