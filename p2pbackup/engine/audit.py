"""Auditing one friend: is it still keeping my shares, every byte of them?

An audit lists the friend's shares (what was placed there and is not listed is
*missing*), then proves a slice of them. Each pass over a friend's shares has a
secret order (a keyed hash of each share's key, the seed kept in the friend's audit
record); each audit proves the next slice of that order, as large as the time since
the last audit is a part of ``audit_every``, so every share that exists when a pass
begins is proved within that period however irregularly audits run, and the friend
cannot tell which shares come next.

A share of format version 2 or 3 is proved by one block at a random offset with its
sibling hashes (``PROVE_BLOCKS``), checked against the share hash the owner holds in the
record's descriptor: no share data is kept at the owner, a recovered device audits
as well, and a friend must keep every byte to answer for any block. A version-1
share is proved by a precomputed pair (``verify``); with none left (or from a friend
without block proofs) it waits to be read in full, within ``OLD_READ`` of the bytes
the friend keeps for me a day (reading every such share weekly would move far more
than audits may), and is counted unproven meanwhile.
Besides, ``audit_read`` of the bytes proved is earned as credit for reading a
random share in full and checking its hash (``rangecheck``): disks that rot under a
friend are found even where proofs would not look.

A share that fails its proof is *damaged*; one listed but then not there is
*missing* if a second listing no longer shows it (a friend that went away midway
is not taken for one that lost shares).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import trio

from p2pbackup.core import erasure, merkle
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.engine.rangecheck import check_share
from p2pbackup.engine.state import BackupState
from p2pbackup.errors import FormatError, IntegrityError, NoBlockProofs, PeerError
from p2pbackup.storage.auditlog import FriendAudit
from p2pbackup.storage.store import ShareKey, ShareStore

PROOFS_IN_FLIGHT = 8  # per audit
SEED_SIZE = 16
_FRAME = 10  # a frame's header: what every request and answer carries besides its body
_KEY = 33  # a share's key on the wire (record id, index)
_READ = 1 << 20  # rangecheck's reads, for counting the bytes of a full read
OLD_READ = 0.003  # of the bytes a friend keeps for me, a day: full reads of shares no
# proof covers (version 1 with its pairs spent): with audits, under 0.5 % a day
DAY = 86400.0


class _NoProof(Exception):
    """A share nothing proves without reading it in full."""


@dataclass(frozen=True)
class AuditBudget:
    """What the settings ask of audits (daemon/upkeep.py: audit_every, audit_read)."""

    every: float  # seconds in which every share is proved at least once
    read: float  # the part of the bytes proved that is also read in full
    old: float = OLD_READ  # the part of the friend's bytes a day read for unproven shares


@dataclass
class AuditResult:
    friend: str
    proved: int = 0
    read: int = 0  # of the proved, read in full
    missing: set[ShareKey] = field(default_factory=set)
    damaged: set[ShareKey] = field(default_factory=set)
    unproven: int = 0  # version-1 shares with nothing to prove them by this time
    sent: int = 0  # bytes to the friend (requests), frames included
    received: int = 0  # bytes from the friend (answers), frames included
    held: int = 0  # my shares the friend lists


def key_text(key: ShareKey) -> str:
    return f"{key.record_id.hex()}:{key.index}"


def key_of(text: str) -> ShareKey:
    record_id, index = text.split(":")
    return ShareKey(bytes.fromhex(record_id), int(index))


def _place(seed: bytes, key: ShareKey) -> float:
    """Where a share comes in a pass's order, 0..1: secret without the seed."""
    digest = hashlib.blake2b(key.record_id + bytes([key.index]), key=seed, digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


def slice_of(
    record: FriendAudit, keys: Iterable[ShareKey], advance: float
) -> list[ShareKey]:
    """The shares this audit proves: the next ``advance`` (0..1) of the pass's order,
    into a new pass when this one ends. Moves the record's cursor (and seed)."""
    keys = list(keys)
    if advance >= 1.0 or not record.seed:  # a whole period or more since: every share
        whole = advance >= 1.0
        record.seed, record.cursor = secrets.token_hex(SEED_SIZE), 0.0
        if whole:
            record.passes += 1
            return keys
    start, end = record.cursor, record.cursor + min(1.0, advance)
    seed = bytes.fromhex(record.seed)
    if end > 1.0 - 1e-9:  # sevenths that add up to 0.99999...: the pass is done
        end = max(end, 1.0)
    chosen = [k for k in keys if start <= _place(seed, k) < min(end, 1.0)]
    if end >= 1.0:  # the pass is done: a new order, begun with what is left of this advance
        record.seed, record.passes = secrets.token_hex(SEED_SIZE), record.passes + 1
        seed, end = bytes.fromhex(record.seed), end - 1.0
        taken = set(chosen)
        chosen += [k for k in keys if _place(seed, k) < end and k not in taken]
    record.cursor = end
    return chosen


async def prove_blocks(store: ShareStore, descriptor: RecordDescriptor, index: int) -> int:
    """Ask for one random block of share ``index`` and check it against the descriptor's
    share hash; the bytes of the answer. IntegrityError when it does not prove the share,
    NoBlockProofs for a version-1 share, PeerError when it is not there."""
    hashed = erasure.share_size(descriptor.length, descriptor.k) - merkle.HASH_SIZE
    block = secrets.randbelow(merkle.block_count(hashed))
    try:
        proofs = await store.prove_blocks(ShareKey(descriptor.record_id, index), [block])
    except FormatError as exc:  # a friend before PROVE_BLOCKS, or a garbled answer
        raise NoBlockProofs(f"Friend {store.name} gave no block proof: {exc.message}") from exc
    if len(proofs) != 1:
        raise IntegrityError(f"Friend {store.name} answered {len(proofs)} proofs to one ask.")
    data, path = proofs[0]
    merkle.verify_block(descriptor.share_hashes[index], hashed, block, data, path)
    return len(data) + 32 * len(path) + 4


class Auditor:
    """Audits friends' stores for one owner; ``state`` gives version-1 shares their pairs
    (None: a device with no local state, which reads those in full)."""

    def __init__(
        self,
        descriptors: Mapping[bytes, RecordDescriptor],
        state: BackupState | None,
        workers: trio.CapacityLimiter,
    ) -> None:
        self._descriptors = descriptors
        self._state = state
        self._workers = workers

    async def audit(
        self,
        store: ShareStore,
        record: FriendAudit,
        budget: AuditBudget,
        now: float,
        expected: Iterable[ShareKey] = (),
    ) -> AuditResult:
        """Audit one friend; ``record`` is brought up to date. ``expected``: the shares
        placed on it (as local state says). PeerError if the friend is away."""
        result = AuditResult(store.name)
        held = await self._list(store, result)
        mine = {k for k in held if k.record_id in self._descriptors}
        result.held = len(mine)
        result.missing = {k for k in expected if k not in held}
        elapsed = budget.every / 7 if record.last is None else max(0.0, now - record.last)
        todo = slice_of(record, mine, elapsed / budget.every if budget.every > 0 else 1.0)
        proved: list[ShareKey] = []
        gone: list[ShareKey] = []  # listed, then not there: missing, or the friend away
        waiting: list[ShareKey] = []  # nothing proves them but a full read

        async def _one(key: ShareKey, limit: trio.CapacityLimiter) -> None:
            async with limit:
                try:
                    await self._prove(store, key, result)
                except IntegrityError:
                    result.damaged.add(key)
                    return
                except PeerError:
                    gone.append(key)
                    return
                except _NoProof:
                    waiting.append(key)
                    return
            proved.append(key)

        limit = trio.CapacityLimiter(PROOFS_IN_FLIGHT)
        async with trio.open_nursery() as nursery:
            for key in todo:
                nursery.start_soon(_one, key, limit)
        if gone:
            again = await self._list(store, result)  # PeerError: the friend went away
            result.missing |= {k for k in gone if k not in again}
        result.proved = len(proved)
        await self._read_some(store, record, budget, proved, result)
        held_bytes = sum(self._share_size(k) for k in mine)
        await self._read_waiting(store, record, budget.old * held_bytes * elapsed / DAY,
                                 waiting, result)  # fmt: skip
        record.last = now
        record.proved, record.read, record.unproven = result.proved, result.read, result.unproven
        record.missing = sorted(key_text(k) for k in result.missing)
        record.damaged = sorted(key_text(k) for k in result.damaged)
        return result

    async def _list(self, store: ShareStore, result: AuditResult) -> frozenset[ShareKey]:
        held = await store.list()
        result.sent += _FRAME
        result.received += _FRAME + 4 + _KEY * len(held)
        return held

    async def _prove(self, store: ShareStore, key: ShareKey, result: AuditResult) -> None:
        d = self._descriptors[key.record_id]
        result.sent += _FRAME + _KEY + 3 + 4
        try:
            result.received += _FRAME + await prove_blocks(store, d, key.index)
            return
        except NoBlockProofs:
            result.received += _FRAME + 64
        challenge = self._state.next_challenge(key) if self._state is not None else None
        if challenge is None:
            raise _NoProof()
        nonce, answer = challenge
        result.sent += _FRAME + _KEY + 1 + len(nonce)
        result.received += _FRAME + 32
        if await store.prove(key, nonce) != answer:
            raise IntegrityError("wrong proof")

    async def _read(self, store: ShareStore, key: ShareKey, result: AuditResult) -> None:
        d = self._descriptors[key.record_id]
        size = erasure.share_size(d.length, d.k)
        pairs = await check_share(store, d, key.index, self._workers, 0 if self._state is None
                                  else 2)  # fmt: skip
        if self._state is not None and pairs:
            self._state.new_challenges(key, pairs)
        reads = size // _READ + 1
        result.sent += reads * (_FRAME + _KEY + 8)
        result.received += reads * _FRAME + size
        result.read += 1

    async def _read_some(
        self,
        store: ShareStore,
        record: FriendAudit,
        budget: AuditBudget,
        proved: list[ShareKey],
        result: AuditResult,
    ) -> None:
        """Read in full, and check, random shares among those just proved, as far as the
        credit earned (``budget.read`` of the bytes proved, kept between audits) allows."""
        sizes = {k: self._share_size(k) for k in proved}
        record.credit += budget.read * sum(sizes.values())
        record.credit = min(record.credit, 2.0 * max(sizes.values(), default=0) + 1)
        order = list(proved)
        secrets.SystemRandom().shuffle(order)
        for key in order:
            if sizes[key] > record.credit:
                continue
            record.credit -= sizes[key]
            try:
                await self._read(store, key, result)
            except IntegrityError:
                result.damaged.add(key)
                result.proved -= 1
            except PeerError:
                pass  # away now; its proof stands

    async def _read_waiting(
        self,
        store: ShareStore,
        record: FriendAudit,
        earned: float,
        waiting: list[ShareKey],
        result: AuditResult,
    ) -> None:
        """Read in full the shares nothing else proves, as far as their own credit goes
        (``earned`` this audit, kept between audits); the rest stay unproven."""
        sizes = {k: self._share_size(k) for k in waiting}
        # Kept between audits up to two shares' worth: enough for the largest to come up.
        record.old_credit = min(record.old_credit + earned,
                                earned + 2.0 * max(sizes.values(), default=0) + 1)  # fmt: skip
        order = list(waiting)
        secrets.SystemRandom().shuffle(order)
        for key in order:
            if sizes[key] > record.old_credit:
                result.unproven += 1
                continue
            record.old_credit -= sizes[key]
            try:
                await self._read(store, key, result)
            except IntegrityError:
                result.damaged.add(key)
                continue
            except PeerError:
                result.unproven += 1  # away now
                continue
            result.proved += 1

    def _share_size(self, key: ShareKey) -> int:
        d = self._descriptors[key.record_id]
        return erasure.share_size(d.length, d.k)

