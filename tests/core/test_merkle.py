"""A share's block tree: any block proves against the share hash; nothing else does."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core import erasure, merkle
from p2pbackup.core.merkle import LEAF_SIZE, MerkleBuilder, leaf_count, leaf_range, verify_leaf
from p2pbackup.errors import IntegrityError


def _data(size: int) -> bytes:
    return hashlib.shake_256(b"merkle").digest(size)


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962's tree, by its definition: split at the largest power of two below n."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(_reference_root(leaves[:split]), _reference_root(leaves[split:]))


def _tree(data: bytes, want: list[int], cuts: list[int] = ()) -> MerkleBuilder:
    builder = MerkleBuilder(want)
    at = 0
    for cut in sorted(cuts):
        builder.feed(data[at:cut])
        at = cut
    builder.feed(data[at:])
    return builder


def test_vector():
    """Pinned: three full leaves and a short one; the proof of leaf 2."""
    data = _data(3 * LEAF_SIZE + 100)
    builder = _tree(data, [2])
    assert builder.digest().hex() == (
        "b5b9f5c9a6fff47067201f15da6ebe309565596de3a62dc461c42e697f5fbe4d"
    )
    assert [p.hex() for p in builder.proof(2)] == [
        "52a6a820d09899e4c2f592e7ea649f147230d5eb002117e6344b048aa9cae46b",
        "c16d00e7543bae02895344883fabbd765a0dd65b679691d4bffbf6ea04900ff5",
    ]


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(0, 9 * LEAF_SIZE + 7),
    pick=st.data(),
)
def test_every_block_proves_and_the_root_is_rfc6962s(size, pick):
    data = _data(size)
    count = leaf_count(size)
    want = pick.draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=3))
    cuts = pick.draw(st.lists(st.integers(0, size), max_size=4))
    builder = _tree(data, want, cuts)
    root = builder.digest()
    leaves = [merkle.leaf_hash(data[i * LEAF_SIZE : (i + 1) * LEAF_SIZE]) for i in range(count)]
    assert root == merkle.root_hash(size, _reference_root(leaves))
    for leaf in want:
        start, length = leaf_range(size, leaf)
        verify_leaf(root, size, leaf, data[start : start + length], builder.proof(leaf))


@settings(max_examples=80, deadline=None)
@given(
    size=st.integers(1, 9 * LEAF_SIZE + 7),
    pick=st.data(),
)
def test_any_tampered_block_or_path_is_caught(size, pick):
    data = _data(size)
    count = leaf_count(size)
    leaf = pick.draw(st.integers(0, count - 1))
    builder = _tree(data, [leaf])
    root = builder.digest()
    start, length = leaf_range(size, leaf)
    block, path = data[start : start + length], builder.proof(leaf)
    how = pick.draw(st.sampled_from(["block", "path", "drop", "extra", "index", "length"]))
    if how == "block":
        bit = pick.draw(st.integers(0, len(block) * 8 - 1))
        block = bytearray(block)
        block[bit // 8] ^= 1 << (bit % 8)
        block = bytes(block)
    elif how == "path":
        if not path:
            return  # one leaf: the block is the whole proof, checked above
        step = pick.draw(st.integers(0, len(path) - 1))
        path = [*path[:step], bytes(32 - 1) + b"\1", *path[step + 1 :]]
    elif how == "drop":
        if not path:
            return
        path = path[:-1]
    elif how == "extra":
        path = [*path, bytes(32)]
    elif how == "index":
        if count == 1:
            return
        other = pick.draw(st.integers(0, count - 1).filter(lambda i: i != leaf))
        leaf = other
    else:
        size += pick.draw(st.sampled_from([-1, 1, LEAF_SIZE]))
    with pytest.raises(IntegrityError):
        verify_leaf(root, size, leaf, block, path)


def test_a_flat_share_hash_cannot_be_proved_as_a_tree():
    """A version-1 share's hash is not a tree root: a friend cannot answer for one."""
    descriptor, shares = erasure.encode(bytes(32), b"x" * 100, 1, 2, version=erasure.FLAT_VERSION)
    hashed = shares[0][: -merkle.HASH_SIZE]
    with pytest.raises(IntegrityError):
        verify_leaf(descriptor.share_hashes[0], len(hashed), 0, hashed, [])


def test_a_version2_share_hash_is_its_tree_root():
    descriptor, shares = erasure.encode(bytes(32), _data(3 * 4096 * 3), 3, 5, block_size=4096)
    hashed = shares[4][: -merkle.HASH_SIZE]
    builder = _tree(hashed, [1])
    assert builder.digest() == descriptor.share_hashes[4]
    start, length = leaf_range(len(hashed), 1)
    verify_leaf(descriptor.share_hashes[4], len(hashed), 1, hashed[start : start + length],
                builder.proof(1))  # fmt: skip
