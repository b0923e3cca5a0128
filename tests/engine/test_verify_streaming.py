"""verify --read-data and --repair of large records: by ranges and segments, never a whole share.

Two kinds of large record: a real streamed backup of a file over STREAM_FILE
(256 KiB blocks), and a record encoded here with small blocks, so a share of a
few MiB has hundreds of segments and memory can be measured against it.
"""

from __future__ import annotations

import hashlib
import os
import random
import tracemalloc
from collections import Counter

import pytest
import trio

from p2pbackup.core import erasure
from p2pbackup.engine import events as ev
from p2pbackup.engine import rangecheck, rebuild
from p2pbackup.engine.backup import STREAM_FILE
from p2pbackup.engine.state import StoredRecord
from p2pbackup.engine.verify import CHALLENGES, WHOLE_SHARE, Verifier, make_challenges
from p2pbackup.storage.sharepool import prove_answer
from p2pbackup.storage.store import ShareKey

pytestmark = pytest.mark.trio

KiB, MiB = 1024, 1024 * 1024


class Counting:
    """A store that counts the calls made to it, and the largest range it was asked for."""

    def __init__(self, store) -> None:
        self.store, self.name = store, store.name
        self.calls: Counter[str] = Counter()
        self.largest_range = 0

    def __getattr__(self, op):
        call = getattr(self.store, op)

        async def counted(*args):
            self.calls[op] += 1
            if op == "get_range":
                self.largest_range = max(self.largest_range, args[2])
            return await call(*args)

        return counted


class Remote:
    """A friend as the owner meets it over the network: every answer is fresh bytes, and
    what ``put_part`` sends is kept on its disk (here only its hash and length), so it
    costs the owner no memory. Memory is measured through this, not the in-memory pool."""

    def __init__(self, store) -> None:
        self.store, self.name = store, store.name
        self.hashes: dict[ShareKey, erasure.ShareDigest] = {}
        self.sizes: Counter[ShareKey] = Counter()

    def __getattr__(self, op):
        return getattr(self.store, op)

    async def get(self, key):
        return bytes(memoryview(await self.store.get(key)))  # received: a copy

    async def get_range(self, key, offset, length):
        return bytes(memoryview(await self.store.get(key))[offset : offset + length])

    async def put(self, key, share):
        await self.put_part(key, 0, len(share), True, share)

    async def put_part(self, key, offset, reserve, last, piece):
        if offset == 0:
            self.hashes[key] = erasure.ShareDigest()  # flat or block tree, as the share says
            self.sizes[key] = 0
        assert offset == self.sizes[key]
        self.hashes[key].update(piece[:-32] if last else piece)
        self.sizes[key] += len(piece)
        return True


