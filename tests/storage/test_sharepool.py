"""The disk pool: atomic writes, crash leftovers, a full disk, isolation between owners."""

from __future__ import annotations

import errno
import os

import pytest

from p2pbackup.core import erasure
from p2pbackup.errors import PeerError, StorageError
from p2pbackup.storage import sharepool
from p2pbackup.storage.sharepool import SharePool, prove_answer
from p2pbackup.storage.store import ShareKey

ALICE, BOB = b"\xaa" * 32, b"\xbb" * 32
RID = b"\x07" * 32


def _share(index: int = 0) -> bytes:
    return erasure.encode(RID, b"record bytes" * 500, 2, 4)[1][index]


def _files(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, n), root) for d, _, ns in os.walk(root) for n in ns
    )


def test_leftovers_of_a_killed_write_are_removed_at_start(tmp_path):
    pool = SharePool(str(tmp_path), lambda owner: 1 << 20)
    pool.put(ALICE, ShareKey(RID, 0), _share(0))
    folder = os.path.dirname(tmp_path / ALICE.hex() / "shares" / RID.hex()[:2] / "x")
    (tmp_path / folder / ".tmp-half-written").write_bytes(b"torn")
    SharePool(str(tmp_path), lambda owner: 1 << 20)
    assert not any(".tmp-" in f for f in _files(tmp_path))
    assert SharePool(str(tmp_path), lambda o: 1 << 20).used(ALICE) == len(_share(0))


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    pool = SharePool(str(tmp_path), lambda owner: 1 << 20)
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sharepool.os, "write", full)
    with pytest.raises(StorageError, match="disk is full"):
        pool.put(ALICE, ShareKey(RID, 0), _share(0))
    monkeypatch.undo()
    assert [f for f in _files(tmp_path) if "shares" in f] == []
    assert pool.used(ALICE) == 0
    pool.put(ALICE, ShareKey(RID, 0), _share(0))  # and it works once there is room


def test_owners_are_isolated(tmp_path):
    pool = SharePool(str(tmp_path), lambda owner: 1 << 20)
    pool.put(ALICE, ShareKey(RID, 0), _share(0))
    assert pool.list(BOB) == frozenset()
    with pytest.raises(PeerError):
        pool.get(BOB, ShareKey(RID, 0))
    assert pool.stat(BOB).used == 0
    pool.remove(BOB, ShareKey(RID, 0))
    assert pool.get(ALICE, ShareKey(RID, 0)) == _share(0)


def test_prove_answers_only_with_the_share(tmp_path):
    pool = SharePool(str(tmp_path), lambda owner: 1 << 20)
    pool.put(ALICE, ShareKey(RID, 1), _share(1))
    nonce = b"n" * 32
    assert pool.prove(ALICE, ShareKey(RID, 1), nonce) == prove_answer(nonce, _share(1))
    assert pool.prove(ALICE, ShareKey(RID, 1), b"m" * 32) != prove_answer(nonce, _share(1))
    with pytest.raises(PeerError):
        pool.prove(ALICE, ShareKey(RID, 1), b"short")
