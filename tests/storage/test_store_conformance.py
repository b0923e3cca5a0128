"""One suite every ShareStore passes: what a friend's pool promises the owner.

Each implementation is a parameter of ``make_store``: the in-memory pool of
the test grid, the disk pool behind the storage service, that pool reached
over a real libp2p connection on 127.0.0.1 (``RemoteShareStore`` to a
``StorageService``), and the bandwidth-limit wrapper the daemon puts around
it. A store that breaks a promise breaks it for the engine too.
"""

from __future__ import annotations

import os

import pytest

from p2pbackup.core import erasure, head, merkle
from p2pbackup.core.head import HeadBody
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.engine.throttle import Throttle, ThrottledStore
from p2pbackup.errors import (
    IntegrityError,
    NoBlockProofs,
    OtherVersionKept,
    P2PBackupError,
    PeerError,
    StorageError,
)
from p2pbackup.net.host import listen_addrs
from p2pbackup.storage.memorystore import MemoryShareStore
from p2pbackup.storage.sharepool import SharePool, prove_answer
from p2pbackup.storage.store import ShareKey
from tests.net.conftest import LOOPBACK, OWNER, Friend, device

pytestmark = pytest.mark.trio

KEYS = OwnerKeys.from_secret(bytes(range(32)))
assert KEYS.owner_id == OWNER.owner_id  # the owner the friend of tests/net knows
EMPTY = HeadBody(frozenset(), frozenset(), frozenset(), None)


class _PoolAsStore:
    """The disk pool seen by one owner, as the storage service exposes it."""

    name = "friend"

    def __init__(self, pool: SharePool) -> None:
        self._pool = pool

    def __getattr__(self, op):
        method = getattr(self._pool, op)

        async def call(*args):
            return method(KEYS.owner_id, *args)

        return call


