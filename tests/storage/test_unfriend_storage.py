"""What unfriending leaves on disk: a tombstone in the catalog that a new pairing
outranks, and the friend's pool gone, with the pool's own usage count."""

from __future__ import annotations

import os

from p2pbackup.core import erasure
from p2pbackup.storage.catalog import Catalog
from p2pbackup.storage.sharepool import SharePool
from p2pbackup.storage.store import ShareKey

ALICE, BOB = b"\xaa" * 32, b"\xbb" * 32
RID = b"\x07" * 32


def test_a_removed_friend_leaves_a_tombstone_that_pairing_again_outranks(tmp_path):
    catalog = Catalog(str(tmp_path / "catalog.sqlite"))
    catalog.add_friend(ALICE, "alice", "node-a", [], b"cert", 100, 100)
    catalog.remove_friend(ALICE, removed_at=4_000_000_000)  # even a removal dated ahead
    assert catalog.friend(ALICE) is None
    assert catalog.removed_friends() == [(ALICE, "alice", 4_000_000_000)]
    catalog.remove_friend(BOB)  # not a friend: nothing to remember
    assert catalog.removed_at(BOB) is None
    catalog.add_friend(ALICE, "alice", "node-a", [], b"cert", 100, 100)
    again = catalog.friend(ALICE)
    assert again is not None and again.added_at > 4_000_000_000
    assert catalog.removed_friends() == []
    catalog.close()


def test_dropping_an_owner_frees_its_room_at_once_and_leaves_others(tmp_path):
    pool = SharePool(str(tmp_path), lambda owner: 1 << 20)
    shares = erasure.encode(RID, b"record bytes" * 500, 2, 4)[1]
    pool.put(ALICE, ShareKey(RID, 0), shares[0])
    pool.put(BOB, ShareKey(RID, 1), shares[1])
    assert pool.drop_owner(ALICE) == len(shares[0])
    assert pool.used(ALICE) == 0 and pool.list(ALICE) == frozenset()
    assert not os.path.exists(tmp_path / ALICE.hex())
    assert pool.used(BOB) == len(shares[1]) and pool.drop_owner(b"\xcc" * 32) == 0
    assert sorted(os.listdir(tmp_path)) == [BOB.hex()]


def test_a_drop_cut_short_by_a_crash_is_finished_at_the_next_start(tmp_path):
    leftover = tmp_path / f".tmp-dropped-{ALICE.hex()}" / "shares" / "07"
    leftover.mkdir(parents=True)
    (leftover / "x.0").write_bytes(b"share")
    SharePool(str(tmp_path), lambda owner: 1 << 20)
    assert os.listdir(tmp_path) == []
