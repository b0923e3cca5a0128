"""Checking that friends still hold my shares, and rebuilding the ones they lost.

Proofs: when a record is uploaded, the owner keeps a few (nonce, answer)
pairs per share, answers computed from the share itself. ``verify`` spends
one pair per share: the friend must hash the share it keeps with that nonce,
which it cannot do without the share, and the owner never needs the data.
``--read-data`` downloads every share and checks it against the descriptor's
hash instead (a recovered device, which has no pairs, relies on that).
``--repair`` fetches k good shares, decodes, encodes the missing ones again
(byte-identical: encoding is deterministic) and places them on friends so
every record again survives the loss of any one friend.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import nacl.utils
import trio

from p2pbackup.core import erasure, placement
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.engine import events as ev
from p2pbackup.engine.state import BackupState, StoredRecord
from p2pbackup.errors import IntegrityError, P2PBackupError, PeerError, StorageError
from p2pbackup.storage.sharepool import prove_answer
from p2pbackup.storage.store import ShareKey, ShareStore

CHALLENGES = 2  # proof pairs kept per share (each costs a hash of it); --read-data adds more
NONCE_SIZE = 16


def make_challenges(
    shares: list[bytes], count: int = CHALLENGES
) -> list[list[tuple[bytes, bytes]]]:
    """Per share, ``count`` fresh (nonce, answer) pairs."""
    out = []
    for share in shares:
        pairs = []
        for _ in range(count):
            nonce = nacl.utils.random(NONCE_SIZE)
            pairs.append((nonce, prove_answer(nonce, share)))
        out.append(pairs)
    return out


@dataclass
class RecordHealth:
    descriptor: RecordDescriptor
    good: dict[int, str] = field(default_factory=dict)  # index -> friend holding it, checked
    bad: dict[int, str] = field(default_factory=dict)  # index -> friend with a wrong answer
    unproven: dict[int, str] = field(default_factory=dict)  # listed, but no way to check

    @property
    def safe_losses(self) -> int:
        held = {**self.unproven, **self.good}
        return placement.tolerable_losses(held, self.descriptor.k)

    @property
    def lost(self) -> bool:
        return len({**self.unproven, **self.good}) < self.descriptor.k


@dataclass
class VerifyReport:
    records: dict[bytes, RecordHealth] = field(default_factory=dict)
    repaired: int = 0
    unreachable: list[str] = field(default_factory=list)

    def at_risk(self, survive: int = 1) -> list[RecordHealth]:
        return [h for h in self.records.values() if h.safe_losses < survive]

    def per_friend(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for health in self.records.values():
            for what, held in (("good", health.good), ("bad", health.bad),
                               ("unproven", health.unproven)):  # fmt: skip
                for friend in held.values():
                    counts[friend][what] += 1
        return {friend: dict(c) for friend, c in sorted(counts.items())}


class Verifier:
    def __init__(
        self,
        stores: Mapping[str, ShareStore],
        state: BackupState,
        events: ev.EventSink,
        workers: trio.CapacityLimiter,
    ) -> None:
        self._stores = stores
        self._state = state
        self._events = events
        self._workers = workers
        self._requests = trio.CapacityLimiter(16)  # in flight per verify run

    async def _holders(self, report: VerifyReport) -> dict[ShareKey, list[str]]:
        holders: dict[ShareKey, list[str]] = defaultdict(list)

        async def _list(name: str, store: ShareStore) -> None:
            try:
                for key in await store.list():
                    holders[key].append(name)
            except PeerError as exc:
                report.unreachable.append(name)
                self._events(ev.FriendTrouble(name, exc.message))

        async with trio.open_nursery() as nursery:
            for name, store in self._stores.items():
                nursery.start_soon(_list, name, store)
        return holders

    async def verify(
        self, descriptors: Iterable[RecordDescriptor], read_data: bool
    ) -> VerifyReport:
        report = VerifyReport()
        holders = await self._holders(report)
        wanted = {d.record_id: d for d in descriptors}
        done = 0

        async def _check(descriptor: RecordDescriptor, index: int, friend: str) -> None:
            health = report.records[descriptor.record_id]
            key = ShareKey(descriptor.record_id, index)
            async with self._requests:
                try:
                    if read_data:
                        share = await self._stores[friend].get(key)
                        erasure.verify_share(descriptor, index, share)
                        self._state.new_challenges(key, make_challenges([share])[0])
                    else:
                        challenge = self._state.next_challenge(key)
                        if challenge is None:
                            health.unproven[index] = friend
                            return
                        nonce, answer = challenge
                        if await self._stores[friend].prove(key, nonce) != answer:
                            raise IntegrityError("wrong proof")
                    health.good[index] = friend
                except IntegrityError:
                    health.bad[index] = friend
                    self._events(ev.ShareRejected(friend, descriptor.record_id, index))
                except PeerError:
                    pass  # missing there after all, or the friend went away

        async with trio.open_nursery() as nursery:
            for rid, descriptor in wanted.items():
                report.records[rid] = RecordHealth(descriptor)
                for index in range(descriptor.n):
                    for friend in holders.get(ShareKey(rid, index), ())[:1]:
                        nursery.start_soon(_check, descriptor, index, friend)
                done += 1
                self._events(ev.Progress("records", done, len(wanted)))
        return report

    async def repair(self, report: VerifyReport, room: Mapping[str, int], survive: int = 1) -> None:
        """Rebuild the shares that are missing or bad, on friends with room."""
        planner_room = dict(room)
        for health in report.at_risk(survive) + [
            h for h in report.records.values()
            if h.safe_losses >= survive and len(h.good) + len(h.unproven) < h.descriptor.n
        ]:  # fmt: skip
            if health.lost:
                continue
            try:
                await self._repair_one(health, planner_room, survive)
                report.repaired += 1
            except P2PBackupError as exc:
                self._events(ev.FriendTrouble("repair", exc.message))

    async def _repair_one(self, health: RecordHealth, room: dict[str, int], survive: int) -> None:
        d = health.descriptor
        for index, friend in health.bad.items():  # a damaged copy would block the new one
            with contextlib.suppress(PeerError):
                await self._stores[friend].remove(ShareKey(d.record_id, index))
        held = {**health.unproven, **health.good}
        shares: dict[int, bytes] = {}
        for index, friend in sorted(held.items()):
            if len(shares) == d.k:
                break
            try:
                share = await self._stores[friend].get(ShareKey(d.record_id, index))
                erasure.verify_share(d, index, share)
                shares[index] = share
            except (PeerError, IntegrityError):
                continue
        if len(shares) < d.k:
            raise IntegrityError(f"Record {d.record_id.hex()[:12]} has too few good shares.")

        def _reencode() -> list[bytes]:
            sealed = erasure.decode_verified(d, shares)
            _, all_shares = erasure.encode(d.record_id, sealed, d.k, d.n)
            return all_shares

        all_shares = await trio.to_thread.run_sync(_reencode, limiter=self._workers)
        size = len(all_shares[0])
        keep = {i: f for i, f in held.items() if i in shares or i in health.good}
        friends = [placement.FriendRoom(name, free) for name, free in room.items()]
        wanted = placement.place(d.k, d.n, size, friends, survive=survive, existing=keep)
        for index, friend in wanted.items():
            if keep.get(index) == friend:
                continue
            try:
                await self._stores[friend].put(ShareKey(d.record_id, index), all_shares[index])
            except (PeerError, StorageError) as exc:
                self._events(ev.FriendTrouble(friend, exc.message))
                continue
            room[friend] -= size
            health.good[index] = friend
            health.bad.pop(index, None)
            health.unproven.pop(index, None)
        challenges = make_challenges(all_shares)
        for index in range(d.n):
            self._state.new_challenges(ShareKey(d.record_id, index), challenges[index])
        placed = {**health.unproven, **health.good}
        self._state.record_stored(d.record_id, StoredRecord(d, placed))
