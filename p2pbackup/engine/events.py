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
    stored: str  # "full", "delta", "packed", "known", "empty"


@dataclass(frozen=True)
class FilesUnchanged:
    """Files the scan found as the last backup left them (size, mtime, inode), counted
    together: an event per file cost a home folder 100,000 of them for nothing new."""

    files: int
    size: int


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


@dataclass(frozen=True)
class HeadRolledBack:
    """A friend holds an older head than it held or accepted before: its pool was restored
    from an old copy (or wiped: ``seen`` 0). What it lost since is stored again."""

    friend: str
    seen: int  # the sequence number it holds now (0: no head at all)
    known: int  # the highest this device saw it hold or accept


@dataclass(frozen=True)
class RecordsMissing:
    """Records local state called stored that fewer than k shares of are held by friends:
    local state forgets them, so the files that used them are stored again."""

    records: int


@dataclass(frozen=True)
class SnapshotDamaged:
    """A snapshot's manifest cannot be read back; the others are listed and restore."""

    snapshot_id: bytes
    reason: str


@dataclass(frozen=True)
class InviteReady:
    """An invite code is waiting for the friend; tell it to the user now."""

    code: str
    addresses: tuple[str, ...] = ()  # where the joiner can dial this node, /p2p/ included
    rendezvous: str = ""  # the rendezvous point the code is registered at, if any


@dataclass(frozen=True)
class Progress:
    """A job's progress: ``done`` of ``total`` units (files, records...), with a word."""

    what: str
    done: int
    total: int


@dataclass(frozen=True)
class FriendOnline:
    """A friend's node answers (again): jobs use it from now on."""

    name: str
    owner_id: bytes
    path: str | None  # "direct" or "relay"
    rtt_ms: float | None


@dataclass(frozen=True)
class FriendOffline:
    """A friend's node stopped answering (a laptop asleep, a node stopped)."""

    name: str
    owner_id: bytes
    last_seen: str | None  # ISO time it last answered; None: never


@dataclass(frozen=True)
class FriendUsage:
    """What a friend stores for me changed, or my quota there: ``stored`` of ``quota``."""

    name: str
    owner_id: bytes
    stored: int
    quota: int


@dataclass(frozen=True)
class ScanProgress:
    """A backup's scan so far, cumulative (one per scan batch, before its files are sent;
    the last batch's has ``done``): every regular file seen, and those it must store."""

    files: int
    bytes: int
    changed_files: int
    changed_bytes: int
    done: bool


@dataclass(frozen=True)
class RestoreProgress:
    """A restore so far, cumulative: files and bytes written of those chosen."""

    files: int
    bytes: int
    files_total: int
    bytes_total: int


@dataclass(frozen=True)
class JobQueued:
    """The daemon took a job; ``source`` is "client", "schedule" or "daemon"."""

    job: int
    name: str
    source: str


@dataclass(frozen=True)
class JobStarted:
    job: int
    name: str


@dataclass(frozen=True)
class JobProgress:
    """What a window draws for a running job (the daemon sends one at most every half
    second). Backup: ``scanned_*`` so far, ``total_*`` to send, ``done_*`` sent; restore:
    ``total_*`` chosen, ``done_*`` written. ``seconds_left`` is None until it can be told."""

    job: int
    phase: str  # "scanning", "sending", "restoring", or the word of a Progress event
    scanned_files: int = 0
    scanned_bytes: int = 0
    total_files: int = 0
    total_bytes: int = 0
    done_files: int = 0
    done_bytes: int = 0
    seconds_left: float | None = None


@dataclass(frozen=True)
class JobFinished:
    """``state`` is "finished", "failed" or "cancelled"; ``error`` the failure's message."""

    job: int
    name: str
    state: str
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class EventsDropped:
    """A slow reader of the control socket missed ``count`` events (the oldest)."""

    count: int


@dataclass(frozen=True)
class SettingsChanged:
    """A setting changed through a settings job (daemon/settings.py): a window showing it
    reads it again. ``setting`` names what: folders, excludes, schedule, bandwidth, quota,
    friends."""

    setting: str


@dataclass(frozen=True)
class RendezvousChanged:
    """The daemon's standing at its rendezvous point changed: registered there (friends
    find its addresses), holding a relay slot (friends behind NAT reach it); ``error``
    says why not, "" when both hold."""

    registered: bool
    reserved: bool
    error: str = ""


@dataclass(frozen=True)
class AuditDone:
    """One friend audited: ``proved`` shares answered a fresh challenge (or were read in
    full and matched), ``missing`` and ``damaged`` did not."""

    name: str
    owner_id: bytes
    proved: int
    missing: int
    damaged: int


@dataclass(frozen=True)
class RepairDone:
    """Upkeep stored ``shares`` shares again (rebuilt from k good ones, or re-placed off a
    friend gone too long or out of room), for ``records`` records; ``why`` in a few words."""

    records: int
    shares: int
    why: str


@dataclass(frozen=True)
class SafetyChanged:
    """How many friends the latest snapshot survives losing changed, and why ("repair",
    "friend unseen", "friend back"); ``promised`` is what the settings ask for."""

    survives_losing: int
    promised: int
    why: str


@dataclass(frozen=True)
class FriendUnseen:
    """A friend has not answered for ``days`` days (sent once a day while it lasts)."""

    name: str
    owner_id: bytes
    days: float
    last_seen: str | None


@dataclass(frozen=True)
class QuotaNearlyFull:
    """A quota is nearly used up, ``used`` of ``quota`` bytes: the space friend ``name``
    gives me (``whose`` = "theirs"), or the space I give them (``whose`` = "mine")."""

    name: str
    owner_id: bytes
    whose: str
    used: int
    quota: int


@dataclass(frozen=True)
class UpkeepNeeds:
    """Upkeep cannot do something by itself; ``advice`` says what the person can do
    ("invite another friend, or ask bob for 2 GiB more")."""

    problem: str
    advice: str


Event = (
    FileSkipped
    | FileDone
    | FilesUnchanged
    | RecordStored
    | FriendTrouble
    | ShareRejected
    | HeadRolledBack
    | RecordsMissing
    | SnapshotDamaged
    | InviteReady
    | Progress
    | FriendOnline
    | FriendOffline
    | FriendUsage
    | ScanProgress
    | RestoreProgress
    | JobQueued
    | JobStarted
    | JobProgress
    | JobFinished
    | EventsDropped
    | SettingsChanged
    | RendezvousChanged
    | AuditDone
    | RepairDone
    | SafetyChanged
    | FriendUnseen
    | QuotaNearlyFull
    | UpkeepNeeds
)
_KINDS = {cls.__name__: cls for cls in Event.__args__}


def to_dict(event: Event) -> dict:
    """An event as JSON values (bytes as hex), for the control socket."""
    out: dict = {"type": type(event).__name__}
    for name, value in vars(event).items():
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def from_dict(data: dict) -> Event | None:
    """The event sent by ``to_dict``; None for a kind this version does not know."""
    cls = _KINDS.get(data.get("type", ""))
    if cls is None:
        return None
    fields = {k: v for k, v in data.items() if k != "type"}
    for name, annotation in cls.__annotations__.items():
        if annotation == "bytes" and isinstance(fields.get(name), str):
            fields[name] = bytes.fromhex(fields[name])
        elif annotation.startswith("tuple") and isinstance(fields.get(name), list):
            fields[name] = tuple(fields[name])
    try:
        return cls(**fields)
    except TypeError:
        return None


EventSink = Callable[[Event], None]


def ignore(event: Event) -> None:
    """A sink for callers that only want the result."""
