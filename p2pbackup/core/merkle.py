"""A share's block tree: its hash as a Merkle root, so a friend can prove it keeps any
block of a share, and the owner checks the proof against the hash it already holds.

A share of format version 2 (``core/erasure.py``) is hashed in leaves of ``LEAF_SIZE``
bytes (the last one shorter): every byte before its trailing hash, header included.
The tree over the leaves is RFC 6962's (a node with no partner at its level is
carried up unchanged), and the share's hash binds the number of bytes hashed::

    leaf      = BLAKE2b-256(person="p2pb-leaf_v1", leaf bytes)
    node      = BLAKE2b-256(person="p2pb-node_v1", left || right)
    share hash = BLAKE2b-256(person="p2pb-mroot_v1", u64 bytes hashed || tree root)

A proof of leaf i is its bytes and the hashes of its siblings, lowest first (none at
a level where the leaf's ancestor is carried up). The tags are distinct from each
other and from version 1's flat share hash, so no proof can pass for a share of the
other kind, a leaf cannot pass for a node, and a tree cannot pass for a longer one.

Pure: ``MerkleBuilder`` takes bytes in order and holds O(log n) hashes (plus the
siblings it was asked to keep); ``verify_leaf`` checks one proof.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence

from p2pbackup.errors import IntegrityError

LEAF_SIZE = 4096
HASH_SIZE = 32
MAX_LEVELS = 64  # a tree of 2**64 leaves: beyond any share

# Frozen personalisation tags: changing one changes every version-2 share hash.
LEAF_PERSON_v1 = b"p2pb-leaf_v1"
NODE_PERSON_v1 = b"p2pb-node_v1"
ROOT_PERSON_v1 = b"p2pb-mroot_v1"

_LENGTH = struct.Struct(">Q")
# Hashers set up once and copied: a copy costs a third of a new hasher with a tag.
_LEAF = hashlib.blake2b(digest_size=HASH_SIZE, person=LEAF_PERSON_v1)
_NODE = hashlib.blake2b(digest_size=HASH_SIZE, person=NODE_PERSON_v1)


def leaf_hash(data: bytes | memoryview) -> bytes:
    h = _LEAF.copy()
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    h = _NODE.copy()
    h.update(left)
    h.update(right)
    return h.digest()


def root_hash(length: int, tree_root: bytes) -> bytes:
    """The share's hash: the tree's root bound to the number of bytes it covers."""
    return hashlib.blake2b(
        _LENGTH.pack(length) + tree_root, digest_size=HASH_SIZE, person=ROOT_PERSON_v1
    ).digest()


def leaf_count(length: int) -> int:
    """Leaves of a tree over ``length`` bytes (at least one: an empty input is one leaf)."""
    return max(1, -(-length // LEAF_SIZE))


class MerkleBuilder:
    """The share hash of bytes fed in order; ``want`` names leaves whose proofs to keep.

    The stack holds the roots of full subtrees (RFC 6962's "peaks"), largest first;
    folding them right to left at the end gives the same root as carrying odd nodes up.
    """

    __slots__ = ("_count", "_kept", "_length", "_pending", "_stack", "_wanted")

    def __init__(self, want: Iterable[int] = ()) -> None:
        self._stack: list[tuple[int, int, bytes]] = []  # (height, first leaf, hash)
        self._pending = bytearray()
        self._count = 0
        self._length = 0
        # The nodes any wanted leaf's proof needs: (height, position at that height).
        self._wanted = {(h, (leaf >> h) ^ 1) for leaf in want for h in range(MAX_LEVELS)}
        self._kept: dict[tuple[int, int], bytes] = {}

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        self._length += len(view)
        pos = 0
        if self._pending:
            pos = min(LEAF_SIZE - len(self._pending), len(view))
            self._pending += view[:pos]
            if len(self._pending) < LEAF_SIZE:
                return
            self._add(leaf_hash(self._pending))
            self._pending = bytearray()
        end = len(view) - (len(view) - pos) % LEAF_SIZE
        add = self._add
        for at in range(pos, end, LEAF_SIZE):
            add(leaf_hash(view[at : at + LEAF_SIZE]))
        self._pending += view[end:]

    def _add(self, node: bytes) -> None:
        height, first = 0, self._count
        keep = self._keep if self._wanted else None  # a share hashed, not proved: most
        if keep:
            keep(0, first, node)
        self._count += 1
        stack = self._stack
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
            self._add(leaf_hash(self._pending))
            self._pending = bytearray()

    def digest(self) -> bytes:
        """The share hash of what was fed; no more bytes may follow."""
        self._close()
        return root_hash(self._length, self._fold(0))

    def _fold(self, first_leaf: int) -> bytes:
        """The root of the peaks covering leaves from ``first_leaf`` (a peak's start) on."""
        peaks = [node for _, first, node in self._stack if first >= first_leaf]
        root = peaks[-1]
        for node in reversed(peaks[:-1]):
            root = node_hash(node, root)
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


def verify_leaf(
    share_hash: bytes, length: int, leaf: int, data: bytes, path: Sequence[bytes]
) -> None:
    """IntegrityError unless ``data`` is leaf ``leaf`` of ``length`` bytes hashed to
    ``share_hash``, as ``path`` (from ``MerkleBuilder.proof``) shows."""
    count = leaf_count(length)
    if not 0 <= leaf < count:
        raise IntegrityError(f"block {leaf} does not exist: the share has {count}")
    last = length - (count - 1) * LEAF_SIZE
    if len(data) != (last if leaf == count - 1 else LEAF_SIZE):
        raise IntegrityError(f"block {leaf} has a wrong length ({len(data)} bytes)")
    node, position, steps = leaf_hash(data), leaf, iter(path)
    while count > 1:
        if position ^ 1 < count:
            sibling = next(steps, None)
            if sibling is None or len(sibling) != HASH_SIZE:
                raise IntegrityError(f"the proof of block {leaf} is cut short")
            node = node_hash(sibling, node) if position & 1 else node_hash(node, sibling)
        position >>= 1
        count = -(-count // 2)
    if next(steps, None) is not None:
        raise IntegrityError(f"the proof of block {leaf} is too long")
    if root_hash(length, node) != share_hash:
        raise IntegrityError(f"block {leaf} is not the one stored: its proof does not match")


def leaf_range(length: int, leaf: int) -> tuple[int, int]:
    """(offset, size) of leaf ``leaf`` among ``length`` bytes."""
    start = leaf * LEAF_SIZE
    return start, min(LEAF_SIZE, length - start)
