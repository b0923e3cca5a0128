"""Checking that friends still hold my shares, and rebuilding the ones they lost.

Proofs: a share of format version 2 or 3 is proved by a random block of it and the
sibling hashes that tie it to the share hash in the descriptor (engine/audit.py,
core/merkle.py), as often as wanted and with no data kept at the owner. For a
version-1 share the owner kept a few (nonce, answer) pairs when it was uploaded,
answers computed from the share itself; ``verify`` spends one pair per such share:
the friend must hash the share it keeps with that nonce, which it cannot do without
the share, and the owner never needs the data.
``--read-data`` reads every share and checks it against the descriptor's
hash instead (a recovered device, which has no pairs, relies on that), by
ranges (engine/rangecheck.py), so memory is one read per check in flight.
``--repair`` fetches k good shares, decodes, encodes the missing ones again
(byte-identical: encoding is deterministic) and places them on friends so
every record again survives the loss of any one friend; shares larger than
WHOLE_SHARE are rebuilt a few segments at a time (engine/rebuild.py). Hashing
and coding run in worker threads. Progress counts checks and records finished.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import nacl.utils
import trio

from p2pbackup.core import erasure, placement
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.engine import events as ev
from p2pbackup.engine import rebuild
from p2pbackup.engine.audit import prove_blocks
from p2pbackup.engine.fetcher import list_holders
from p2pbackup.engine.rangecheck import check_share
from p2pbackup.engine.state import BackupState, StoredRecord
from p2pbackup.errors import IntegrityError, NoBlockProofs, P2PBackupError, PeerError, StorageError
from p2pbackup.storage.sharepool import prove_answer
from p2pbackup.storage.store import ShareKey, ShareStore

CHALLENGES = 2  # proof pairs kept per share (each costs a hash of it); --read-data adds more
NONCE_SIZE = 16
WHOLE_SHARE = 1 << 20  # larger shares are repaired segment by segment, never held whole


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
    """Who holds which share of one record. A share may sit on several friends (an upload
    interrupted and placed again elsewhere): every copy counts."""

    descriptor: RecordDescriptor
    good: dict[int, set[str]] = field(default_factory=dict)  # checked
    bad: dict[int, set[str]] = field(default_factory=dict)  # a wrong answer or wrong bytes
    unproven: dict[int, set[str]] = field(default_factory=dict)  # listed, no way to check

    def add(self, kind: dict[int, set[str]], index: int, friend: str) -> None:
        kind.setdefault(index, set()).add(friend)

    def held(self) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for kind in (self.good, self.unproven):
            for index, friends in kind.items():
                out.setdefault(index, set()).update(friends)
        return out

    @property
    def safe_losses(self) -> int:
        """How many friends could disappear, the worst ones, with the record still whole."""
        held = self.held()
        friends = sorted(set().union(*held.values())) if held else []
        for lost in range(len(friends) + 1):
            for gone in itertools.combinations(friends, lost):
                left = sum(1 for holders in held.values() if holders - set(gone))
                if left < self.descriptor.k:
                    return max(0, lost - 1)
        return len(friends)

    @property
    def lost(self) -> bool:
        return len(self.held()) < self.descriptor.k


@dataclass
class VerifyReport:
    records: dict[bytes, RecordHealth] = field(default_factory=dict)
    repaired: int = 0
    unreachable: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # friends that answered the list
    # Shares local state placed on a friend that answered without them: {friend: count}.
    missing: Counter[str] = field(default_factory=Counter)
    lost_files: dict[str, list[str]] = field(default_factory=dict)  # record hex -> paths

    def at_risk(self, survive: int = 1) -> list[RecordHealth]:
        return [h for h in self.records.values() if h.safe_losses < survive]

    def per_friend(self) -> dict[str, dict[str, int]]:
        """Per friend that answered: good, damaged, missing and unproven shares, each
        counted (zeros too: a friend whose pool was deleted shows 0 good, N missing)."""
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for health in self.records.values():
            for what, held in (("good", health.good), ("damaged", health.bad),
                               ("unproven", health.unproven)):  # fmt: skip
                for friends in held.values():
                    for friend in friends:
                        counts[friend][what] += 1
        for friend, n in self.missing.items():
            counts[friend]["missing"] += n
        kinds = ("good", "damaged", "missing", "unproven")
        return {
            friend: {what: counts[friend][what] for what in kinds}
            for friend in sorted(set(counts) | set(self.asked))
        }

    def emptied(self) -> list[str]:
        """Friends that answered holding none of my shares where some were placed."""
        return [
            friend
            for friend, c in self.per_friend().items()
            if c["missing"] and not (c["good"] or c["damaged"] or c["unproven"])
        ]


async def _proved_by_blocks(store: ShareStore, descriptor: RecordDescriptor, index: int) -> bool:
    """True when a random block proves the share (IntegrityError when it does not); False
    for a share of format version 1, which has no block tree."""
    try:
        await prove_blocks(store, descriptor, index)
    except NoBlockProofs:
        return False
    return True


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

    async def verify(
        self, descriptors: Iterable[RecordDescriptor], read_data: bool
    ) -> VerifyReport:
        report = VerifyReport()
        holders, report.unreachable = await list_holders(self._stores, self._events)
        report.asked = sorted(set(self._stores) - set(report.unreachable))
        wanted = {d.record_id: d for d in descriptors}
        for rid in wanted:  # placed there (as local state says), not listed there now
            placed = self._state.records.get(rid)
            for index, friend in placed.placement.items() if placed else ():
                if friend in report.asked and friend not in holders.get(ShareKey(rid, index), ()):
                    report.missing[friend] += 1
        report.records = {rid: RecordHealth(d) for rid, d in wanted.items()}
        checks = [
            (health, index, friend)
            for rid, health in report.records.items()
            for index in range(health.descriptor.n)
            for friend in holders.get(ShareKey(rid, index), ())
        ]
        done = 0

        async def _check(health: RecordHealth, index: int, friend: str) -> None:
            nonlocal done
            async with self._requests:
                await self._check(health, index, friend, read_data)
            done += 1  # finished checks, in the order they finish
            self._events(ev.Progress("verify", done, len(checks)))

        async with trio.open_nursery() as nursery:
            for check in checks:
                nursery.start_soon(_check, *check)
        return report

    async def _check(self, health: RecordHealth, index: int, friend: str, read_data: bool) -> None:
        descriptor = health.descriptor
        key = ShareKey(descriptor.record_id, index)
        try:
            if read_data:
                pairs = await check_share(
                    self._stores[friend], descriptor, index, self._workers, CHALLENGES
                )
                self._state.new_challenges(key, pairs)
            elif not await _proved_by_blocks(self._stores[friend], descriptor, index):
                challenge = self._state.next_challenge(key)
                if challenge is None:
                    health.add(health.unproven, index, friend)
                    return
                nonce, answer = challenge
                if await self._stores[friend].prove(key, nonce) != answer:
                    raise IntegrityError("wrong proof")
            health.add(health.good, index, friend)
        except IntegrityError:
            health.add(health.bad, index, friend)
            self._events(ev.ShareRejected(friend, descriptor.record_id, index))
        except PeerError:
            pass  # missing there after all, or the friend went away

    async def repair(self, report: VerifyReport, room: Mapping[str, int], survive: int = 1) -> None:
        """Rebuild the shares that are missing or bad, on friends with room."""
        planner_room = dict(room)
        todo = []
        for health in report.records.values():
            complete = len(health.held()) == health.descriptor.n and not health.bad
            if not (health.lost or (complete and health.safe_losses >= survive)):
                todo.append(health)
        for done, health in enumerate(todo, 1):
            try:
                await self._repair_one(health, planner_room, survive)
                report.repaired += 1
            except P2PBackupError as exc:
                self._events(ev.FriendTrouble("repair", exc.message))
            self._events(ev.Progress("repair", done, len(todo)))

    async def _good_shares(self, health: RecordHealth) -> dict[int, bytes]:
        d, shares = health.descriptor, {}
        for index, friends in sorted(health.held().items()):
            for friend in sorted(friends):
                if len(shares) == d.k:
                    return shares
                try:
                    share = await self._stores[friend].get(ShareKey(d.record_id, index))
                    await trio.to_thread.run_sync(
                        erasure.verify_share, d, index, share, limiter=self._workers
                    )
                except (PeerError, IntegrityError):
                    continue
                shares[index] = share
                break
        if len(shares) < d.k:
            raise IntegrityError(f"Record {d.record_id.hex()[:12]} has too few good shares.")
        return shares

    async def _repair_one(self, health: RecordHealth, room: dict[str, int], survive: int) -> None:
        d = health.descriptor
        for index, friends in health.bad.items():  # a damaged copy would block the new one
            for friend in friends:
                with contextlib.suppress(PeerError):
                    await self._stores[friend].remove(ShareKey(d.record_id, index))
        size = erasure.share_size(d.length, d.k)
        friends = [placement.FriendRoom(name, free) for name, free in room.items()]
        # Keep one good holder per share where the safety rule allows; else place afresh
        # (a friend that already holds a share is not sent it again).
        existing, load = {}, Counter[str]()
        for index, holders in sorted(health.good.items()):
            friend = min(holders, key=lambda f: (load[f], f))
            existing[index] = friend
            load[friend] += 1
        try:
            wanted = placement.place(d.k, d.n, size, friends, survive=survive, existing=existing)
        except P2PBackupError:
            wanted = placement.place(d.k, d.n, size, friends, survive=survive)
        targets = {i: f for i, f in wanted.items() if f not in health.good.get(i, ())}
        if size > WHOLE_SHARE:
            candidates = [(i, f) for i, held in health.held().items() for f in held]
            done = await rebuild.rebuild(
                self._stores, d, candidates, targets, self._workers, self._events, CHALLENGES
            )
            sent, challenges = done.sent, done.challenges
        else:
            sent, challenges = await self._rebuild_whole(d, health, targets)
        for index, friend in sent.items():
            room[friend] -= size
            health.add(health.good, index, friend)
        health.bad.clear()
        for index in range(d.n):
            self._state.new_challenges(ShareKey(d.record_id, index), challenges[index])
        # the shares kept where they were, and those placed again: the whole placement
        self._state.record_stored(d.record_id, StoredRecord(d, {**existing, **wanted}))

    async def _rebuild_whole(
        self, d: RecordDescriptor, health: RecordHealth, targets: Mapping[int, str]
    ) -> tuple[dict[int, str], list[list[tuple[bytes, bytes]]]]:
        """A small record's lost shares, rebuilt from k whole shares: who got theirs, and
        fresh proof pairs for all n."""
        shares = await self._good_shares(health)

        def _reencode() -> tuple[list[bytes], list[list[tuple[bytes, bytes]]]]:
            sealed = erasure.decode_verified(d, shares)
            header = next(iter(shares.values()))
            block_size = erasure.block_size_of(header)  # as stored, and in its format
            all_shares = erasure.encode(
                d.record_id, sealed, d.k, d.n, block_size, erasure.version_of(header)
            )[1]
            flat = erasure.version_of(header) == erasure.FLAT_VERSION  # no block proofs
            return all_shares, make_challenges(all_shares, CHALLENGES if flat else 0)

        all_shares, challenges = await trio.to_thread.run_sync(_reencode, limiter=self._workers)
        sent = {}
        for index, friend in targets.items():
            try:
                await self._stores[friend].put(ShareKey(d.record_id, index), all_shares[index])
            except (PeerError, StorageError, IntegrityError) as exc:  # refused, maybe its format
                self._events(ev.FriendTrouble(friend, exc.message))
                continue
            sent[index] = friend
        return sent, challenges