class _Stores:
    """Makes the store under test (``make_store(quota)``) and damages a share it keeps, as
    a failing disk would (``damage(key)``)."""

    def __init__(self, kind: str, root, remote: tuple[Friend, object] | None = None) -> None:
        self.kind = kind
        self._root = root
        self._remote = remote  # a friend listening, and the device's store connected to it
        self._memory: MemoryShareStore | None = None
        self._pool: SharePool | None = None

    async def make(self, quota: int):
        if self.kind in ("memory", "throttled"):
            self._memory = MemoryShareStore("friend", quota, KEYS.owner_id)
            if self.kind == "memory":
                return self._memory
            # A second's worth goes at once, so the suite runs at full speed through the
            # wrapper; tests/engine/test_throttle.py checks the rate itself.
            return ThrottledStore(self._memory, Throttle(1 << 40))
        if self.kind == "disk":
            self._pool = SharePool(str(self._root / "pool"), lambda owner: quota)
            return _PoolAsStore(self._pool)
        friend, store = self._remote
        friend.quotas[KEYS.owner_id] = quota
        self._pool = friend.pool
        return store

    def damage(self, key: ShareKey) -> None:
        if self._memory is not None:
            self._memory.corrupt(key)
            return
        folder, name = self._pool._share_path(KEYS.owner_id, key)
        with open(os.path.join(folder, name), "r+b") as f:
            f.seek(os.path.getsize(f.name) // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 1]))


@pytest.fixture(params=["memory", "disk", "remote", "throttled"])
async def stores(request, tmp_path):
    if request.param != "remote":
        yield _Stores(request.param, tmp_path)
        return
    friend = Friend(str(tmp_path / "pool"), {KEYS.owner_id: 0})
    async with friend.host.run(listen_addrs(LOOPBACK)), device(OWNER, friend) as store:
        yield _Stores(request.param, tmp_path, (friend, store))


@pytest.fixture
def make_store(stores):
    return stores.make


def _shares(data: bytes = b"some record bytes" * 100, record_id: bytes = b"\x07" * 32):
    return erasure.encode(record_id, data, 2, 4)


async def test_put_get_list_stat_remove(make_store):
    store = await make_store(1 << 20)
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
    store = await make_store(1 << 20)
    _, shares = _shares()
    bad = bytearray(shares[0])
    bad[60] ^= 1
    with pytest.raises(IntegrityError):
        await store.put(ShareKey(b"\x07" * 32, 0), bytes(bad))
    assert await store.list() == frozenset()


async def test_a_share_under_the_wrong_key_is_refused(make_store):
    store = await make_store(1 << 20)
    _, shares = _shares()
    with pytest.raises(P2PBackupError):
        await store.put(ShareKey(b"\x07" * 32, 2), shares[0])


async def test_the_quota_is_enforced_with_nothing_half_written(make_store):
    _, shares = _shares()
    store = await make_store(len(shares[0]) + 10)
    await store.put(ShareKey(b"\x07" * 32, 0), shares[0])
    with pytest.raises(StorageError, match="room"):
        await store.put(ShareKey(b"\x07" * 32, 1), shares[1])
    assert await store.list() == frozenset({ShareKey(b"\x07" * 32, 0)})


async def test_a_missing_share_is_a_peer_error(make_store):
    store = await make_store(1 << 20)
    with pytest.raises(PeerError):
        await store.get(ShareKey(b"\x01" * 32, 0))


async def test_the_head_never_rolls_back(make_store):
    store = await make_store(1 << 20)
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
    store = await make_store(1 << 20)
    stranger = OwnerKeys.from_secret(bytes(32))
    forged = head.seal_head(stranger.signing_key, stranger.head_key, 9, EMPTY)
    with pytest.raises(IntegrityError):
        await store.put_head(forged)
    assert await store.get_head() is None


def _pieces(share: bytes, size: int = 1000):
    return [share[i : i + size] for i in range(0, len(share), size)]


async def test_a_share_sent_in_pieces_is_kept_whole_and_read_in_ranges(make_store):
    store = await make_store(1 << 20)
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
    store = await make_store(20_000)
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


async def test_prove_answers_what_the_owner_computes_from_the_share(make_store):
    store = await make_store(1 << 20)
    _, shares = _shares()
    for index in (0, 1):
        await store.put(ShareKey(b"\x07" * 32, index), shares[index])
    short, long = b"n" * 16, bytes(range(64))  # the smallest and the largest nonce
    for nonce in (short, long):
        expected = prove_answer(nonce, shares[0])  # what the owner kept at upload
        assert await store.prove(ShareKey(b"\x07" * 32, 0), nonce) == expected
        assert await store.prove(ShareKey(b"\x07" * 32, 0), nonce) == expected  # again: same
    # Another nonce or another share gives another answer: one cannot stand for the other.
    assert prove_answer(short, shares[0]) != prove_answer(long, shares[0])
    assert await store.prove(ShareKey(b"\x07" * 32, 1), short) != prove_answer(short, shares[0])


async def test_prove_of_a_missing_share_is_a_peer_error_and_a_bad_nonce_is_refused(make_store):
    store = await make_store(1 << 20)
    _, shares = _shares()
    await store.put(ShareKey(b"\x07" * 32, 0), shares[0])
    with pytest.raises(PeerError):
        await store.prove(ShareKey(b"\x07" * 32, 1), b"n" * 16)
    for nonce in (b"n" * 15, b"n" * 65):  # outside 16..64 bytes (docs/format.md, PROVE)
        with pytest.raises(P2PBackupError):
            await store.prove(ShareKey(b"\x07" * 32, 0), nonce)
    assert await store.prove(ShareKey(b"\x07" * 32, 0), b"n" * 16)  # the stream is still good


async def test_a_damaged_share_fails_its_proof(stores):
    store = await stores.make(1 << 20)
    _, shares = _shares()
    key = ShareKey(b"\x07" * 32, 0)
    await store.put(key, shares[0])
    nonce = b"n" * 32
    expected = prove_answer(nonce, shares[0])
    assert await store.prove(key, nonce) == expected
    stores.damage(key)  # a bit flips on the friend's disk
    assert await store.prove(key, nonce) != expected
    assert await store.get(key) != shares[0]  # and the owner, who checks, sees it


@pytest.mark.parametrize("version", [erasure.TREE_VERSION, erasure.VERSION])
async def test_block_proofs_check_against_the_share_hash(make_store, version):
    """Any 4 KiB block of a share, as the leaf of its tree that holds it, with its siblings:
    what an audit asks (PROVE_BLOCKS), checked without knowing the share's version."""
    store = await make_store(1 << 20)
    descriptor, shares = erasure.encode(b"\x07" * 32, os.urandom(100_000), 2, 4, version=version)
    key = ShareKey(b"\x07" * 32, 1)
    await store.put(key, shares[1])
    hashed = len(shares[1]) - merkle.HASH_SIZE
    blocks = [0, merkle.block_count(hashed) - 1, 2, 5]
    proofs = await store.prove_blocks(key, blocks)
    assert len(proofs) == 4
    tree = merkle.TREES[version]
    for block, (data, path) in zip(blocks, proofs, strict=True):
        merkle.verify_block(descriptor.share_hashes[1], hashed, block, data, path)
        start = block * merkle.BLOCK // tree.leaf_size * tree.leaf_size
        assert data == shares[1][:hashed][start : start + tree.leaf_size]  # the leaf holding it
    with pytest.raises(PeerError):
        await store.prove_blocks(ShareKey(b"\x07" * 32, 0), [0])  # not kept there
    with pytest.raises(P2PBackupError):
        await store.prove_blocks(key, [merkle.block_count(hashed)])  # no such block
    assert await store.prove_blocks(key, [1])  # the stream is still good


async def test_a_damaged_share_fails_its_block_proofs(make_store, stores):
    store = await make_store(1 << 20)
    descriptor, shares = _shares(os.urandom(30_000))
    key = ShareKey(b"\x07" * 32, 0)
    await store.put(key, shares[0])
    stores.damage(key)  # one byte in the middle: every block's proof now fails
    hashed = len(shares[0]) - merkle.HASH_SIZE
    ((data, path),) = await store.prove_blocks(key, [0])
    with pytest.raises(IntegrityError):
        merkle.verify_block(descriptor.share_hashes[0], hashed, 0, data, path)


async def test_a_share_kept_in_another_format_version_is_said_so(make_store):
    """Put again in another version, whole or in pieces: the friend keeps what it has and
    says so (OtherVersionKept), and the kept share's version byte can be read."""
    store = await make_store(1 << 20)
    _, old = erasure.encode(b"\x07" * 32, b"x" * 9000, 2, 4, version=erasure.TREE_VERSION)
    _, new = erasure.encode(b"\x07" * 32, b"x" * 9000, 2, 4)
    for index in (0, 1):
        await store.put(ShareKey(b"\x07" * 32, index), old[index])
    await store.put(ShareKey(b"\x07" * 32, 0), old[0])  # the same version: idempotent
    with pytest.raises(OtherVersionKept):
        await store.put(ShareKey(b"\x07" * 32, 0), new[0])
    assert not await store.put_part(ShareKey(b"\x07" * 32, 1), 0, len(old[1]), False,
                                    old[1][:1000])  # fmt: skip
    with pytest.raises(OtherVersionKept):
        await store.put_part(ShareKey(b"\x07" * 32, 1), 0, len(new[1]), False, new[1][:1000])
    assert await store.get(ShareKey(b"\x07" * 32, 0)) == old[0]  # nothing was replaced
    assert await store.get_range(ShareKey(b"\x07" * 32, 1), 4, 1) == bytes([2])


async def test_a_version1_share_has_no_block_proofs(make_store):
    store = await make_store(1 << 20)
    _, shares = erasure.encode(b"\x07" * 32, b"old" * 500, 2, 4, version=erasure.FLAT_VERSION)
    key = ShareKey(b"\x07" * 32, 0)
    await store.put(key, shares[0])  # still accepted: repairs of old records write them
    with pytest.raises(NoBlockProofs):
        await store.prove_blocks(key, [0])
