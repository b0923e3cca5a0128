"""A session: a running node with its friends connected and the backup state open.

Every job (backup, restore, snapshots, verify, forget...) runs in one. The
snapshot list is the merge of every reachable friend's head with the head
this device last published; manifests are cached locally (they never change).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

import trio

from p2pbackup.core import head as heads
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.manifest import Manifest
from p2pbackup.daemon.grid import (
    Grid,
    adopt_head_friends,
    connected,
    drop_removed_friends,
    friends_from_lan,
)
from p2pbackup.daemon.identity import device_name
from p2pbackup.daemon.node import Node
from p2pbackup.engine import events as ev
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import check_heads, read_head
from p2pbackup.engine.restore import load_manifest
from p2pbackup.engine.state import BackupState
from p2pbackup.errors import ConfigError, IntegrityError, PeerError
from p2pbackup.storage.statedb import StateDB

DEFAULT_K, DEFAULT_N = 2, 4


def ref_time(ref: heads.SnapshotRef) -> datetime:
    return datetime.fromtimestamp(ref.created_at_ns / 1e9).astimezone()


class _Named:
    """A snapshot's id and time, from the head's reference to it."""

    ref: heads.SnapshotRef

    @property
    def id(self) -> str:
        return self.ref.snapshot_id.hex()

    @property
    def time(self) -> datetime:
        return ref_time(self.ref)


@dataclass
class Snapshot(_Named):
    ref: heads.SnapshotRef
    manifest: Manifest

    @property
    def device(self) -> str:
        return self.manifest.device

    @property
    def group(self) -> tuple[str, bytes]:
        """What retention goes by, as restic's host and paths: the device and the set of
        folders it backed up (as the head's version 2 names them)."""
        return self.manifest.device, heads.folder_set_id(self.manifest.roots)

    def summary(self) -> dict:
        return {
            "id": self.id,
            "time": self.time.isoformat(timespec="seconds"),
            "files": self.manifest.file_count,
            "bytes": self.manifest.total_bytes,
            "device": self.manifest.device,
            "roots": list(self.manifest.roots),
        }


@dataclass
class Tip(_Named):
    """A snapshot as the head names it: enough to pick one, without its manifest."""

    ref: heads.SnapshotRef
    device: str


@dataclass
class Session:
    node: Node
    grid: Grid
    db: StateDB
    state: BackupState
    events: ev.EventSink
    workers: trio.CapacityLimiter
    # Friends holding an older head than they did: {friend key: (seen, known)}.
    rolled_back: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Snapshots whose manifest cannot be read: id -> (ref, why).
    damaged: dict[bytes, tuple[heads.SnapshotRef, str]] = field(default_factory=dict)

    @property
    def keys(self) -> OwnerKeys:
        return self.node.keys

    @property
    def device(self) -> str:
        """This device's name, as its snapshots carry it."""
        return device_name(self.node.profile)

    def settings(self) -> dict:
        return self.node.profile.settings()

    def fetcher(self) -> Fetcher:
        away = [self.grid.name(key) for key in self.grid.friends if key not in self.grid.usage]
        return Fetcher(self.keys, self.grid.online, self.events, self.workers, away)

    def require_friends(self, what: str) -> None:
        if not self.grid.usage:
            known = len(self.grid.friends)
            raise PeerError(
                f"No friend is online, so {what} cannot run "
                + (f"({known} known; start their nodes or check the network)." if known else
                   "(you have none yet: pair with 'p2pbackup invite' / 'p2pbackup join').")
            )  # fmt: skip

    async def head(self) -> heads.HeadBody:
        """Every reachable friend's head merged with mine; friends it names are adopted."""
        _, body = await read_head(self.keys, self.grid.online)
        if self.state.head is not None:
            body = heads.merge(body, self.state.head)
        for owner_id in drop_removed_friends(self.node, body):  # unfriended elsewhere
            key = owner_id.hex()
            self.grid.friends.pop(key, None)
            self.grid.usage.pop(key, None)  # so no job of this session uses them
        if adopt_head_friends(self.node, body):
            raise _Reconnect
        return body

    async def manifest(self, ref: heads.SnapshotRef) -> Manifest:
        key = (self.node.profile.home, ref.snapshot_id)
        parsed = _PARSED.get(key)
        if parsed is not None and parsed.generation == ref.generation:
            _PARSED.move_to_end(key)  # a daemon parses a 10,000-file manifest once, not per job
            return parsed
        cached = self.db.manifest(ref.snapshot_id)
        manifest = None
        if cached is not None:
            manifest = await trio.to_thread.run_sync(Manifest.from_bytes, cached)
            if manifest.generation != ref.generation:  # a repack rewrites a snapshot
                manifest = None
        if manifest is None:
            manifest, data = await load_manifest(self.fetcher(), ref)
            self.db.put_manifest(ref.snapshot_id, data)
        _PARSED[key] = manifest
        while len(_PARSED) > _KEEP_PARSED:
            _PARSED.popitem(last=False)
        return manifest

    async def refs(self) -> list[heads.SnapshotRef]:
        """Every kept snapshot as the head names it, oldest first: no manifest is read."""
        return sorted((await self.head()).tips, key=lambda r: (r.created_at_ns, r.snapshot_id))

    async def snapshots(self) -> list[Snapshot]:
        """Every kept snapshot whose manifest can be read, oldest first. One that cannot is
        noted in ``damaged`` (and told as an event), not a failure of the whole list: the
        others still restore."""
        out = []
        for ref in await self.refs():
            snap = await self.readable(ref)
            if snap is not None:
                out.append(snap)
        return out

    async def readable(self, ref: heads.SnapshotRef, away_fails: bool = False) -> Snapshot | None:
        """The snapshot, or None if its manifest cannot be read (noted in ``damaged``).
        With ``away_fails``, friends being away is their PeerError, not damage."""
        try:
            return Snapshot(ref, await self.manifest(ref))
        except (IntegrityError, PeerError) as exc:
            if away_fails and isinstance(exc, PeerError):
                raise
            if ref.snapshot_id not in self.damaged:
                self.events(ev.SnapshotDamaged(ref.snapshot_id, exc.message))
            self.damaged[ref.snapshot_id] = (ref, exc.message)
            return None

    async def cached(self, ref: heads.SnapshotRef) -> Counts | None:
        """What this device's copy of a snapshot's manifest says of it, without asking
        friends; None when it has no copy. Remembered per process: a daemon parses each
        manifest once (a repack rewrites chains, never these counts)."""
        key = (self.node.profile.home, ref.snapshot_id)
        counts = _COUNTS.get(key)
        if counts is None:
            data = self.db.manifest(ref.snapshot_id)
            if data is None:
                return None
            manifest = await trio.to_thread.run_sync(Manifest.from_bytes, data)
            counts = Counts(manifest.file_count, manifest.total_bytes, manifest.device,
                            manifest.roots)  # fmt: skip
            _COUNTS[key] = counts
        return counts

    async def snapshot(self, selector: str, at: datetime | None = None) -> Snapshot:
        """The snapshot ``selector`` names (see ``pick``), chosen from the head: only its
        own manifest is read. One that cannot be read is skipped by ``latest`` and ``at``
        (the one before it is taken, as the list shows it damaged); named by its id, it is
        an error that says why."""
        tips = []
        for ref in await self.refs():
            if ref.device:
                tips.append(Tip(ref, ref.device))
            elif (snap := await self.readable(ref)) is not None:  # a version 1 head's tip
                tips.append(Tip(ref, snap.device))
        while True:
            try:
                chosen = pick(tips, selector, at, device=self.device)
            except ConfigError:
                for ref, reason in self.damaged.values():  # say why, not "no such snapshot"
                    if selector and ref.snapshot_id.hex().startswith(selector.lower()):
                        raise IntegrityError(
                            f"Snapshot {ref.snapshot_id.hex()[:12]} is damaged: {reason}"
                        ) from None
                raise
            # Friends away: say so, rather than pick an older snapshot as if this were lost.
            snap = await self.readable(chosen.ref, away_fails=True)
            if snap is not None:
                return snap
            tips.remove(chosen)


@dataclass(frozen=True)
class Counts:
    files: int
    bytes: int
    device: str
    roots: tuple[str, ...]


# (profile, snapshot id) -> its manifest parsed, the last few used (a manifest never changes
# but for a repack's new generation, which ``manifest`` checks)
_PARSED: OrderedDict[tuple[str, bytes], Manifest] = OrderedDict()
_KEEP_PARSED = 4
# (profile, snapshot id) -> what its manifest counts, which never changes
_COUNTS: dict[tuple[str, bytes], Counts] = {}


def _named(events: ev.EventSink, grid: Grid) -> ev.EventSink:
    """Events name friends as people know them; the engine knows them by owner id."""

    def _sink(event: ev.Event) -> None:
        if isinstance(event, ev.FriendTrouble | ev.ShareRejected | ev.HeadRolledBack):
            event = replace(event, friend=grid.name(event.friend))
        elif isinstance(event, ev.RecordStored):
            event = replace(event, friends=tuple(grid.name(f) for f in event.friends))
        events(event)

    return _sink


_Picked = TypeVar("_Picked", Snapshot, Tip)


class _Reconnect(Exception):
    """The head named friends this device did not know: connect to them too."""


def pick(
    snapshots: list[_Picked],
    selector: str,
    at: datetime | None = None,
    *,
    device: str | None = None,
) -> _Picked:
    """``latest`` (``device``'s newest), ``latest@NAME`` (device NAME's newest), or any
    unique prefix of a snapshot id; ``at`` picks the one in force then, on that device."""
    if not snapshots:
        raise ConfigError("There are no snapshots yet; run 'p2pbackup backup' first.")
    name, at_sign, named = selector.partition("@")
    if at_sign and name != "latest":
        raise ConfigError(f"{selector!r}: only 'latest' takes @DEVICE, as in latest@laptop.")
    if at is not None or name == "latest":
        snapshots = _of_device(snapshots, named or device, named=bool(named))
    if at is not None:
        moment = at.astimezone() if at.tzinfo is None else at
        before = [s for s in snapshots if s.time <= moment]
        if not before:
            raise ConfigError(f"No snapshot existed yet at {moment.isoformat()}.")
        return before[-1]
    if name == "latest":
        return snapshots[-1]
    wanted = selector.lower()
    found = [s for s in snapshots if s.id.startswith(wanted)]
    if len(found) == 1 and wanted:
        return found[0]
    if not found:
        raise ConfigError(f"No snapshot id starts with {selector!r}; see 'p2pbackup snapshots'.")
    raise ConfigError(f"{selector!r} starts {len(found)} snapshot ids; give more characters.")


def _of_device(snapshots: list[_Picked], device: str | None, named: bool) -> list[_Picked]:
    """The snapshots ``device`` made. A device that has made none yet (just recovered from
    the phrase) gets everyone's, so its first restore needs no device name; a device named
    by the user must exist."""
    if device is None:
        return snapshots
    mine = [s for s in snapshots if s.device == device]
    if mine or not named:
        return mine or snapshots
    devices = ", ".join(sorted({s.device for s in snapshots}))
    raise ConfigError(f"No snapshot was made on a device called {device!r}; devices: {devices}.")


@asynccontextmanager
async def session(node: Node, events: ev.EventSink = ev.ignore) -> AsyncIterator[Session]:
    db = StateDB(node.profile.path("state.sqlite"))
    try:
        state = BackupState(db)  # records and the head; jobs load the file index they need
        await friends_from_lan(node)  # a recovered device: its friends may be right here
        workers = trio.CapacityLimiter(2)
        # A recovered device learns its friends from the first friend's copy of the head:
        # then it connects again, to all of them. Each round adds a friend at least, so
        # this ends.
        while True:
            # The daemon lends its friends' connections; a one-shot command dials them.
            grid_of = connected(node) if node.friends is None else node.friends.borrowed()
            async with grid_of as grid:
                s = Session(node, grid, db, state, _named(events, grid), workers)
                try:
                    await s.head()
                except _Reconnect:
                    continue
                # A friend whose pool went back in time is named, and given my newer head.
                await check_heads(s.keys, grid.online, state, s.events)
                s.rolled_back = dict(state.rollbacks)  # until a backup or repair checked
                yield s
                return
    finally:
        db.close()
