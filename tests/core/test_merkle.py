"""A share's block tree: any block proves against the share hash; nothing else does."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core import erasure, merkle
from p2pbackup.core.merkle import BLAKE2B_4K, SHA256_16K, TREES, MerkleBuilder, Tree
from p2pbackup.errors import IntegrityError

BOTH = pytest.mark.parametrize("tree", list(TREES.values()), ids=["v2", "v3"])


def _data(size: int) -> bytes:
    return hashlib.shake_256(b"merkle").digest(size)


def _reference_root(tree: Tree, leaves: list[bytes]) -> bytes:
    """RFC 6962's tree, by its definition: split at the largest power of two below n."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    left, right = _reference_root(tree, leaves[:split]), _reference_root(tree, leaves[split:])
    return tree.node_hash(left, right)


def _tree(tree: Tree, data: bytes, want: list[int], cuts: list[int] = ()) -> MerkleBuilder:
    builder = MerkleBuilder(tree, want)
    at = 0
    for cut in sorted(cuts):
        builder.feed(data[at:cut])
        at = cut
    builder.feed(data[at:])
    return builder


def test_vector_version2():
    """Pinned: three full leaves and a short one; the proof of leaf 2."""
    data = _data(3 * BLAKE2B_4K.leaf_size + 100)
    builder = _tree(BLAKE2B_4K, data, [2])
    assert builder.digest().hex() == (
        "b5b9f5c9a6fff47067201f15da6ebe309565596de3a62dc461c42e697f5fbe4d"
    )
    assert [p.hex() for p in builder.proof(2)] == [
        "52a6a820d09899e4c2f592e7ea649f147230d5eb002117e6344b048aa9cae46b",
        "c16d00e7543bae02895344883fabbd765a0dd65b679691d4bffbf6ea04900ff5",
    ]


def test_vector_version3():
    """Pinned: three full leaves and a short one; the proof of leaf 2; and the three
    hashes, from their definition with plain SHA-256."""
    data = _data(3 * SHA256_16K.leaf_size + 100)
    builder = _tree(SHA256_16K, data, [2])
    assert builder.digest().hex() == VECTOR_V3_ROOT
    assert [p.hex() for p in builder.proof(2)] == VECTOR_V3_PROOF
    assert SHA256_16K.leaf_hash(b"ab") == hashlib.sha256(b"p2pb-leaf_v3\0ab").digest()
    assert SHA256_16K.node_hash(b"a", b"b") == hashlib.sha256(b"p2pb-node_v3\0ab").digest()
    assert SHA256_16K.root_hash(5, b"r") == hashlib.sha256(
        b"p2pb-mroot_v3\0" + (5).to_bytes(8, "big") + b"r"
    ).digest()


@BOTH
@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 9 * 4096 + 7), pick=st.data())
def test_every_block_proves_and_the_root_is_rfc6962s(tree, size, pick):
    size = size * tree.leaf_size // 4096  # the same number of leaves in either tree
    data = _data(size)
    count = tree.leaf_count(size)
    want = pick.draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=3))
    cuts = pick.draw(st.lists(st.integers(0, size), max_size=4))
    builder = _tree(tree, data, want, cuts)
    root = builder.digest()
    step = tree.leaf_size
    leaves = [tree.leaf_hash(data[i * step : (i + 1) * step]) for i in range(count)]
    assert root == tree.root_hash(size, _reference_root(tree, leaves))
    for leaf in want:
        start, length = tree.leaf_range(size, leaf)
        tree.verify_leaf(root, size, leaf, data[start : start + length], builder.proof(leaf))


@BOTH
@settings(max_examples=50, deadline=None)
@given(size=st.integers(1, 9 * 4096 + 7), pick=st.data())
def test_any_tampered_block_or_path_is_caught(tree, size, pick):
    size = max(1, size * tree.leaf_size // 4096)
    data = _data(size)
    count = tree.leaf_count(size)
    leaf = pick.draw(st.integers(0, count - 1))
    builder = _tree(tree, data, [leaf])
    root = builder.digest()
    start, length = tree.leaf_range(size, leaf)
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
        size += pick.draw(st.sampled_from([-1, 1, tree.leaf_size]))
    with pytest.raises(IntegrityError):
        tree.verify_leaf(root, size, leaf, block, path)


def test_a_flat_share_hash_cannot_be_proved_as_a_tree():
    """A version-1 share's hash is not a tree root: a friend cannot answer for one."""
    descriptor, shares = erasure.encode(bytes(32), b"x" * 100, 1, 2, version=erasure.FLAT_VERSION)
    hashed = shares[0][: -merkle.HASH_SIZE]
    for tree in TREES.values():
        with pytest.raises(IntegrityError):
            tree.verify_leaf(descriptor.share_hashes[0], len(hashed), 0, hashed, [])
    with pytest.raises(IntegrityError):
        merkle.verify_block(descriptor.share_hashes[0], len(hashed), 0, hashed, [])


@pytest.mark.parametrize("version", [2, 3])
def test_a_share_hash_is_its_tree_root_and_any_block_proves_under_its_version_only(version):
    """Audits ask in 4 KiB blocks: the answer is the leaf holding the block, under the
    share's own tree, and the same bytes and path fail under the other tree."""
    tree = TREES[version]
    data = _data(3 * 16384 * 3)
    descriptor, shares = erasure.encode(bytes(32), data, 3, 5, block_size=16384, version=version)
    hashed = shares[4][: -merkle.HASH_SIZE]
    assert shares[4][4] == version
    share_hash = descriptor.share_hashes[4]
    blocks = [0, 5, merkle.block_count(len(hashed)) - 1]
    leaves = [block * merkle.BLOCK // tree.leaf_size for block in blocks]
    builder = _tree(tree, hashed, leaves)
    assert builder.digest() == share_hash
    other = TREES[5 - version]
    for block, leaf in zip(blocks, leaves, strict=True):
        start, length = tree.leaf_range(len(hashed), leaf)
        data, path = hashed[start : start + length], builder.proof(leaf)
        merkle.verify_block(share_hash, len(hashed), block, data, path)
        tree.verify_leaf(share_hash, len(hashed), leaf, data, path)
        # The same bytes answered under the other tree, as a friend could: refused.
        other_leaf = block * merkle.BLOCK // other.leaf_size
        other_builder = _tree(other, hashed, [other_leaf])
        other_builder.digest()
        start, length = other.leaf_range(len(hashed), other_leaf)
        with pytest.raises(IntegrityError):
            merkle.verify_block(share_hash, len(hashed), block, hashed[start : start + length],
                                other_builder.proof(other_leaf))  # fmt: skip
        with pytest.raises(IntegrityError):  # another block's answer
            merkle.verify_block(share_hash, len(hashed), block + 4, data, path)


def test_verify_block_refuses_a_block_past_the_end():
    data = _data(20000)
    builder = _tree(SHA256_16K, data, [1])
    root = builder.digest()
    start = SHA256_16K.leaf_range(len(data), 1)[0]
    merkle.verify_block(root, len(data), 4, data[start:], builder.proof(1))
    with pytest.raises(IntegrityError):
        merkle.verify_block(root, len(data), 5, data[start:], builder.proof(1))


VECTOR_V3_ROOT = "7255a9459797a467fc9b89b0b06b04afa294fdde20f7c1ba6a694c5d6bb0c876"
VECTOR_V3_PROOF = [
    "53f800ceae96ca474fa4f9a4aa6644ffa7acb413d700309bf1f4090be8039b93",
    "1aad1ea65716d106fedabd2a586ce952a20fcfa6cfe622710d8e037801d9fc2b",
]
