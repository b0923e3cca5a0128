"""Where a profile's daemon answers control requests, and how a client gets there.

Two transports, chosen by ``P2PBACKUP_CONTROL`` (docs/format.md, "Control socket"):

    unix  control.sock in the profile (the folder is 0700, the socket 0600); no token.
    tcp   127.0.0.1, on a port the system picks, named with a fresh token in control.json
          (0600, written atomically): {"v": 1, "port": 50123, "token": "<64 hex digits>"}.
          Every request carries the token; the daemon refuses one without it.

Unset or ``unix`` means unix where the platform has AF_UNIX and tcp where it has not
(Windows); ``tcp`` forces tcp anywhere, which is how the tests run it on Linux.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2pbackup.errors import ConfigError
from p2pbackup.storage.profile import Profile, write_private

ENV = "P2PBACKUP_CONTROL"
SOCKET_NAME = "control.sock"
FILE_NAME = "control.json"
FILE_VERSION = 1
LOOPBACK = "127.0.0.1"

if TYPE_CHECKING:
    import trio


@dataclass(frozen=True)
class Address:
    """The socket to connect to, or (tcp) the file that names the port and the token."""

    path: str
    tcp: bool = False


def address(home: str) -> Address:
    """The control address of the profile in ``home``, for the daemon and its clients alike."""
    chosen = os.environ.get(ENV) or "unix"
    if chosen not in ("unix", "tcp"):
        raise ConfigError(f"{ENV} is {chosen!r}; set it to 'unix' or 'tcp', or leave it unset.")
    if chosen == "tcp" or not hasattr(socket, "AF_UNIX"):
        return Address(os.path.join(home, FILE_NAME), tcp=True)
    return Address(os.path.join(home, SOCKET_NAME))


@contextlib.asynccontextmanager
async def listening(where: Address) -> AsyncIterator[tuple[trio.SocketListener, str | None]]:
    """A listener at ``where`` and the token requests must carry (None: the socket's mode is
    the guard). The caller holds the profile lock, so a socket or file left there is a dead
    daemon's: it is replaced, and removed again on the way out."""
    import trio  # here: the command-line client imports this module and never needs trio

    _remove(where.path)
    sock, token = None, None
    try:
        if where.tcp:
            (listener,) = await trio.open_tcp_listeners(0, host=LOOPBACK)
            sock, token = listener.socket, os.urandom(32).hex()
            found = {"v": FILE_VERSION, "port": sock.getsockname()[1], "token": token}
            write_private(where.path, json.dumps(found).encode())
        else:
            sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            await sock.bind(where.path)
            os.chmod(where.path, 0o600)
            sock.listen(16)
            listener = trio.SocketListener(sock)
        yield listener, token
    finally:
        if sock is not None:
            sock.close()
        _remove(where.path)


async def connect(where: Address) -> tuple[trio.SocketStream, str | None] | None:
    """A stream to the daemon at ``where`` and the token to send; None when nobody listens
    there (no socket, no file or a file not ours to read, or a port nobody answers on)."""
    import trio

    if not where.tcp:
        try:
            return await trio.open_unix_socket(where.path), None
        except (FileNotFoundError, ConnectionRefusedError):
            return None
    if (found := port_of(where)) is None:
        return None
    port, token = found
    try:
        return await trio.open_tcp_stream(LOOPBACK, port), token
    except OSError:  # refused: the file is a dead daemon's
        return None


def connect_blocking(where: Address) -> tuple[socket.socket, str | None] | None:
    """``connect`` for a client without an event loop (the command line: trio alone takes
    longer to import than the daemon takes to answer)."""
    if where.tcp:
        if (found := port_of(where)) is None:
            return None
        target: object = (LOOPBACK, found[0])
        sock, token = socket.socket(socket.AF_INET, socket.SOCK_STREAM), found[1]
    else:
        target, token = where.path, None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(target)
    except OSError:  # no socket, or refused: nobody listens, the daemon is gone
        sock.close()
        return None
    return sock, token


def port_of(where: Address) -> tuple[int, str] | None:
    """The port and token a tcp daemon named in its control file, if that daemon runs."""
    found = _read(where.path)
    if found is None or _stale(os.path.dirname(where.path)):
        return None
    return found


def _stale(home: str) -> bool:
    """No node holds the profile's lock, so its control file is a dead daemon's, whoever
    listens on that port now: the system may have given the port to another program, or to
    another profile's daemon, which would refuse our token."""
    try:
        with Profile(home).lock():
            return True
    except ConfigError:
        return False


def _read(path: str) -> tuple[int, str] | None:
    try:
        with open(path, "rb") as f:
            found = json.loads(f.read(4096))
    except (OSError, ValueError):  # missing, unreadable, not JSON, not UTF-8
        return None
    if not isinstance(found, dict) or found.get("v") != FILE_VERSION:
        return None
    port, token = found.get("port"), found.get("token")
    if type(port) is not int or not 0 < port < 65536 or not isinstance(token, str):
        return None
    return port, token


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
