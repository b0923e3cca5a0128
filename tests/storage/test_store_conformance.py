"""One suite every ShareStore passes: what a friend's pool promises the owner.

Each implementation is a parameter of ``make_store``: the in-memory pool of
the test grid and the disk pool behind the storage service.
"""

from __future__ import annotations

import pytest

from p2pbackup.core import erasure, head
from p2pbackup.core.head import HeadBody
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.errors import IntegrityError, P2PBackupError, PeerError, StorageError
from p2pbackup.storage.memorystore import MemoryShareStore
from p2pbackup.storage.sharepool import SharePool
from p2pbackup.storage.store import ShareKey

pytestmark = pytest.mark.trio

KEYS = OwnerKeys.from_secret(bytes(range(32)))
EMPTY = HeadBody(frozenset(), frozenset(), frozenset(), None)


class _PoolAsStore:
    """The disk pool seen by one owner, as the storage service will expose it."""

    name = "friend"

    def __init__(self, pool: SharePool) -> None:
        self._pool = pool

    def __getattr__(self, op):
        method = getattr(self._pool, op)

        async def call(*args):
            return method(KEYS.owner_id, *args)

        return call


@pytest.fixture(params=["memory", "disk"])
def make_store(request, tmp_path):
    if request.param == "memory":
        return lambda quota: MemoryShareStore("friend", quota, KEYS.owner_id)
    return lambda quota: _PoolAsStore(SharePool(str(tmp_path / "pool"), lambda owner: quota))


def _shares(data: bytes = b"some record bytes" * 100, record_id: bytes = b"\x07" * 32):
    return erasure.encode(record_id, data, 2, 4)


async def test_put_get_list_stat_remove(make_store):
    store = make_store(1 << 20)
    _, shares = _shares()
    key = ShareKey(b"\x07" * 32, 1)
    await store.put(key, shares[1])
    await store.put(key, shares[1])  # idempotent
    assert await store.get(key) == shares[1]
    assert await store.list() == frozenset({key})
    assert (await store.stat()).used == len(shares[1])
    await store.remove(key)
    await store.remove(key)  # removing a missing share is fine
    assert await store.list() == frozenset()
    assert (await store.stat()).used == 0


async def test_a_tampered_share_is_refused(make_store):
    store = make_store(1 << 20)
    _, shares = _shares()
    bad = bytearray(shares[0])
    bad[60] ^= 1
    with pytest.raises(IntegrityError):
        await store.put(ShareKey(b"\x07" * 32, 0), bytes(bad))
    assert await store.list() == frozenset()


async def test_a_share_under_the_wrong_key_is_refused(make_store):
    store = make_store(1 << 20)
    _, shares = _shares()
    with pytest.raises(P2PBackupError):
        await store.put(ShareKey(b"\x07" * 32, 2), shares[0])


async def test_the_quota_is_enforced_with_nothing_half_written(make_store):
    _, shares = _shares()
    store = make_store(len(shares[0]) + 10)
    await store.put(ShareKey(b"\x07" * 32, 0), shares[0])
    with pytest.raises(StorageError, match="room"):
        await store.put(ShareKey(b"\x07" * 32, 1), shares[1])
    assert await store.list() == frozenset({ShareKey(b"\x07" * 32, 0)})


async def test_a_missing_share_is_a_peer_error(make_store):
    store = make_store(1 << 20)
    with pytest.raises(PeerError):
        await store.get(ShareKey(b"\x01" * 32, 0))


async def test_the_head_never_rolls_back(make_store):
    store = make_store(1 << 20)
    assert await store.get_head() is None
    newer = head.seal_head(KEYS.signing_key, KEYS.head_key, 5, EMPTY)
    older = head.seal_head(KEYS.signing_key, KEYS.head_key, 4, EMPTY)
    await store.put_head(newer)
    with pytest.raises(IntegrityError):
        await store.put_head(older)
    with pytest.raises(IntegrityError):
        await store.put_head(newer)  # same number: compare-and-swap needs a higher one
    assert await store.get_head() == newer


async def test_a_head_signed_by_someone_else_is_refused(make_store):
    store = make_store(1 << 20)
    stranger = OwnerKeys.from_secret(bytes(32))
    forged = head.seal_head(stranger.signing_key, stranger.head_key, 9, EMPTY)
    with pytest.raises(IntegrityError):
        await store.put_head(forged)
    assert await store.get_head() is None


def _pieces(share: bytes, size: int = 1000):
    return [share[i : i + size] for i in range(0, len(share), size)]


async def test_a_share_sent_in_pieces_is_kept_whole_and_read_in_ranges(make_store):
    store = make_store(1 << 20)
    _, shares = _shares(b"x" * 9000)
    key = ShareKey(b"\x07" * 32, 1)
    pieces = _pieces(shares[1])
    offset = 0
    for number, piece in enumerate(pieces):
        assert await store.put_part(key, offset, len(shares[1]) + 100, number == len(pieces) - 1,
                                    piece)  # fmt: skip
        offset += len(piece)
    assert await store.get(key) == shares[1]
    assert await store.get_range(key, 10, 20) == shares[1][10:30]
    assert (await store.stat()).used == len(shares[1])  # the reservation became the real size
    assert not await store.put_part(key, 0, len(shares[1]), False, pieces[0])  # kept: stop


async def test_pieces_out_of_order_or_damaged_or_too_large_are_refused(make_store):
    store = make_store(20_000)
    _, shares = _shares(b"x" * 9000)
    key = ShareKey(b"\x07" * 32, 0)
    share = bytearray(shares[0])
    with pytest.raises(IntegrityError):
        await store.put_part(key, 500, len(share), False, bytes(share[500:1000]))
    with pytest.raises(StorageError, match="room"):
        await store.put_part(key, 0, 30_000, False, bytes(share[:1000]))
    share[2000] ^= 1
    await store.put_part(key, 0, len(share), False, bytes(share[:1000]))
    with pytest.raises(IntegrityError):
        await store.put_part(key, 1000, len(share), True, bytes(share[1000:]))
    assert key not in await store.list() and (await store.stat()).used == 0
