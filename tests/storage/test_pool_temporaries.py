"""Temporary files at a friend's pool: an upload abandoned by its sender, or a write that
died, is reclaimed while the node runs; an upload in progress is not touched."""

from __future__ import annotations

import os
import time

import pytest

from p2pbackup.core import erasure
from p2pbackup.storage import sharepool
from p2pbackup.storage.sharepool import SharePool
from p2pbackup.storage.store import ShareKey

ALICE = b"\xaa" * 32
RID = b"\x07" * 32
SHARES = erasure.encode(RID, os.urandom(200_000), 2, 4)[1]
RESERVE = len(SHARES[0]) + 1000


class _Clock:
    """Stands in for the ``time`` module inside sharepool: monotonic time moves on command."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def time(self) -> float:
        return time.time()


@pytest.fixture
def clock(monkeypatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(sharepool, "time", fake)
    return fake


def _temporaries(root) -> list[str]:
    return sorted(n for _, _, names in os.walk(root) for n in names if n.startswith(".tmp-"))


def _start(pool: SharePool, index: int) -> None:
    """An upload of share ``index`` that sends its first half and stops."""
    share = SHARES[index]
    pool.put_part(ALICE, ShareKey(RID, index), 0, RESERVE, False, share[: len(share) // 2])


def _leftover(root, name: str, age: float) -> None:
    folder = root / ALICE.hex() / "shares" / "ff"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"half a share")
    then = time.time() - age
    os.utime(folder / name, (then, then))


def test_a_stale_temporary_is_reclaimed_and_a_fresh_one_kept(tmp_path):
    pool = SharePool(str(tmp_path), lambda owner: 1 << 20)
    _leftover(tmp_path, ".tmp-stale", sharepool.STALE_TEMP + 60)
    _leftover(tmp_path, ".tmp-fresh", 60)  # a write another thread may still be making
    _start(pool, 0)
    (upload,) = [n for n in _temporaries(tmp_path) if n not in (".tmp-stale", ".tmp-fresh")]
    path = next(os.path.join(d, upload) for d, _, ns in os.walk(tmp_path) if upload in ns)
    old = time.time() - 2 * sharepool.STALE_TEMP
    os.utime(path, (old, old))  # an upload in progress is kept whatever its file's age

    assert pool.reclaim_temporaries() == 1
    assert _temporaries(tmp_path) == sorted([".tmp-fresh", upload])
    share = SHARES[0]
    half = len(share) // 2
    assert pool.put_part(ALICE, ShareKey(RID, 0), half, RESERVE, True, share[half:])
    assert pool.get(ALICE, ShareKey(RID, 0)) == share


def test_requests_sweep_stale_temporaries_once_an_hour(tmp_path, clock):
    pool = SharePool(str(tmp_path), lambda owner: 1 << 20)
    _leftover(tmp_path, ".tmp-stale", sharepool.STALE_TEMP + 60)
    pool.stat(ALICE)
    assert _temporaries(tmp_path) == [".tmp-stale"]  # the start-up walk was just made
    clock.ahead = sharepool.SWEEP_EVERY + 1
    pool.stat(ALICE)
    assert _temporaries(tmp_path) == []


def test_an_abandoned_upload_gives_its_room_back_when_asked(tmp_path, clock):
    pool = SharePool(str(tmp_path), lambda owner: 1 << 20)
    _start(pool, 0)
    assert pool.stat(ALICE).used == RESERVE  # held for the sender while it sends
    clock.ahead = sharepool.UPLOAD_IDLE + 1
    # The owner's next question finds the room given back and the file gone: no further
    # upload is needed to notice (the sender was stopped by Ctrl-C and never came back).
    assert pool.stat(ALICE).used == 0
    assert _temporaries(tmp_path) == []
    _start(pool, 1)  # a fresh upload keeps its room and its file
    assert pool.stat(ALICE).used == RESERVE
    assert len(_temporaries(tmp_path)) == 1
    assert pool.list(ALICE) == frozenset()
