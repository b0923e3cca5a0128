"""Removing from friends the records no kept snapshot needs.

A record is removed only when no kept snapshot uses it (its manifest, or any
blob of any entry's chain) and this device knows it was written for a
snapshot: it is in the local state, a forgotten snapshot used it, or this
device began sending it and stopped (``state.in_flight``: an interrupted
backup). So a record another device has just uploaded for a snapshot it has
not published yet is never taken for garbage. Prune runs under the job lock,
so no backup of this device is sending anything meanwhile: whatever is still
in flight was left by a run that stopped.

A share this device sent to a friend that then failed, and placed elsewhere,
is removed from that friend once the friend it was placed on holds it. Shares
nobody here knows of are counted, not removed (docs/decisions.md says why).
Local state follows: files whose chain used a removed record are read again
by the next backup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import trio

from p2pbackup.core.manifest import Manifest
from p2pbackup.engine import events as ev
from p2pbackup.engine.fetcher import list_holders
from p2pbackup.engine.state import BackupState
from p2pbackup.errors import PeerError
from p2pbackup.storage.store import ShareKey, ShareStore

IN_FLIGHT = 16

Sent = tuple[bytes, int, str]  # (record id, share index, friend) from state.in_flight


@dataclass
class PruneReport:
    removed_records: set[bytes] = field(default_factory=set)
    removed_shares: int = 0
    unreachable: list[str] = field(default_factory=list)
    # Shares a friend holds whose record no kept snapshot uses and this device never sent:
    # another device's work in progress, or a leftover only that device knows. Kept.
    unknown_shares: Counter[str] = field(default_factory=Counter)


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
    device wrote (``state.records``), began to write (``state.in_flight``) or that forgotten
    snapshots used (``known_garbage``); and the shares it left on friends that failed.
    No backup of ``state`` may run meanwhile (the daemon's job lock sees to it)."""
    report = PruneReport()
    sent = state.in_flight()
    interrupted = {rid for rid, _, _ in sent if rid not in state.records}
    ours = (set(state.records) | known_garbage | state.garbage() | interrupted) - needed
    limiter = trio.CapacityLimiter(IN_FLIGHT)
    refused: set[str] = set()  # friends that listed a share and then did not remove it

    async def _remove(name: str, store: ShareStore, key: ShareKey) -> bool:
        async with limiter:
            try:
                await store.remove(key)
            except PeerError as exc:
                events(ev.FriendTrouble(name, exc.message))
                refused.add(name)
                return False
            report.removed_shares += 1
            return True

    async def _remove_garbage(name: str, key: ShareKey) -> None:
        if await _remove(name, stores[name], key):
            report.removed_records.add(key.record_id)

    holders, report.unreachable = await list_holders(stores, events)
    # Friends not even in ``stores`` (away when the job began) may hold some too.
    report.unreachable += sorted(_friends_named(state, sent, ours) - set(stores))
    reachable = set(stores) - set(report.unreachable)
    strays, settled = _strays(sent, state, ours, holders, reachable)

    async def _remove_stray(row: Sent) -> None:  # an extra copy: its record stays
        rid, index, name = row
        if await _remove(name, stores[name], ShareKey(rid, index)):
            settled.append(row)

    async with trio.open_nursery() as nursery:
        for key, names in holders.items():
            if key.record_id in ours:
                for name in names:
                    nursery.start_soon(_remove_garbage, name, key)
        for row in strays:
            nursery.start_soon(_remove_stray, row)
    known = ours | needed | set(state.records) | {rid for rid, _, _ in sent}
    for key, names in holders.items():
        if key.record_id not in known:
            report.unknown_shares.update(names)
    # Friends that were away, or failed a remove, still hold some: remembered, and removed
    # by the next prune.
    state.set_garbage(ours if report.unreachable or refused else set())
    state.landed(settled)
    # Local state forgets the removed records and whatever pointed at them (revisions too:
    # a file returning to an old content must store it again). Database work and CPU: off
    # the event loop.
    await trio.to_thread.run_sync(state.forget_lost, ours)
    return report


def _friends_named(state: BackupState, sent: set[Sent], ours: set[bytes]) -> set[str]:
    """Every friend this device sent a share on that prune would remove."""
    named = {friend for _, _, friend in sent}
    for rid in ours & set(state.records):
        named.update(state.records[rid].placement.values())
    return named


def _strays(
    sent: set[Sent],
    state: BackupState,
    ours: set[bytes],
    holders: Mapping[ShareKey, list[str]],
    reachable: set[str],
) -> tuple[list[Sent], list[Sent]]:
    """Of the shares noted as sent: those to remove from the friend they went to (a stray
    copy of a kept record's share, now held where the record placed it), and those already
    accounted for. The rest stay noted for the next prune: the friend was away, or the
    stray is the only copy of its share and is better kept than lost."""
    strays: list[Sent] = []
    settled: list[Sent] = []
    for row in sorted(sent):
        rid, index, friend = row
        record = state.records.get(rid)
        placed = record.placement.get(index) if record is not None else None
        here = holders.get(ShareKey(rid, index), ())
        if rid in ours or record is None or placed == friend:
            # Garbage (removed from every holder, or remembered as garbage), a record a kept
            # snapshot uses though this device never finished it (its copies are good
            # copies), or the share where its record placed it.
            settled.append(row)
        elif friend not in reachable:
            continue
        elif friend not in here:
            settled.append(row)  # never written there, or gone already
        elif placed in here:
            strays.append(row)
    return strays, settled
