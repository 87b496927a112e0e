"""The one place that owns sys.excepthook: log the error, tell the user, keep running."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

log = logging.getLogger("desktop_chat.crash")


def install_excepthook(parent: QWidget, log_path: Path) -> None:
    def hook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.critical("unhandled exception", exc_info=(exc_type, exc, tb))
        show_error_dialog(parent, log_path, exc)

    sys.excepthook = hook


def show_error_dialog(parent: QWidget, log_path: Path, exc: BaseException) -> None:
    # .open(), not .exec(): a nested event loop would break replies streaming under qasync.
    from PySide6.QtWidgets import QMessageBox  # only on a crash: its enums cost ~1 ms at start

    box = QMessageBox(
        QMessageBox.Icon.Critical,
        "Unexpected error",
        "Something went wrong inside Desktop Chat. Your conversation and what you typed are "
        "kept; you can go on working.",
        QMessageBox.StandardButton.Ok,
        parent,
    )
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setInformativeText(f"{type(exc).__name__}. Details were written to {log_path}.")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setObjectName("errorDialog")
    box.open()
