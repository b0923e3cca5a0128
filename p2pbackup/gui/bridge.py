"""The daemon's control socket as Qt signals: the only place where protocol messages
become signals (docs/gui.md).

Qt's own non-blocking sockets on the GUI thread, with no worker thread and no trio:
the daemon answers a window's questions in milliseconds, and a long job only sends
lines now and then, so the event loop never waits (docs/format.md, "Control socket").

    Request   one JSON request line on a connection of its own, then the daemon's
              lines: ``event`` per event, ``result`` or ``failed`` once, and always
              ``finished`` last. ``no_daemon`` when nobody listens, ``lost`` when the
              connection closed before an answer (the daemon died under it).
    Watch     a ``watch`` request kept open, reconnected with backoff, whose ``state``
              tells whether the daemon runs. A daemon that has no ``watch`` job (an older
              one answers it with an error) is watched by connecting now and then instead.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QAbstractSocket, QLocalSocket, QTcpSocket

from p2pbackup import errors
from p2pbackup.daemon import endpoint
from p2pbackup.daemon.wire import MAX_LINE, VERSION

BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)  # seconds before each reconnect; the last one repeats
PROBE_EVERY = 2.0  # seconds between liveness probes of a daemon without ``watch``


@dataclass(frozen=True)
class _Target:
    """Where to connect: a local socket path, or a loopback port and its token."""

    path: str = ""
    port: int = 0
    token: str | None = None


def _target(home: str) -> _Target | None:
    """None when no daemon can be listening (tcp: no fresh control.json)."""
    where = endpoint.address(home)
    if not where.tcp:
        return _Target(path=where.path)
    if (found := endpoint.port_of(where)) is None:
        return None
    return _Target(port=found[0], token=found[1])


def error_of(error: dict) -> errors.P2PBackupError:
    """The daemon's ``{"message", "kind", "exit_code"}`` as the exception of its kind, so a
    window decides by class (``isinstance(e, errors.PairingError)``), never by its words."""
    cls = getattr(errors, str(error.get("kind")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.P2PBackupError)):
        cls = errors.P2PBackupError
    return cls(str(error.get("message") or "The backup service failed; see its log."))


class Request(QObject):
    """One job asked of the daemon of the profile in ``home``. Call ``start``; the object
    deletes itself after ``finished`` unless ``keep`` is set."""

    event = Signal(dict, object)  # the event as JSON, and its job id (None: not said)
    message = Signal(dict)  # any other line (``{"watching": ...}``, ``{"job": summary}``)
    result = Signal(object)
    failed = Signal(object)  # a P2PBackupError of the daemon's kind
    no_daemon = Signal()  # nobody listens
    lost = Signal()  # the connection closed before the answer
    finished = Signal()  # always, once, last

    def __init__(
        self, home: str, job: str, params: dict | None = None, parent: QObject | None = None,
        *, keep: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.home, self.job, self.params = home, job, dict(params or {})
        self.answered = False
        self.done = False
        self._keep = keep
        self._socket: QLocalSocket | QTcpSocket | None = None
        self._buffer = bytearray()
        self._token: str | None = None
        self._connected = False

    def start(self) -> Request:
        target = _target(self.home)
        if target is None:
            QTimer.singleShot(0, self, lambda: self._end(self.no_daemon))  # signals come later
            return self
        self._token = target.token
        if target.path:
            sock: QLocalSocket | QTcpSocket = QLocalSocket(self)
            sock.errorOccurred.connect(self._local_error)
        else:
            sock = QTcpSocket(self)
            sock.errorOccurred.connect(self._tcp_error)
        self._socket = sock
        sock.connected.connect(self._send)
        sock.readyRead.connect(self._read)
        sock.disconnected.connect(self._closed)
        if target.path:
            sock.connectToServer(target.path)
        else:
            sock.connectToHost(endpoint.LOOPBACK, target.port)
        return self

    def abort(self) -> None:
        """Hang up (a watch ends; a job goes on in the daemon: ``cancel`` stops one)."""
        if not self.done:
            self.answered = True  # our own hang-up is no loss
            self._end(None)

    def _send(self) -> None:
        self._connected = True
        request: dict[str, Any] = {"v": VERSION}
        if self._token is not None:
            request["token"] = self._token
        request.update(job=self.job, params=self.params)
        line = json.dumps(request, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
        self._socket.write(line)

    def _read(self) -> None:
        if self._socket is None:
            return
        self._buffer += bytes(self._socket.readAll().data())
        while not self.done and (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._line(line)
        if not self.done and len(self._buffer) > MAX_LINE:
            self._fail(errors.FormatError("The backup service sent a message over 1 MiB."))

    def _line(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            self._fail(errors.FormatError("The backup service sent a line that is not JSON."))
            return
        if not isinstance(message, dict):
            self._fail(errors.FormatError("The backup service sent a line that is not an object."))
        elif isinstance(message.get("event"), dict):
            self.event.emit(message["event"], message.get("job"))
        elif "error" in message:
            error = message["error"]
            self._fail(error_of(error if isinstance(error, dict) else {}))
        elif "result" in message:
            self.answered = True
            self.result.emit(message["result"])
            self._end(None)
        else:
            self.message.emit(message)

    def _fail(self, exc: errors.P2PBackupError) -> None:
        self.answered = True
        self.failed.emit(exc)
        self._end(None)

    def _local_error(self, error: QLocalSocket.LocalSocketError) -> None:
        if not self._connected and error != QLocalSocket.LocalSocketError.PeerClosedError:
            self._end(self.no_daemon)  # no socket file, or refused: nobody listens
        else:
            self._closed()

    def _tcp_error(self, error: QAbstractSocket.SocketError) -> None:
        if not self._connected:
            self._end(self.no_daemon)
        else:
            self._closed()

    def _closed(self) -> None:
        if self._socket is not None and self._socket.bytesAvailable():
            self._read()
        if not self.done:
            self._end(None if self.answered else self.lost)

    def _end(self, signal: Any) -> None:
        if self.done:
            return
        self.done = True
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.blockSignals(True)  # its own error and disconnect are ours, already told
            sock.abort()
            sock.deleteLater()
        if signal is not None:
            signal.emit()
        self.finished.emit()
        if not self._keep:
            self.deleteLater()


class DaemonState(enum.Enum):
    CONNECTING = "connecting"  # not known yet
    RUNNING = "running"
    NOT_RUNNING = "not running"


class Watch(QObject):
    """Whether the profile's daemon runs, and (where it has ``watch``) its every event.
    Reconnects with backoff after it goes away, for as long as the watch is started."""

    event = Signal(dict, object)  # as Request.event
    watching = Signal(dict)  # the daemon's first answer: {"jobs": [running job summaries]}
    state_changed = Signal(object)  # DaemonState

    def __init__(self, home: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.state = DaemonState.CONNECTING
        self.has_watch = True  # until the daemon says it does not know the job
        self._request: Request | None = None
        self._prober: Probe | None = None
        self._attempt = 0
        self._running = False
        self._retry = QTimer(self, singleShot=True, timeout=self._connect)
        self._probe = QTimer(self, interval=int(PROBE_EVERY * 1000), timeout=self._send_probe)

    def start(self) -> None:
        self._running = True
        self._connect()

    def stop(self) -> None:
        self._running = False
        self._retry.stop()
        self._probe.stop()
        if self._request is not None:
            self._request.abort()

    def reset(self) -> None:
        """A daemon is being started: forget the one known, so the next answer is news
        (a daemon probed every 2 s may die and be replaced between two probes)."""
        if not self._running:
            return
        self._probe.stop()
        self.has_watch = True
        if self._request is not None:
            self._request.abort()  # its end schedules the next attempt
        elif not self._retry.isActive():
            self._retry.start(int(BACKOFF[0] * 1000))
        self._set(DaemonState.NOT_RUNNING)

    def retry_now(self) -> None:
        """Connect now rather than after the backoff (a daemon was just started)."""
        if self._running and self._request is None:
            self._retry.stop()
            self._attempt = 0
            self._connect()

    def _connect(self) -> None:
        if not self._running or self._request is not None:
            return
        self._request = request = Request(self.home, "watch", parent=self)
        request.message.connect(self._message)
        request.event.connect(self.event)
        request.failed.connect(self._refused)
        request.finished.connect(self._ended)
        request.start()

    def _message(self, message: dict) -> None:
        if isinstance(message.get("watching"), dict):
            self._set(DaemonState.RUNNING)
            self.watching.emit(message["watching"])

    def _refused(self, exc: errors.P2PBackupError) -> None:
        if isinstance(exc, errors.ConfigError | errors.FormatError):
            # An older daemon, without the job: it runs, and is probed from now on.
            self.has_watch = False
            self._set(DaemonState.RUNNING)

    def _ended(self) -> None:
        request, self._request = self._request, None
        if not self._running:
            return
        if not self.has_watch and request is not None and request.answered:
            self._attempt = 0
            self._probe.start()
            return
        self._probe.stop()
        self._set(DaemonState.NOT_RUNNING)
        delay = BACKOFF[min(self._attempt, len(BACKOFF) - 1)]
        self._attempt += 1
        self._retry.start(int(delay * 1000))

    def _send_probe(self) -> None:
        if self._request is None and self._prober is None:
            self._prober = Probe(self.home, self)
            self._prober.answered.connect(self._probed)
            self._prober.start()

    def _probed(self, alive: bool) -> None:
        self._prober = None
        if not self._running or alive:
            return
        self._probe.stop()
        self.has_watch = True  # a daemon started again may be a newer one
        self._set(DaemonState.NOT_RUNNING)
        self._retry.start(int(BACKOFF[0] * 1000))

    def _set(self, state: DaemonState) -> None:
        if state is not self.state:
            self.state = state
            self.state_changed.emit(state)
        if state is DaemonState.RUNNING:
            self._attempt = 0


class Probe(QObject):
    """Whether someone listens on the control socket: connect and hang up at once, sending
    nothing (the daemon drops a connection that never sent a request)."""

    answered = Signal(bool)

    def __init__(self, home: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self._socket: QLocalSocket | QTcpSocket | None = None

    def start(self) -> None:
        target = _target(self.home)
        if target is None:
            QTimer.singleShot(0, self, lambda: self._done(False))
            return
        sock = self._socket = QLocalSocket(self) if target.path else QTcpSocket(self)
        # Connected first: a local socket may connect within connectToServer.
        sock.connected.connect(lambda: self._done(True))
        sock.errorOccurred.connect(lambda _error: self._done(False))
        if target.path:
            sock.connectToServer(target.path)
        else:
            sock.connectToHost(endpoint.LOOPBACK, target.port)

    def _done(self, alive: bool) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.blockSignals(True)
            sock.abort()
            sock.deleteLater()
        self.answered.emit(alive)
        self.deleteLater()
