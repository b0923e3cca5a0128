"""The control protocol's version, line limit, encoding and error lines (docs/format.md,
"Control socket"): for the daemon and for clients without an event loop (no trio here)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from p2pbackup import errors

if TYPE_CHECKING:  # imported at the first event: a quick command may hear none
    from p2pbackup.engine import events as ev

NOT_YET = object()  # ``answer``: the message was not the job's answer

VERSION = 2
MAX_LINE = 1 << 20
OLD_DAEMON = (
    f"The daemon running on this profile speaks control protocol 1, and this p2pbackup "
    f"speaks {VERSION}: stop the daemon and start it again with this version."
)


def encode(message: dict) -> bytes:
    # ASCII: a file name that is not UTF-8 (a lone surrogate, "\udcff") goes as an escape
    # that Python's json reads back exactly; .encode() of it raw would fail.
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def raise_error(message: dict) -> NoReturn:
    """The daemon's ``{"v": 2, "error": ...}`` as the exception of its kind (its message is
    for the user). An error without ``"v"`` is a version-1 daemon refusing this client."""
    if message.get("v") != VERSION:
        raise errors.ConfigError(OLD_DAEMON)
    error = message["error"] if isinstance(message.get("error"), dict) else {}
    cls = getattr(errors, str(error.get("kind")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.P2PBackupError)):
        cls = errors.P2PBackupError
    raise cls(str(error.get("message", "The daemon failed.")))


def answer(
    message: dict, on_event: ev.EventSink | None, on_job: Callable[[dict], None] | None
) -> Any:
    """One message of a job's reply, for either client: an event goes to ``on_event``, the
    job's summary to ``on_job``, an error is raised; the result is returned, and NOT_YET
    for anything else."""
    if "event" in message:
        if on_event is not None:
            from p2pbackup.engine import events as ev

            event = ev.from_dict(message["event"])
            if event is not None:
                on_event(event)
    elif "error" in message:
        raise_error(message)
    elif "result" in message:
        return message["result"]
    elif "job" in message and on_job is not None:
        on_job(message["job"])
    return NOT_YET
