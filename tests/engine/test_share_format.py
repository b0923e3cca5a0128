"""Which share format a backup writes, and what it does with a share a friend kept in
another one: every friend of the run must read the format written, and a descriptor
must name the shares its friends really keep."""

from __future__ import annotations

import random

import pytest

from p2pbackup.cli.demo import same_tree
from p2pbackup.core import erasure
from p2pbackup.engine.backup import STREAM_FILE
from p2pbackup.engine.state import BackupState
from p2pbackup.storage.store import ShareKey

pytestmark = pytest.mark.trio


def _source(tmp_path, seed: int = 3):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    rng = random.Random(seed)
    for number in range(5):
        (src / f"small{number}.txt").write_bytes(rng.randbytes(20_000 + number))
    (src / "big.bin").write_bytes(rng.randbytes(STREAM_FILE + 300_000))  # streamed
    return src


def _kept_versions(grid) -> dict[int, int]:
    """How many shares of each format version the friends keep."""
    counts: dict[int, int] = {}
    for store in grid.stores.values():
        for share in store._shares.values():
            counts[share[4]] = counts.get(share[4], 0) + 1
    return counts


def _every_placed_share_matches(grid) -> int:
    checked = 0
    for record in grid.state.records.values():
        d = record.descriptor
        for index, friend in record.placement.items():
            share = grid.stores[friend]._shares[ShareKey(d.record_id, index)]
            erasure.verify_share(d, index, share)
            checked += 1
    return checked


async def test_one_friend_reading_format_2_makes_the_run_write_format_2(grid, tmp_path):
    src = _source(tmp_path)
    grid.stores["friend2"].share_format = erasure.TREE_VERSION  # an older friend
    await grid.backup(src)
    assert set(_kept_versions(grid)) == {erasure.TREE_VERSION}
    grid.stores["friend2"].share_format = erasure.VERSION  # it was updated
    (src / "new.txt").write_bytes(b"written after the update" * 1000)
    await grid.backup(src)
    assert set(_kept_versions(grid)) == {erasure.TREE_VERSION, erasure.VERSION}
    await grid.restore_all(tmp_path / "restored")
    assert same_tree(str(src), str(tmp_path / "restored" / "snap1" / "src"))


async def test_every_friend_reading_format_3_gets_format_3(grid, tmp_path):
    await grid.backup(_source(tmp_path))
    assert set(_kept_versions(grid)) == {erasure.VERSION}


@pytest.mark.parametrize("lost", [False, True], ids=["all-kept", "one-lost"])
async def test_shares_kept_in_another_version_are_the_ones_described(grid, tmp_path, lost):
    """Another device of the same owner (a fresh state, the same keys) backs up the same
    files after the friends were updated: its records have the same ids, the friends keep
    the format-2 shares the first device wrote, and its descriptors name those. A share
    lost meanwhile is sent again in the record's format, whole or streamed, so every
    share of a record stays of one format (what a repair expects)."""
    src = _source(tmp_path)
    for store in grid.stores.values():
        store.share_format = erasure.TREE_VERSION
    await grid.backup(src)
    before = _kept_versions(grid)
    assert set(before) == {erasure.TREE_VERSION}
    if lost:  # share 0 of every record, wherever it is
        for store in grid.stores.values():
            for key in [key for key in store._shares if key.index == 0]:
                store._used -= len(store._shares.pop(key))
    for store in grid.stores.values():
        store.share_format = erasure.VERSION
    grid.state = BackupState()  # the other device, as far as the uploader can tell
    grid.restart = lambda: None  # and it stays that device for the next backup
    await grid.backup(src)
    # Whole records and the streamed one: every share a descriptor places matches it.
    assert _every_placed_share_matches(grid) >= 3 * 4
    # Nothing replaced: only the new snapshot's manifest is new (and the first device's
    # manifest, which this one does not store, stays one share short).
    assert _kept_versions(grid) == {erasure.TREE_VERSION: before[2] - lost, erasure.VERSION: 4}
    for record in grid.state.records.values():
        d = record.descriptor
        kept = {grid.stores[f]._shares[ShareKey(d.record_id, i)][4]
                for i, f in record.placement.items()}  # fmt: skip
        assert len(kept) == 1 and len(record.placement) == 4
    await grid.restore_all(tmp_path / "restored")
    assert same_tree(str(src), str(tmp_path / "restored" / "snap1" / "src"))


async def test_a_record_takes_a_kept_version_only_if_every_friend_of_the_run_reads_it():
    from p2pbackup.engine.streaming import FriendFailed, KeptInOtherVersion
    from p2pbackup.engine.uploader import _RecordVersion

    version = _RecordVersion(erasure.TREE_VERSION)  # a run with a friend before format 3
    assert not version.adopt(KeptInOtherVersion("a", 0, erasure.VERSION))  # that one fails
    assert version.now == erasure.TREE_VERSION
    assert version.adopt(KeptInOtherVersion("b", 1, erasure.FLAT_VERSION))  # everyone reads 1
    assert version.now == erasure.FLAT_VERSION
    assert not version.adopt(KeptInOtherVersion("c", 2, erasure.TREE_VERSION))  # disagrees
    assert version.adopt(KeptInOtherVersion("d", 3, erasure.FLAT_VERSION))
    assert not version.adopt(FriendFailed("e", "went away"))
    assert version.now == erasure.FLAT_VERSION
