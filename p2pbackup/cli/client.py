"""The daemon's control socket from the command line, without an event loop.

A command the daemon answers (``status``, ``friends``, ``ls``...) should be
back before a person notices. Python starts in about 40 ms; trio takes longer
than that to import, and the daemon answers ``status`` in a few milliseconds.
So the command line speaks the control protocol (``daemon/wire.py``) through
a plain blocking socket, and imports trio only when no daemon runs and it
must run a node itself (docs/decisions.md, "The command line talks to the
daemon without an event loop").
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from p2pbackup import errors
from p2pbackup.daemon import endpoint, wire

if TYPE_CHECKING:  # imported at the first event: 30 dataclasses cost ~15 ms to create
    from p2pbackup.engine import events as ev

RECEIVE = 65536


class NoDaemon(Exception):
    """Nobody listens on the profile's control socket."""


def _open(home: str, job: str, params: dict, timeout: float | None) -> socket.socket:
    connected = endpoint.connect_blocking(endpoint.address(home))
    if connected is None:
        raise NoDaemon
    sock, token = connected
    sock.settimeout(timeout)
    request = {"v": wire.VERSION, **({} if token is None else {"token": token}), "job": job,
               "params": params}  # fmt: skip
    sock.sendall(wire.encode(request))
    return sock


def _messages(sock: socket.socket) -> Iterator[dict]:
    """Each JSON line the daemon sends, until it hangs up."""
    buffer = b""
    while True:
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if len(line) > wire.MAX_LINE:
                raise errors.FormatError("The daemon sent a control message longer than 1 MiB.")
            yield json.loads(line)
        if len(buffer) > wire.MAX_LINE:
            raise errors.FormatError("The daemon sent a control message longer than 1 MiB.")
        data = sock.recv(RECEIVE)
        if not data:
            return
        buffer += data


def call(
    home: str, job: str, params: dict, on_event: ev.EventSink | None = None,
    on_job: Callable[[dict], None] | None = None, timeout: float | None = None,
) -> Any:  # fmt: skip
    """Run ``job`` in the daemon of the profile in ``home``; NoDaemon when none runs.
    ``on_job`` hears the job as the daemon took it (its id), before any event;
    ``timeout``: seconds without a word from the daemon before TimeoutError (None: wait)."""
    with _open(home, job, params, timeout) as sock:
        for message in _messages(sock):
            if (result := wire.answer(message, on_event, on_job)) is not wire.NOT_YET:
                return result
    raise errors.PeerError("The daemon closed the connection before answering; see its log.")


def watch(home: str, on_message: Callable[[dict], None]) -> None:
    """Every message of the daemon's ``watch``, as sent, until interrupted or it stops."""
    with _open(home, "watch", {}, None) as sock:
        for message in _messages(sock):
            if "error" in message:
                wire.raise_error(message)
            on_message(message)
    raise errors.PeerError("The daemon stopped; 'p2pbackup watch' ends with it.")


Ask = Callable[[str, dict], Awaitable[Any]]


def run_with(home: str, on_event: ev.EventSink, work: Callable[[Ask], Coroutine]) -> Any:
    """What ``work`` returns, each job it asks for answered by the daemon. ``work`` is a
    coroutine only so the same code also runs under trio with a node of its own; here each
    ask is a blocking call and never suspends, so no event loop is needed to drive it."""

    async def _ask(job: str, params: dict) -> Any:
        return call(home, job, params, on_event)

    coroutine = work(_ask)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a listing waited on something other than the daemon")
