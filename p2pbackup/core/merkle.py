"""A share's block tree: its hash as a Merkle root, so a friend can prove it keeps any
block of a share, and the owner checks the proof against the hash it already holds.

A share of format version 2 or 3 (``core/erasure.py``) is hashed in leaves (the last
one shorter): every byte before its trailing hash, header included. The tree over the
leaves is RFC 6962's (a node with no partner at its level is carried up unchanged),
and the share's hash binds the number of bytes hashed. The two versions differ only
in the hash and the leaf size (``TREES``)::

    version 2 (BLAKE2B_4K): 4 KiB leaves
      leaf       = BLAKE2b-256(person="p2pb-leaf_v1", leaf bytes)
      node       = BLAKE2b-256(person="p2pb-node_v1", left || right)
      share hash = BLAKE2b-256(person="p2pb-mroot_v1", u64 bytes hashed || tree root)
    version 3 (SHA256_16K): 16 KiB leaves
      leaf       = SHA-256("p2pb-leaf_v3" 0x00 || leaf bytes)
      node       = SHA-256("p2pb-node_v3" 0x00 || left || right)
      share hash = SHA-256("p2pb-mroot_v3" 0x00 || u64 bytes hashed || tree root)

Version 3 exists for speed: SHA-256 runs on the CPU's SHA extensions at about twice
BLAKE2b's speed here, and a larger leaf means a quarter of the hashing calls.

A proof of leaf i is its bytes and the hashes of its siblings, lowest first (none at
a level where the leaf's ancestor is carried up). The tags are distinct from each
other and from version 1's flat share hash, so no proof can pass for a share of
another kind, a leaf cannot pass for a node, and a tree cannot pass for a longer one.

Audits ask for blocks of ``BLOCK`` bytes, whatever the version: the answer is the leaf
that holds the block, and ``verify_block`` checks it under either tree, since the
owner's descriptor does not say which version a share is.

Pure: ``MerkleBuilder`` takes bytes in order and holds O(log n) hashes (plus the
siblings it was asked to keep); ``Tree.verify_leaf`` checks one proof.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from p2pbackup.errors import IntegrityError

HASH_SIZE = 32
BLOCK = 4096  # the unit audits ask in: every tree's leaf is a multiple of it
MAX_LEVELS = 64  # a tree of 2**64 leaves: beyond any share

# Frozen tags: changing one changes every share hash of its version.
LEAF_PERSON_v1 = b"p2pb-leaf_v1"
NODE_PERSON_v1 = b"p2pb-node_v1"
ROOT_PERSON_v1 = b"p2pb-mroot_v1"
LEAF_TAG_v3 = b"p2pb-leaf_v3\x00"
NODE_TAG_v3 = b"p2pb-node_v3\x00"
ROOT_TAG_v3 = b"p2pb-mroot_v3\x00"

_LENGTH = struct.Struct(">Q")


class Tree:
    """One version's hashing rules. The hashers are set up once and copied: a copy costs
    a third of a new hasher with a tag."""

    __slots__ = ("_leaf", "_node", "_root", "leaf_size", "name")

    def __init__(self, name: str, leaf_size: int, leaf: Any, node: Any, root: Any) -> None:
        self.name = name
        self.leaf_size = leaf_size
        self._leaf, self._node, self._root = leaf, node, root

    def __repr__(self) -> str:
        return f"Tree({self.name})"

    def leaf_hash(self, data: bytes | bytearray | memoryview) -> bytes:
        h = self._leaf.copy()
        h.update(data)
        return h.digest()

    def node_hash(self, left: bytes, right: bytes) -> bytes:
        h = self._node.copy()
        h.update(left)
        h.update(right)
        return h.digest()

    def root_hash(self, length: int, tree_root: bytes) -> bytes:
        """The share's hash: the tree's root bound to the number of bytes it covers."""
        h = self._root.copy()
        h.update(_LENGTH.pack(length) + tree_root)
        return h.digest()

    def leaf_count(self, length: int) -> int:
        """Leaves over ``length`` bytes (at least one: an empty input is one leaf)."""
        return max(1, -(-length // self.leaf_size))

    def leaf_range(self, length: int, leaf: int) -> tuple[int, int]:
        """(offset, size) of leaf ``leaf`` among ``length`` bytes."""
        start = leaf * self.leaf_size
        return start, min(self.leaf_size, length - start)

    def verify_leaf(
        self, share_hash: bytes, length: int, leaf: int, data: bytes, path: Sequence[bytes]
    ) -> None:
        """IntegrityError unless ``data`` is leaf ``leaf`` of ``length`` bytes hashed to
        ``share_hash``, as ``path`` (from ``MerkleBuilder.proof``) shows."""
        count = self.leaf_count(length)
        if not 0 <= leaf < count:
            raise IntegrityError(f"block {leaf} does not exist: the share has {count}")
        if len(data) != self.leaf_range(length, leaf)[1]:
            raise IntegrityError(f"block {leaf} has a wrong length ({len(data)} bytes)")
        node, position, steps = self.leaf_hash(data), leaf, iter(path)
        while count > 1:
            if position ^ 1 < count:
                sibling = next(steps, None)
                if sibling is None or len(sibling) != HASH_SIZE:
                    raise IntegrityError(f"the proof of block {leaf} is cut short")
                if position & 1:
                    node = self.node_hash(sibling, node)
                else:
                    node = self.node_hash(node, sibling)
            position >>= 1
            count = -(-count // 2)
        if next(steps, None) is not None:
            raise IntegrityError(f"the proof of block {leaf} is too long")
        if self.root_hash(length, node) != share_hash:
            raise IntegrityError(f"block {leaf} is not the one stored: its proof does not match")


def _sha256(tag: bytes) -> Any:
    h = hashlib.sha256()
    h.update(tag)
    return h


def _blake2b(person: bytes) -> Any:
    return hashlib.blake2b(digest_size=HASH_SIZE, person=person)


BLAKE2B_4K = Tree(
    "BLAKE2b, 4 KiB leaves", 4096,
    _blake2b(LEAF_PERSON_v1), _blake2b(NODE_PERSON_v1), _blake2b(ROOT_PERSON_v1),
)  # fmt: skip
SHA256_16K = Tree(
    "SHA-256, 16 KiB leaves", 16384,
    _sha256(LEAF_TAG_v3), _sha256(NODE_TAG_v3), _sha256(ROOT_TAG_v3),
)  # fmt: skip
TREES = {2: BLAKE2B_4K, 3: SHA256_16K}  # by share format version
MAX_LEAF = max(tree.leaf_size for tree in TREES.values())


def block_count(length: int) -> int:
    """Blocks an audit may ask for among ``length`` hashed bytes."""
    return max(1, -(-length // BLOCK))


def verify_block(
    share_hash: bytes, length: int, block: int, data: bytes, path: Sequence[bytes]
) -> None:
    """IntegrityError unless ``data`` and ``path`` prove, under the tree of either version,
    the leaf that holds block ``block`` of a share hashed to ``share_hash``. Trying both is
    safe: to pass under a tree that did not make ``share_hash`` takes a preimage of it."""
    if not 0 <= block < block_count(length):
        raise IntegrityError(f"block {block} does not exist: the share has {block_count(length)}")
    error: IntegrityError | None = None
    for tree in TREES.values():
        leaf = block * BLOCK // tree.leaf_size
        if leaf >= tree.leaf_count(length) or len(data) != tree.leaf_range(length, leaf)[1]:
            continue
        try:
            tree.verify_leaf(share_hash, length, leaf, data, path)
            return
        except IntegrityError as exc:
            error = error or exc
    raise error or IntegrityError(f"block {block} has a wrong length ({len(data)} bytes)")


class MerkleBuilder:
    """The share hash of bytes fed in order under ``tree``; ``want`` names leaves whose
    proofs to keep.

    The stack holds the roots of full subtrees (RFC 6962's "peaks"), largest first;
    folding them right to left at the end gives the same root as carrying odd nodes up.
    """

    __slots__ = ("_count", "_kept", "_length", "_pending", "_stack", "_wanted", "tree")

    def __init__(self, tree: Tree, want: Iterable[int] = ()) -> None:
        self.tree = tree
        self._stack: list[tuple[int, int, bytes]] = []  # (height, first leaf, hash)
        self._pending = bytearray()
        self._count = 0
        self._length = 0
        # The nodes any wanted leaf's proof needs: (height, position at that height).
        self._wanted = {(h, (leaf >> h) ^ 1) for leaf in want for h in range(MAX_LEVELS)}
        self._kept: dict[tuple[int, int], bytes] = {}

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        size, leaf_hash = self.tree.leaf_size, self.tree.leaf_hash
        self._length += len(view)
        pos = 0
        if self._pending:
            pos = min(size - len(self._pending), len(view))
            self._pending += view[:pos]
            if len(self._pending) < size:
                return
            self._add(leaf_hash(self._pending))
            self._pending = bytearray()
        end = len(view) - (len(view) - pos) % size
        add = self._add
        for at in range(pos, end, size):
            add(leaf_hash(view[at : at + size]))
        self._pending += view[end:]

    def _add(self, node: bytes) -> None:
        height, first = 0, self._count
        keep = self._keep if self._wanted else None  # a share hashed, not proved: most
        if keep:
            keep(0, first, node)
        self._count += 1
        stack = self._stack
        node_hash = self.tree.node_hash
        while stack and stack[-1][0] == height:
            _, first, left = stack.pop()
            node = node_hash(left, node)
            height += 1
            if keep:
                keep(height, first >> height, node)
        stack.append((height, first, node))

    def _keep(self, height: int, position: int, node: bytes) -> None:
        if (height, position) in self._wanted:
            self._kept[(height, position)] = node

    def _close(self) -> None:
        if self._pending or self._count == 0:
            self._add(self.tree.leaf_hash(self._pending))
            self._pending = bytearray()

    def digest(self) -> bytes:
        """The share hash of what was fed; no more bytes may follow."""
        self._close()
        return self.tree.root_hash(self._length, self._fold(0))

    def _fold(self, first_leaf: int) -> bytes:
        """The root of the peaks covering leaves from ``first_leaf`` (a peak's start) on."""
        peaks = [node for _, first, node in self._stack if first >= first_leaf]
        root = peaks[-1]
        for node in reversed(peaks[:-1]):
            root = self.tree.node_hash(node, root)
        return root

    @property
    def length(self) -> int:
        return self._length

    def proof(self, leaf: int) -> list[bytes]:
        """Leaf ``leaf``'s siblings, lowest first; it must have been wanted."""
        self._close()
        path, count, position = [], self._count, leaf
        for height in range(MAX_LEVELS):
            if count <= 1:
                break
            sibling = position ^ 1
            if sibling < count:
                node = self._kept.get((height, sibling))
                if node is None:  # a right-edge subtree still split into peaks
                    node = self._fold(sibling << height)
                path.append(node)
            position >>= 1
            count = -(-count // 2)
        return path
