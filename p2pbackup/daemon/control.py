"""The daemon's control socket: how the CLI (and the tray app) ask it to run jobs.

A Unix socket, ``control.sock`` in the profile (the folder is 0700 and the
socket 0600: only the user gets in); where there is none, 127.0.0.1 with a
token (``endpoint.py``). One request per connection, as JSON lines, version 1
(docs/format.md, "Control socket"):

    client: {"v": 1, "token": "...", "job": "backup", "params": {...}}   token: tcp only
    daemon: {"event": {...}}    zero or more, while the job runs
    daemon: {"result": ...}  or  {"error": {"message", "kind", "exit_code"}}
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import logging.handlers
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from p2pbackup import errors
from p2pbackup.daemon.endpoint import Address, address, connect, listening
from p2pbackup.engine import events as ev
from p2pbackup.engine.failures import leaves
from p2pbackup.storage.diskerrors import first_storage_error

__all__ = ["Address", "NoDaemon", "address", "call", "serve"]

log = logging.getLogger(__name__)

VERSION = 1
MAX_LINE = 1 << 20
REQUEST_DEADLINE = 30  # seconds for a client to send its one request line
REFUSED = (
    "The daemon refused the request: its control token is missing or wrong. Run the command "
    "again; if this goes on, another program answers on the port named in control.json."
)

Handler = Callable[[str, dict, ev.EventSink], Awaitable[Any]]


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
        self._buffer = bytearray(rest)
        return line


def _encode(message: dict) -> bytes:
    # ASCII: a file name that is not UTF-8 (a lone surrogate, "\udcff") goes as an escape
    # that Python's json reads back exactly; .encode() of it raw would fail.
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


async def serve(where: Address, handler: Handler, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve requests at ``where`` until cancelled. The caller holds the profile lock."""
    async with listening(where) as (listener, token):
        task_status.started()
        await trio.serve_listeners(lambda stream: _connection(stream, handler, token), [listener])


async def _connection(stream: trio.SocketStream, handler: Handler, token: str | None) -> None:
    send_events, receive_events = trio.open_memory_channel[dict](math.inf)

    async def _forward() -> None:
        # A client that went away (Ctrl-C) does not stop the job: the daemon finishes it.
        async for message in receive_events:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(_encode(message))

    def _sink(event: ev.Event) -> None:
        send_events.send_nowait({"event": ev.to_dict(event)})

    async with stream, trio.open_nursery() as nursery:
        nursery.start_soon(_forward)
        async with send_events:
            send_events.send_nowait(await _answer(stream, handler, _sink, token))


def _authorized(request: object, token: str | None) -> bool:
    if token is None:  # the Unix socket: its file mode is the guard, a token field is ignored
        return True
    given = request.get("token") if isinstance(request, dict) else None
    return isinstance(given, str) and hmac.compare_digest(
        given.encode("utf-8", "replace"), token.encode()
    )


async def _answer(
    stream: trio.SocketStream, handler: Handler, sink: ev.EventSink, token: str | None
) -> dict:
    try:
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
        if not isinstance(request, dict) or request.get("v") != VERSION:
            raise errors.FormatError(f"Send one JSON request of version {VERSION} per line.")
        job, params = request.get("job"), request.get("params", {})
        if not isinstance(job, str) or not isinstance(params, dict):
            raise errors.FormatError("A request names a job and gives a dict of parameters.")
        log.info("control: %s", job)
        return {"result": await handler(job, params, sink)}
    except errors.P2PBackupError as exc:
        return {"error": _error(exc)}
    except Exception as exc:  # a bug must not take the daemon down; the log says where
        log.exception("control request failed")
        # The disk's refusal is the user's to act on; anything else is a bug, told as one.
        disk = first_storage_error(leaves(exc))
        return {"error": _error(disk or errors.InternalError.see_log(_log_file()))}


def _log_file() -> str | None:
    """Where this process logs (the profile's log file), to name in an internal error."""
    for handler in reversed(logging.getLogger().handlers):
        if isinstance(handler, logging.handlers.RotatingFileHandler):  # cli/logs.py's
            return handler.baseFilename
    return None


def _error(exc: errors.P2PBackupError) -> dict:
    return {"message": exc.message, "kind": type(exc).__name__, "exit_code": exc.exit_code}


def _raise(error: dict) -> None:
    cls = getattr(errors, str(error.get("kind")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.P2PBackupError)):
        cls = errors.P2PBackupError
    raise cls(str(error.get("message", "The daemon failed.")))


async def call(where: Address, job: str, params: dict, on_event: ev.EventSink) -> Any:
    """Run ``job`` in the daemon listening at ``where``; NoDaemon when there is none."""
    connected = await connect(where)
    if connected is None:
        raise NoDaemon
    stream, token = connected
    request = {"v": VERSION, **({} if token is None else {"token": token}), "job": job,
               "params": params}  # fmt: skip
    async with stream:
        await stream.send_all(_encode(request))
        lines = _Lines(stream)
        while (line := await lines.next()) is not None:
            message = json.loads(line)
            if "event" in message:
                event = ev.from_dict(message["event"])
                if event is not None:
                    on_event(event)
            elif "error" in message:
                _raise(message["error"])
            else:
                return message.get("result")
    raise errors.PeerError("The daemon closed the connection before answering; see its log.")
