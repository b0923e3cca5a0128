"""Unfriending, so that it sticks and nothing is lost.

In this order: the friend leaves this session's grid (nothing below stores on
them); the catalog keeps a tombstone dated now and this node deletes what it
kept for them (their quota is free at once, through the pool's own
accounting); the head is published with the tombstone, so no device of mine
adopts them again (a device that still lists them drops them when it reads
the head); then every record that had a share on them is checked on the
other friends and its missing shares rebuilt there (``verify --repair``'s
path), within their quotas. What cannot be placed again is reported as at
risk, never passed over in silence.
"""

from __future__ import annotations

from p2pbackup.core import head as heads
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.daemon.grid import head_friends
from p2pbackup.daemon.session import Session
from p2pbackup.engine.headstore import publish
from p2pbackup.engine.verify import Verifier
from p2pbackup.errors import PeerError


async def unfriend(s: Session, friend: str) -> dict:
    node = s.node
    who = node.catalog.find(friend)
    key = who.owner_id.hex()
    s.grid.friends.pop(key, None)
    s.grid.usage.pop(key, None)
    node.catalog.remove_friend(who.owner_id)
    freed = node.pool.drop_owner(who.owner_id)
    result: dict = {
        "name": who.name,
        "removed": True,
        "freed_bytes": freed,
        "published": False,
        "records_checked": 0,
        "replaced": 0,
        "not_replaced": 0,
        "at_risk": 0,
        "lost": 0,
    }
    if not s.grid.usage:  # the tombstone goes out with the next head any job publishes
        return result
    try:
        change = heads.HeadBody(frozenset(), frozenset(), head_friends(node), None)
        await publish(s.keys, s.grid.online, s.state, change)
        result["published"] = True
    except PeerError:
        return result
    verifier = Verifier(s.grid.online, s.state, s.events, s.workers)
    report = await verifier.verify(await _records_they_held(s, key), read_data=False)
    await verifier.repair(report, s.grid.room())
    result.update(
        records_checked=len(report.records),
        replaced=report.repaired,
        not_replaced=sum(1 for h in report.records.values() if len(h.held()) < h.descriptor.n),
        at_risk=len(report.at_risk()),
        lost=sum(1 for health in report.records.values() if health.lost),
    )
    return result


async def _records_they_held(s: Session, key: str) -> list[RecordDescriptor]:
    """Every record of a kept snapshot that this device placed on ``key``, or whose
    placement it does not know (made on another device)."""
    descriptors: dict[bytes, RecordDescriptor] = {}
    for snap in await s.snapshots():
        descriptors[snap.ref.manifest.record_id] = snap.ref.manifest
        descriptors.update({d.record_id: d for d in snap.manifest.records})
    records = s.state.records
    return [
        d for rid, d in descriptors.items()
        if rid not in records or key in records[rid].placement.values()
    ]  # fmt: skip
