"""Audits: every share a friend keeps is proved within ``audit_every``; a friend that
drops shares, or answers for a block it does not keep, is caught; old records too."""

from __future__ import annotations

import hashlib

import pytest
import trio

from p2pbackup.core import erasure
from p2pbackup.engine.audit import AuditBudget, Auditor
from p2pbackup.engine.state import BackupState, StoredRecord
from p2pbackup.engine.verify import Verifier, make_challenges
from p2pbackup.errors import FormatError
from p2pbackup.storage.auditlog import AuditLog, FriendAudit
from p2pbackup.storage.memorystore import MemoryShareStore
from p2pbackup.storage.store import ShareKey

pytestmark = pytest.mark.trio

DAY = 86400.0
WEEK = AuditBudget(every=7 * DAY, read=0.0)
FRIENDS = ("alice", "bob", "carol", "dave")


class Watched:
    """A friend's store that records which shares it was asked to prove, and can lie."""

    def __init__(self, store: MemoryShareStore) -> None:
        self._store = store
        self.name = store.name
        self.asked: list[ShareKey] = []
        self.lie: set[ShareKey] = set()  # blocks of these are answered with a byte changed

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def prove_blocks(self, key, blocks):
        self.asked.append(key)
        proofs = await self._store.prove_blocks(key, blocks)
        if key in self.lie:  # the right siblings, kept; the block itself, not
            data, path = proofs[0]
            proofs = [(bytes([data[0] ^ 1]) + data[1:], path)]
        return proofs


def _grid(records: int = 40, version: int = erasure.VERSION, size: int = 20_000):
    """``records`` records of 2-of-4 shares, share i on friend i; pairs for version 1."""
    state = BackupState()
    stores = {name: MemoryShareStore(name, 1 << 30, bytes(32)) for name in FRIENDS}
    descriptors = {}
    for number in range(records):
        rid = hashlib.blake2b(b"%d" % number, digest_size=32).digest()
        data = hashlib.shake_256(rid).digest(size + number)
        d, shares = erasure.encode(rid, data, 2, 4, version=version)
        placement = {}
        for index, share in enumerate(shares):
            stores[FRIENDS[index]]._shares[ShareKey(rid, index)] = share
            placement[index] = FRIENDS[index]
        state.record_stored(rid, StoredRecord(d, placement))
        if version == erasure.FLAT_VERSION:
            for index, pairs in enumerate(make_challenges(shares)):
                state.new_challenges(ShareKey(rid, index), pairs)
        descriptors[rid] = d
    return state, {n: Watched(s) for n, s in stores.items()}, descriptors


def _expected(state: BackupState, friend: str) -> set[ShareKey]:
    return {ShareKey(rid, i) for rid, r in state.records.items()
            for i, f in r.placement.items() if f == friend}  # fmt: skip


async def test_every_share_is_proved_within_audit_every():
    state, stores, descriptors = _grid()
    auditor = Auditor(descriptors, state, trio.CapacityLimiter(2))
    record, store = FriendAudit(), stores["bob"]
    sizes = []
    for day in range(7):  # a daily audit, a week
        before = len(store.asked)
        result = await auditor.audit(store, record, WEEK, day * DAY, _expected(state, "bob"))
        assert not result.missing and not result.damaged
        sizes.append(len(store.asked) - before)
    assert set(store.asked) >= _expected(state, "bob")  # every share, once a week at least
    assert max(sizes) < 20 and sum(sizes) < 60  # a slice a day, not everything every day
    assert record.passes == 1


async def test_a_friend_that_drops_a_tenth_of_its_shares_is_caught_at_once():
    state, stores, descriptors = _grid()
    auditor = Auditor(descriptors, state, trio.CapacityLimiter(2))
    dropped = sorted(_expected(state, "carol"), key=lambda k: k.record_id)[:4]
    for key in dropped:
        del stores["carol"]._store._shares[key]
    result = await auditor.audit(stores["carol"], FriendAudit(), WEEK, 0.0,
                                 _expected(state, "carol"))  # fmt: skip
    assert result.missing == set(dropped)


async def test_a_share_listed_but_not_kept_is_missing():
    """A friend that lists a share it no longer has: its proof fails, a second listing
    does not show it."""
    state, stores, descriptors = _grid(records=5)
    auditor = Auditor(descriptors, state, trio.CapacityLimiter(2))
    store = stores["alice"]
    key = next(iter(_expected(state, "alice")))
    real_list = store._store.list

    async def stale_list():
        listed = await real_list()
        if len(store.asked) == 0:  # the first listing still shows it
            return listed | {key}
        return listed

    del store._store._shares[key]
    store.list = stale_list
    result = await auditor.audit(store, FriendAudit(last=-1.0), AuditBudget(1.0, 0.0), 0.0)
    assert result.missing == {key}


async def test_a_friend_lying_about_a_block_is_caught():
    state, stores, descriptors = _grid(records=10)
    auditor = Auditor(descriptors, state, trio.CapacityLimiter(2))
    store = stores["dave"]
    store.lie = set(_expected(state, "dave"))
    result = await auditor.audit(store, FriendAudit(last=-1.0), AuditBudget(1.0, 0.0), 0.0)
    assert result.damaged == store.lie and result.proved == 0


async def test_a_damaged_share_is_caught_by_a_proof_of_any_block():
    state, stores, descriptors = _grid(records=10)
    auditor = Auditor(descriptors, state, trio.CapacityLimiter(2))
    bad = next(iter(_expected(state, "bob")))
    stores["bob"]._store.corrupt(bad)
    result = await auditor.audit(stores["bob"], FriendAudit(last=-1.0), AuditBudget(1.0, 0.0), 0.0)
    assert result.damaged == {bad} and result.proved == 9


