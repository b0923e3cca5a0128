"""One app per profile: a second launch asks the first to show its window, and leaves.

The first instance listens on a local server named after the user and the profile's
folder; a launch that reaches it sends one line and exits. This check happens once,
before any window, so its short blocking connect (a local socket: at once either way)
holds nothing up.
"""

from __future__ import annotations

import getpass
import hashlib
import os

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

RAISE = b"show\n"
CONNECT_MS = 1000


def server_name(home: str) -> str:
    key = hashlib.sha256(os.path.realpath(home).encode("utf-8", "surrogateescape")).hexdigest()
    return f"p2pbackup-gui-{getpass.getuser()}-{key[:16]}"


class SingleInstance(QObject):
    """``claim()``: True when this is the first app of the profile (it then listens and
    emits ``activated`` when another launch asks); False when one already runs (it has
    been asked to show itself)."""

    activated = Signal()

    def __init__(self, home: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = server_name(home)
        self._server: QLocalServer | None = None

    def claim(self) -> bool:
        if self._tell_first():
            return False
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            # A dead instance's socket file, or another launch won the race just now.
            if self._tell_first():
                return False
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                return True  # no single-instance guard, but the app still works
        server.newConnection.connect(self._connection)
        self._server = server
        return True

    def _tell_first(self) -> bool:
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(CONNECT_MS):
            return False
        sock.write(RAISE)
        sock.waitForBytesWritten(CONNECT_MS)
        sock.disconnectFromServer()
        return True

    def _connection(self) -> None:
        while self._server is not None and (sock := self._server.nextPendingConnection()):
            # The server owns each socket (a few bytes per launch); deleting them here
            # as well crashed PySide in a later test (a double delete).
            sock.readyRead.connect(self._read)

    def _read(self) -> None:
        sock = self.sender()
        if isinstance(sock, QLocalSocket) and RAISE.strip() in bytes(sock.readAll().data()):
            self.activated.emit()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
