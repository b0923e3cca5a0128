"""What the engine reports while it works.

The engine never prints and knows no Qt: it hands events to a sink the caller
chooses (the CLI prints them, the daemon forwards them, gui/bridge.py turns
them into Qt signals). A file that cannot be read is an event, not an
exception: the backup goes on and the report lists it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class FileSkipped:
    """A file vanished or could not be read during the scan."""

    path: str
    reason: str


@dataclass(frozen=True)
class FileDone:
    path: str
    size: int
    stored: str  # "unchanged", "full", "delta", "packed", "known"


@dataclass(frozen=True)
class RecordStored:
    record_id: bytes
    size: int
    friends: tuple[str, ...]


@dataclass(frozen=True)
class FriendTrouble:
    """A friend refused or failed; placement moved on."""

    friend: str
    reason: str


@dataclass(frozen=True)
class ShareRejected:
    """A friend returned a share that failed its hash; another one was fetched."""

    friend: str
    record_id: bytes
    index: int


Event = FileSkipped | FileDone | RecordStored | FriendTrouble | ShareRejected
EventSink = Callable[[Event], None]


def ignore(event: Event) -> None:
    """A sink for callers that only want the result."""