async def _backed_up_large(grid, tmp_path):
    """A streamed backup of one large file: its record's descriptor and placement."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(random.Random(3).randbytes(STREAM_FILE + 3 * MiB))
    await grid.backup(src)
    (large,) = [r for r in grid.state.records.values() if r.descriptor.length > STREAM_FILE]
    return large.descriptor, large.placement


def _small_block_record(grid, size: int, block_size: int):
    """A record of ``size`` bytes in shares of ``block_size`` blocks, placed one share per
    friend and known to local state as a backup leaves it (with proof pairs)."""
    rid = hashlib.blake2b(b"record %d" % size, digest_size=32).digest()
    descriptor, shares = erasure.encode(rid, os.urandom(size), 2, 4, block_size)
    placed = {}
    for index, (name, store) in enumerate(sorted(grid.stores.items())):
        store._shares[ShareKey(rid, index)] = shares[index]
        placed[index] = name
    for index, pairs in enumerate(make_challenges(shares)):
        grid.state.new_challenges(ShareKey(rid, index), pairs)
    grid.state.record_stored(rid, StoredRecord(descriptor, placed))
    return descriptor, placed


def _verifier(grid, stores=None) -> Verifier:
    return Verifier(stores or grid.stores, grid.state, grid.events.append, trio.CapacityLimiter(2))


async def test_read_data_reads_a_large_share_by_ranges_never_whole(grid, tmp_path):
    d, _ = await _backed_up_large(grid, tmp_path)
    counting = {name: Counting(store) for name, store in grid.stores.items()}
    report = await _verifier(grid, counting).verify([d], read_data=True)
    health = report.records[d.record_id]
    assert sorted(health.good) == list(range(d.n)) and not health.bad
    calls = sum((c.calls for c in counting.values()), Counter())
    share = erasure.share_size(d.length, d.k)
    assert calls["get"] == 0 and calls["get_range"] >= d.n * (share // rangecheck.READ_SIZE)
    assert max(c.largest_range for c in counting.values()) <= rangecheck.READ_SIZE < share
    # The proof pairs it hashed on the way are right: a plain verify is answered.
    again = await _verifier(grid).verify([d], read_data=False)
    assert sorted(again.records[d.record_id].good) == list(range(d.n))


@pytest.mark.parametrize("damage", ["a flipped byte mid-share", "one byte too many"])
async def test_read_data_finds_damage_in_a_large_share(grid, tmp_path, damage):
    d, placed = await _backed_up_large(grid, tmp_path)
    key = ShareKey(d.record_id, 1)
    store = grid.stores[placed[1]]
    if damage == "one byte too many":
        store._shares[key] += b"\0"
    else:
        store.corrupt(key)  # the byte at the share's middle: a segment far from both ends
    report = await _verifier(grid).verify([d], read_data=True)
    health = report.records[d.record_id]
    assert health.bad == {1: {placed[1]}} and sorted(health.good) == [0, 2, 3]
    assert ev.ShareRejected(placed[1], d.record_id, 1) in grid.events


async def test_repair_rebuilds_a_lost_large_share_by_segments(grid, tmp_path):
    d, placed = await _backed_up_large(grid, tmp_path)
    lost = ShareKey(d.record_id, 2)
    await grid.stores[placed[2]].remove(lost)
    counting = {name: Counting(store) for name, store in grid.stores.items()}
    verifier = _verifier(grid, counting)
    report = await verifier.verify([d], read_data=False)
    assert 2 not in report.records[d.record_id].held()
    await verifier.repair(report, {name: 1 << 30 for name in grid.stores})
    assert report.repaired == 1
    calls = sum((c.calls for c in counting.values()), Counter())
    assert calls["get"] == calls["put"] == 0 and calls["put_part"] > 1
    holder = grid.state.records[d.record_id].placement[2]
    erasure.verify_share(d, 2, await grid.stores[holder].get(lost))  # byte-identical
    assert ev.Progress("repair", 1, 1) in grid.events
    # Fresh proof pairs for every share, the rebuilt one included.
    again = await _verifier(grid).verify([d], read_data=False)
    assert sorted(again.records[d.record_id].good) == list(range(d.n))
    assert again.records[d.record_id].safe_losses >= 1


async def test_repair_skips_a_source_that_turns_out_damaged(grid, tmp_path):
    """Proofs said share 0 was kept; it is damaged by the time it is read. The rebuilt share
    is only finished from good sources: its friend never accepts a wrong one."""
    d, placed = await _backed_up_large(grid, tmp_path)
    await grid.stores[placed[3]].remove(ShareKey(d.record_id, 3))
    verifier = _verifier(grid)
    report = await verifier.verify([d], read_data=False)
    grid.stores[placed[0]].corrupt(ShareKey(d.record_id, 0))
    await verifier.repair(report, {name: 1 << 30 for name in grid.stores})
    assert ev.ShareRejected(placed[0], d.record_id, 0) in grid.events
    holder = grid.state.records[d.record_id].placement[3]
    erasure.verify_share(d, 3, await grid.stores[holder].get(ShareKey(d.record_id, 3)))


async def test_memory_is_bounded_by_the_segment_not_the_share(grid, monkeypatch):
    """A 3 MiB share of 16 KiB blocks: verify and repair each hold a few hundred KiB."""
    monkeypatch.setattr(rangecheck, "READ_SIZE", 64 * KiB)
    d, placed = _small_block_record(grid, 6 * MiB, 16 * KiB)
    share = erasure.share_size(d.length, d.k)
    remotes = {name: Remote(store) for name, store in grid.stores.items()}
    verifier = _verifier(grid, remotes)
    tracemalloc.start()
    try:
        report = await verifier.verify([d], read_data=True)
        _, verify_peak = tracemalloc.get_traced_memory()
        assert sorted(report.records[d.record_id].good) == list(range(d.n))

        lost = ShareKey(d.record_id, 3)
        await grid.stores[placed[3]].remove(lost)
        report = await verifier.verify([d], read_data=False)
        tracemalloc.reset_peak()
        await verifier.repair(report, {name: 1 << 30 for name in grid.stores})
        _, repair_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    holder = grid.state.records[d.record_id].placement[3]
    assert remotes[holder].hashes[lost].digest() == d.share_hashes[3]  # byte-identical
    assert remotes[holder].sizes[lost] == share
    assert share > 40 * rebuild.REBUILD_SEGMENTS * 16 * KiB  # many batches of blocks
    assert verify_peak < share / 4, verify_peak
    assert repair_peak < share / 4, repair_peak


async def test_progress_counts_finished_checks(grid, tmp_path):
    d, _ = await _backed_up_large(grid, tmp_path)
    small = [r.descriptor for r in grid.state.records.values() if r.descriptor != d]
    grid.events.clear()
    await _verifier(grid).verify([d, *small], read_data=True)
    progress = [e for e in grid.events if isinstance(e, ev.Progress)]
    total = d.n * (1 + len(small))
    assert progress == [ev.Progress("verify", done, total) for done in range(1, total + 1)]


async def test_challenges_hashed_by_ranges_are_the_friends_answers():
    hasher = rangecheck.ShareHasher(CHALLENGES)
    share = os.urandom(100_000)
    for at in range(0, len(share), 7_000):
        hasher.feed(share[at : at + 7_000])
    assert all(prove_answer(nonce, share) == answer for nonce, answer in hasher.challenges())


async def test_repair_of_a_small_record_keeps_its_block_size(grid):
    """The whole-share path encodes again with the block size the shares were made with,
    not the default: otherwise the rebuilt share is a different share."""
    d, placed = _small_block_record(grid, 512 * KiB, 4 * KiB)
    assert erasure.share_size(d.length, d.k) <= WHOLE_SHARE
    lost = ShareKey(d.record_id, 1)
    await grid.stores[placed[1]].remove(lost)
    verifier = _verifier(grid)
    await verifier.repair(
        await verifier.verify([d], read_data=False), {n: 1 << 30 for n in grid.stores}
    )
    holder = grid.state.records[d.record_id].placement[1]
    erasure.verify_share(d, 1, await grid.stores[holder].get(lost))


async def test_repair_reads_around_a_source_friend_that_went_away(grid, tmp_path):
    """Away is not damage: the friend is named in FriendTrouble, its shares are not
    rejected, and the share is rebuilt from the others."""
    d, placed = await _backed_up_large(grid, tmp_path)
    await grid.stores[placed[3]].remove(ShareKey(d.record_id, 3))
    verifier = _verifier(grid)
    report = await verifier.verify([d], read_data=False)
    away = placed[0]
    grid.stores[away].online = False
    await verifier.repair(report, {n: 1 << 30 for n in grid.stores if n != away})
    assert report.repaired == 1
    assert any(isinstance(e, ev.FriendTrouble) and e.friend == away for e in grid.events)
    assert not any(isinstance(e, ev.ShareRejected) for e in grid.events)
    holder = grid.state.records[d.record_id].placement[3]
    erasure.verify_share(d, 3, await grid.stores[holder].get(ShareKey(d.record_id, 3)))


async def test_repair_is_not_misled_by_a_header_that_lies_about_the_block_size(grid, tmp_path):
    """The block size comes from a source's header, checked only by the hash at the share's
    end: a wrong one decodes garbage, which is never finished on a friend."""
    d, placed = await _backed_up_large(grid, tmp_path)
    await grid.stores[placed[3]].remove(ShareKey(d.record_id, 3))
    verifier = _verifier(grid)
    report = await verifier.verify([d], read_data=False)
    key = ShareKey(d.record_id, 0)
    share = bytearray(grid.stores[placed[0]]._shares[key])
    share[8:12] = (128 * KiB).to_bytes(4, "big")  # erasure.BLOCK_SIZE is 256 KiB
    grid.stores[placed[0]]._shares[key] = bytes(share)
    await verifier.repair(report, {n: 1 << 30 for n in grid.stores})
    assert ev.ShareRejected(placed[0], d.record_id, 0) in grid.events
    holder = grid.state.records[d.record_id].placement[3]
    erasure.verify_share(d, 3, await grid.stores[holder].get(ShareKey(d.record_id, 3)))
