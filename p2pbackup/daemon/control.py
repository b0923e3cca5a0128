"""The daemon's control socket: how the CLI and the tray app talk to it.

A Unix socket, ``control.sock`` in the profile (the folder is 0700 and the
socket 0600: only the user gets in); where there is none, 127.0.0.1 with a
token (``endpoint.py``). JSON lines, one request per connection, version 2
(docs/format.md, "Control socket"); any number of connections at once:

    client: {"v": 2, "token": "...", "job": "backup", "params": {...}}   token: tcp only
    daemon: {"job": {"id": 7, "name": "backup", "state": "queued", ...}}  a job's id, first
    daemon: {"event": {...}, "job": 7}    zero or more, while the job runs
    daemon: {"result": ...}  or  {"v": 2, "error": {"message", "kind", "exit_code"}}

``watch`` streams every event of the daemon until the client hangs up; ``jobs``,
``cancel`` and ``status`` are answered at once. What a request means is the
handler's business (``Daemon.request``); this module only moves lines. Each
connection's messages go through a bounded ``Outbox`` (watch.py): a client that
does not read never holds the daemon back.
"""

from __future__ import annotations

import hmac
import json
import logging
import logging.handlers
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from p2pbackup import errors
from p2pbackup.daemon.endpoint import Address, address, connect, listening
from p2pbackup.daemon.watch import JOB_LIMIT, Outbox
from p2pbackup.daemon.wire import MAX_LINE, NOT_YET, VERSION, answer, raise_error
from p2pbackup.daemon.wire import encode as _encode
from p2pbackup.engine import events as ev
from p2pbackup.engine.failures import leaves
from p2pbackup.storage.diskerrors import first_storage_error

__all__ = ["MAX_LINE", "VERSION", "Address", "NoDaemon", "address", "call", "serve", "watch"]

log = logging.getLogger(__name__)

REQUEST_DEADLINE = 30  # seconds for a client to send its one request line
REFUSED = (
    "The daemon refused the request: its control token is missing or wrong. Run the command "
    "again; if this goes on, another program answers on the port named in control.json."
)

Handler = Callable[[str, dict, Outbox], Awaitable[Any]]


class NoDaemon(Exception):
    """Nobody listens on the profile's control socket."""


class _Lines:
    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def next(self) -> bytes | None:
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                raise errors.FormatError("A control message is longer than 1 MiB.")
            data = await self._stream.receive_some(65536)
            if not data:
                return None
            self._buffer += data
        line, _, rest = bytes(self._buffer).partition(b"\n")
        if len(line) > MAX_LINE:  # the newline came in the same read as the excess
            raise errors.FormatError("A control message is longer than 1 MiB.")
        self._buffer = bytearray(rest)
        return line


