"""One running app per data dir: a second launch asks the first to show itself and exits.

Two processes writing one history is safe for SQLite (WAL, busy timeout), but each would
mark the other's streaming reply as interrupted on start and show stale lists; so we keep
one. The first instance listens on a local socket named after the data dir.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger("desktop_chat.instance")

RAISE = b"raise\n"
CONNECT_MS = 500


def socket_name(data_dir: Path) -> str:
    digest = hashlib.sha256(str(data_dir.resolve()).encode("utf-8")).hexdigest()[:16]
    return f"desktop-chat-{digest}"


def ask_running_instance(data_dir: Path) -> bool:
    """True if another instance owns this data dir (it has been asked to raise its window)."""
    socket = QLocalSocket()
    socket.connectToServer(socket_name(data_dir))
    if not socket.waitForConnected(CONNECT_MS):
        return False
    socket.write(RAISE)
    socket.waitForBytesWritten(CONNECT_MS)
    socket.disconnectFromServer()
    return True


class InstanceServer(QObject):
    """Listens for later launches; `raise_requested` when one arrives."""

    raise_requested = Signal()

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        name = socket_name(data_dir)
        if not self._server.listen(name):
            QLocalServer.removeServer(name)  # left behind by a crashed instance
            if not self._server.listen(name):
                log.warning("single-instance socket unavailable: %s", self._server.errorString())
        self._server.newConnection.connect(self._connected)

    def _connected(self) -> None:
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._read(s))

    def _read(self, socket: QLocalSocket) -> None:
        if bytes(socket.readAll().data()).startswith(RAISE.strip()):
            log.info("another launch asked this window to come forward")
            self.raise_requested.emit()
        socket.disconnectFromServer()