async def test_old_records_are_proved_by_their_pairs_then_read_in_full():
    state, stores, descriptors = _grid(records=6, version=erasure.FLAT_VERSION)
    auditor = Auditor(descriptors, state, trio.CapacityLimiter(2))
    every = AuditBudget(1.0, 0.0)  # each audit proves every share
    store = stores["alice"]
    results = [await auditor.audit(store, FriendAudit(last=-1.0), every, 0.0) for _ in range(3)]
    # Two pairs each; then nothing proves them but a full read, which waits for its
    # budget (a second of OLD_READ does not cover one).
    assert [(r.proved, r.read, r.unproven) for r in results] == [(6, 0, 0), (6, 0, 0),
                                                                 (0, 0, 6)]  # fmt: skip
    bad = next(iter(_expected(state, "alice")))
    store._store.corrupt(bad)
    record = FriendAudit(last=-1.0)
    reads = AuditBudget(1.0, 0.0, old=1.0)  # a whole friend's bytes a day
    result = await auditor.audit(store, record, reads, DAY)  # a day later: read in full
    assert (result.proved, result.read, result.damaged) == (5, 5, {bad})
    assert len(state._challenges[next(iter(_expected(state, "alice") - {bad}))]) == 2  # anew


async def test_a_part_of_the_bytes_proved_is_read_in_full():
    state, stores, descriptors = _grid(records=20)
    auditor = Auditor(descriptors, state, trio.CapacityLimiter(2))
    record = FriendAudit(last=-1.0)  # a second ago: each audit proves every share
    result = await auditor.audit(stores["alice"], record, AuditBudget(1.0, 0.2), 0.0)
    assert result.proved == 20 and 2 <= result.read <= 4  # a fifth of the bytes
    stores["alice"]._store.corrupt(next(iter(_expected(state, "alice"))))
    caught = []
    for second in range(1, 6):
        result = await auditor.audit(stores["alice"], record, AuditBudget(1.0, 0.2), second)
        caught.append(bool(result.damaged))
    assert all(caught)  # by its block proof every time, whether or not it was read


async def test_audit_records_are_kept_on_disk(tmp_path):
    state, stores, descriptors = _grid(records=5)
    auditor = Auditor(descriptors, state, trio.CapacityLimiter(2))
    key = next(iter(_expected(state, "bob")))
    del stores["bob"]._store._shares[key]
    record = FriendAudit()
    await auditor.audit(stores["bob"], record, WEEK, 1234.0, _expected(state, "bob"))
    log = AuditLog(str(tmp_path / "audits.json"))
    log.save({"bob-key": record})
    again = log.load()["bob-key"]
    assert again == record and again.last == 1234.0
    assert again.missing == [f"{key.record_id.hex()}:{key.index}"]
    (tmp_path / "audits.json").write_text('{"version": 99, "friends": {}}')
    assert log.load() == {}  # another schema: audits start afresh


async def test_a_friend_without_block_proofs_is_read_not_taken_for_damaged():
    """An older friend answers PROVE_BLOCKS with a bad-request error: its shares are
    checked in full instead, and none is counted damaged."""
    state, stores, descriptors = _grid(records=4)
    auditor = Auditor(descriptors, state, trio.CapacityLimiter(2))
    store = stores["carol"]

    async def old_friend(key, blocks):
        raise FormatError("Friend carol: storage protocol: unknown message type 12")

    store.prove_blocks = old_friend
    record, budget = FriendAudit(last=-1.0), AuditBudget(1.0, 0.0, old=1.0)
    result = await auditor.audit(store, record, budget, 0.0)
    assert not result.damaged and (result.proved, result.unproven) == (0, 4)  # no budget yet
    result = await auditor.audit(store, record, budget, DAY)
    assert not result.damaged and (result.proved, result.read) == (4, 4)


@pytest.mark.parametrize("size", [200_000, 3 << 20])  # repaired whole; by segments (rebuild)
async def test_an_old_record_is_repaired_in_its_own_format(size):
    """A record stored before block trees: its lost share is made again as version 1,
    byte for byte, so the descriptor in the old manifest still names it."""
    state, stores, descriptors = _grid(records=1, version=erasure.FLAT_VERSION, size=size)
    (d,) = descriptors.values()
    lost = ShareKey(d.record_id, 2)
    original = stores["carol"]._store._shares.pop(lost)
    verifier = Verifier({n: s._store for n, s in stores.items()}, state, lambda e: None,
                        trio.CapacityLimiter(2))  # fmt: skip
    report = await verifier.verify([d], read_data=False)
    await verifier.repair(report, {name: 1 << 30 for name in FRIENDS})
    holder = state.records[d.record_id].placement[2]
    assert stores[holder]._store._shares[lost] == original


@pytest.mark.parametrize(("version", "pairs"), [(erasure.VERSION, 0), (erasure.FLAT_VERSION, 4)])
async def test_read_data_makes_proof_pairs_only_for_old_shares(version, pairs):
    """verify --read-data hashes pairs as it reads: two more for a version-1 share, none
    for version 2 (its blocks prove it: the passes would be wasted)."""
    state, stores, descriptors = _grid(records=2, version=version)
    verifier = Verifier({n: s._store for n, s in stores.items()}, state, lambda e: None,
                        trio.CapacityLimiter(2))  # fmt: skip
    report = await verifier.verify(descriptors.values(), read_data=True)
    assert all(len(h.good) == 4 for h in report.records.values())
    keys = [ShareKey(rid, i) for rid in descriptors for i in range(4)]
    assert [len(state._challenges.get(k, [])) for k in keys] == [pairs] * len(keys)