async def serve(where: Address, handler: Handler, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve requests at ``where`` until cancelled. The caller holds the profile lock."""
    async with listening(where) as (listener, token):
        task_status.started()
        await trio.serve_listeners(lambda stream: _connection(stream, handler, token), [listener])


async def _connection(stream: trio.SocketStream, handler: Handler, token: str | None) -> None:
    outbox = Outbox(JOB_LIMIT)
    async with stream, trio.open_nursery() as nursery:

        async def _serve() -> None:
            answer = await _answer(stream, handler, outbox, token, nursery)
            if answer is not None and not outbox.gone.is_set():
                outbox.put(answer)  # last in, so never the one dropped
            outbox.close()

        nursery.start_soon(_serve)
        await _forward(stream, outbox)
        nursery.cancel_scope.cancel()  # the task listening for the hang-up


async def _forward(stream: trio.SocketStream, outbox: Outbox) -> None:
    """Send what the outbox holds until it is closed and empty. A client that went away
    (Ctrl-C) does not stop its job: the daemon finishes it, and drops what it says."""
    while batch := await outbox.take():
        if outbox.gone.is_set():
            continue
        try:
            await stream.send_all(b"".join(_encode(message) for message in batch))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            outbox.gone.set()


async def _hang_up(stream: trio.SocketStream, outbox: Outbox) -> None:
    """Sets ``outbox.gone`` when the client closes its end (what it sends is ignored)."""
    try:
        while await stream.receive_some(65536):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    outbox.gone.set()


def _authorized(request: object, token: str | None) -> bool:
    if token is None:  # the Unix socket: its file mode is the guard, a token field is ignored
        return True
    given = request.get("token") if isinstance(request, dict) else None
    return isinstance(given, str) and hmac.compare_digest(
        given.encode("utf-8", "replace"), token.encode()
    )


async def _request(stream: trio.SocketStream, token: str | None) -> tuple[str, dict]:
    """The one request line, checked: its token first, then its version and shape."""
    try:
        with trio.fail_after(REQUEST_DEADLINE):  # a silent client must not hold a task
            line = await _Lines(stream).next()
    except trio.TooSlowError:
        raise errors.FormatError(f"No request came within {REQUEST_DEADLINE} s.") from None
    try:
        request = json.loads(line) if line else None
    except ValueError as exc:  # only here: a ValueError from a job is a bug, not bad JSON
        raise errors.FormatError(f"Not JSON: {exc}.") from None
    if not _authorized(request, token):  # first: nothing else is looked at before it
        log.warning("control: a request without the right token was refused")
        raise errors.ConfigError(REFUSED)
    if not isinstance(request, dict):
        raise errors.FormatError(
            f'Send one JSON object per line: {{"v": {VERSION}, "job": ..., "params": {{...}}}}.'
        )
    if request.get("v") != VERSION:
        raise errors.ConfigError(
            f"This daemon speaks control protocol {VERSION}, and the client speaks "
            f"{request.get('v')!r}: update p2pbackup (the client), or run the daemon of the "
            "same version."
        )
    job, params = request.get("job"), request.get("params", {})
    if not isinstance(job, str) or not isinstance(params, dict):
        raise errors.FormatError("A request names a job and gives a dict of parameters.")
    return job, params


async def _answer(
    stream: trio.SocketStream, handler: Handler, outbox: Outbox, token: str | None,
    nursery: trio.Nursery,
) -> dict | None:  # fmt: skip
    try:
        job, params = await _request(stream, token)
        nursery.start_soon(_hang_up, stream, outbox)
        log.info("control: %s", job)
        return {"result": await handler(job, params, outbox)}
    except errors.P2PBackupError as exc:
        return {"v": VERSION, "error": _error(exc)}
    except Exception as exc:  # a bug must not take the daemon down; the log says where
        log.exception("control request failed")
        # The disk's refusal is the user's to act on; anything else is a bug, told as one.
        disk = first_storage_error(leaves(exc))
        return {"v": VERSION, "error": _error(disk or errors.InternalError.see_log(_log_file()))}


def _log_file() -> str | None:
    """Where this process logs (the profile's log file), to name in an internal error."""
    for handler in reversed(logging.getLogger().handlers):
        if isinstance(handler, logging.handlers.RotatingFileHandler):  # cli/logs.py's
            return handler.baseFilename
    return None


def _error(exc: errors.P2PBackupError) -> dict:
    return {"message": exc.message, "kind": type(exc).__name__, "exit_code": exc.exit_code}


async def _open(where: Address, job: str, params: dict) -> tuple[trio.SocketStream, _Lines]:
    connected = await connect(where)
    if connected is None:
        raise NoDaemon
    stream, token = connected
    request = {"v": VERSION, **({} if token is None else {"token": token}), "job": job,
               "params": params}  # fmt: skip
    await stream.send_all(_encode(request))
    return stream, _Lines(stream)


async def call(
    where: Address, job: str, params: dict, on_event: ev.EventSink,
    on_job: Callable[[dict], None] | None = None,
) -> Any:  # fmt: skip
    """Run ``job`` in the daemon listening at ``where``; NoDaemon when there is none.
    ``on_job`` hears the job as the daemon took it (its id), before any event."""
    stream, lines = await _open(where, job, params)
    async with stream:
        while (line := await lines.next()) is not None:
            if (result := answer(json.loads(line), on_event, on_job)) is not NOT_YET:
                return result
    raise errors.PeerError("The daemon closed the connection before answering; see its log.")


async def watch(where: Address, on_message: Callable[[dict], None]) -> None:
    """Every message of the daemon's ``watch``, as sent, until cancelled or it stops."""
    stream, lines = await _open(where, "watch", {})
    async with stream:
        while (line := await lines.next()) is not None:
            message = json.loads(line)
            if "error" in message:
                raise_error(message)
            on_message(message)
    raise errors.PeerError("The daemon stopped; 'p2pbackup watch' ends with it.")
