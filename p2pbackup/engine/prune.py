"""Removing from friends the records no kept snapshot needs.

A record is removed only when no kept snapshot uses it (its manifest, or any
blob of any entry's chain) and this device knows it was written for a
snapshot: it is in the local state, or a forgotten snapshot used it. So a
record another device has just uploaded for a snapshot it has not published
yet is never taken for garbage. Local state follows: files whose chain used
a removed record are read again by the next backup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import trio

from p2pbackup.core import revlog as revlogs
from p2pbackup.core.manifest import Manifest
from p2pbackup.core.revlog import rebuild_plan
from p2pbackup.engine import events as ev
from p2pbackup.engine.fetcher import list_holders
from p2pbackup.engine.state import BackupState
from p2pbackup.errors import PeerError
from p2pbackup.storage.store import ShareKey, ShareStore

IN_FLIGHT = 16


@dataclass
class PruneReport:
    removed_records: set[bytes] = field(default_factory=set)
    removed_shares: int = 0
    unreachable: list[str] = field(default_factory=list)


def needed_records(kept: Iterable[Manifest], manifest_ids: Iterable[bytes]) -> set[bytes]:
    """Every record a kept snapshot needs: its manifest and every blob its entries use."""
    needed = set(manifest_ids)
    for manifest in kept:
        needed |= manifest.record_ids()
    return needed


async def prune(
    stores: Mapping[str, ShareStore],
    state: BackupState,
    needed: set[bytes],
    known_garbage: set[bytes],
    events: ev.EventSink,
) -> PruneReport:
    """Remove, from every reachable friend, the shares of records not ``needed`` that this
    device wrote (``state.records``) or that forgotten snapshots used (``known_garbage``)."""
    report = PruneReport()
    ours = (set(state.records) | known_garbage | state.garbage()) - needed
    limiter = trio.CapacityLimiter(IN_FLIGHT)

    async def _remove(name: str, store: ShareStore, key: ShareKey) -> None:
        async with limiter:
            try:
                await store.remove(key)
                report.removed_shares += 1
                report.removed_records.add(key.record_id)
            except PeerError as exc:
                events(ev.FriendTrouble(name, exc.message))

    holders, report.unreachable = await list_holders(stores, events)
    async with trio.open_nursery() as nursery:
        for key, names in holders.items():
            if key.record_id in ours:
                for name in names:
                    nursery.start_soon(_remove, name, stores[name], key)
    # Friends that were away still hold some: remembered, and removed by the next prune.
    state.set_garbage(ours if report.unreachable else set())
    # Reading every file's revlog is database work and CPU: off the event loop.
    await trio.to_thread.run_sync(_forget_locally, state, ours)
    return report


def _forget_locally(state: BackupState, ours: set[bytes]) -> None:
    """The local state forgets the removed records, and whatever pointed at them."""
    state.forget_records(sorted(ours & set(state.records)))
    stale = [
        path
        for path, fs in state.files.items()
        if any(step.blob.record_id in ours for step in fs.entry.chain)
    ]
    state.forget_files(stale)
    # Revisions whose blobs are gone leave the revlogs too: a file that returns to an old
    # content must store it again, not point at a record that no longer exists.
    for path in list(state.files):
        revlog = state.revlog(path)
        intact = [
            rev.rev_id
            for rev in revlog
            if not any(step.blob.record_id in ours for step in rebuild_plan(revlog, rev.rev_id))
        ]
        if len(intact) != len(revlog):
            state.replace_revlog(path, revlogs.prune(revlog, intact).revlog)
    for rev_id, chain in list(state.contents.items()):  # contents a backup could reuse
        if any(step.blob.record_id in ours for step in chain):
            del state.contents[rev_id]
