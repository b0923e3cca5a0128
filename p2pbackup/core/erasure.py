"""Erasure-coded shares: any k of n shares rebuild a sealed record (zfec).

The record (any bytes; in practice a sealed record) is cut into erasure
segments of ``k * block_size`` bytes, the last one possibly shorter. A segment
of L bytes is zero-padded to ``k * ceil(L / k)``, split into k primary blocks of
``ceil(L / k)`` bytes and zfec-encoded into n blocks; share i gets block i of
every segment. A share is therefore about length / k bytes, with padding only
in the last segment, and both sides need one segment of memory. An empty
record has no segments.

Share layout (all integers big-endian)::

    offset  size  field
    header (44 bytes)
    0       4     magic b"P2BS"
    4       1     version: 3 (1 and 2 in shares written before; still read)
    5       1     k, shares needed (1..n)
    6       1     n, shares made (k..255)
    7       1     index of this share (0..n-1; < k is a primary share)
    8       4     block_size (1..16 MiB)
    12      32    record id
    body
    44      B     block i of each segment, in order; B is fixed by (length, k, block_size)
    trailer (40 bytes)
    44+B    8     length of the record
    52+B    32    the share hash of every byte before it: versions 2 and 3, the root
                  of its block tree (core/merkle.py: BLAKE2b in 4 KiB leaves, SHA-256
                  in 16 KiB leaves; a friend can prove any block of it); version 1,
                  BLAKE2b-256(person="p2pb-share_v1") of them

The length and hash sit in a trailer, not the header, so shares can be written
as the record streams through: the header goes out before the length is known
and the hash is finished at the end. The hash makes every share self-checking,
so a storage server can reject a damaged ``put`` without knowing the record's
descriptor; the owner checks it against the descriptor's ``share_hashes``,
which live in authenticated metadata. The version byte is among the hashed bytes, and
the three kinds of hash are domain-separated, so a share cannot pass for another kind.
The versions differ in the trailing hash alone, so ``with_version`` turns a share into
the same share of another version.

Speed: docs/format.md, "Share". Hashing the n/k-times-larger output is the largest
cost of encoding; version 3's tree hashes at twice version 2's speed.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import zfec

from p2pbackup.core import merkle
from p2pbackup.core.codec import Reader
from p2pbackup.core.refs import HASH_SIZE, ID_SIZE, MAX_RECORD_LENGTH, MAX_SHARES, RecordDescriptor
from p2pbackup.errors import FormatError, IntegrityError

MAGIC = b"P2BS"
VERSION = 3  # the newest: a SHA-256 block tree's root as the share hash
TREE_VERSION = 2  # a BLAKE2b block tree: written for friends that do not read version 3
FLAT_VERSION = 1  # a flat hash, no block proofs (records stored before version 2)
VERSIONS = (FLAT_VERSION, TREE_VERSION, VERSION)  # read, and written on repair
HEADER_SIZE = 44
TRAILER_SIZE = 40
BLOCK_SIZE = 256 * 1024
MAX_BLOCK_SIZE = 16 * 1024 * 1024

# Frozen BLAKE2b personalisation tag. Changing it changes every share hash,
# which breaks every stored backup.
SHARE_HASH_PERSON_v1 = b"p2pb-share_v1"

_HEADER = struct.Struct(">4sBBBBI32s")
_LENGTH = struct.Struct(">Q")
_BLOCK_SIZE_FIELD = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class ShareInfo:
    """What a share says about itself, after its self-hash checked out."""

    k: int
    n: int
    index: int
    block_size: int
    record_id: bytes
    length: int
    hash: bytes
    version: int = VERSION


def _check_parameters(k: int, n: int, block_size: int) -> None:
    if not 1 <= k <= n <= MAX_SHARES:
        raise ValueError(f"need 1 <= k <= n <= {MAX_SHARES}, got k={k} n={n}")
    if not 1 <= block_size <= MAX_BLOCK_SIZE:
        raise ValueError(f"block_size must be 1..{MAX_BLOCK_SIZE}, got {block_size}")


def _share_hasher() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=HASH_SIZE, person=SHARE_HASH_PERSON_v1)


class ShareDigest:
    """A share's hash from its bytes fed in order (all but the hash at its end): flat for
    version 1, its block tree's root otherwise, as the version byte at offset 4 says.
    That byte is hashed too, so whoever checks the result against a known hash need not
    trust it."""

    __slots__ = ("_hasher", "_head")

    def __init__(self) -> None:
        self._head = bytearray()
        self._hasher: Any = None  # hashlib.blake2b or merkle.MerkleBuilder

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._hasher is None:
            view = memoryview(data).cast("B")
            take = min(5 - len(self._head), len(view))
            self._head += view[:take]  # what says the version, and no more
            if len(self._head) < 5:
                return
            self._start()
            self._feed(self._head)
            data = view[take:]
        self._feed(data)

    def _feed(self, data: bytes | bytearray | memoryview) -> None:
        if isinstance(self._hasher, merkle.MerkleBuilder):
            self._hasher.feed(data)
        else:
            self._hasher.update(data)  # type: ignore[union-attr]

    def _start(self) -> None:
        tree = merkle.TREES.get(self._head[4]) if len(self._head) >= 5 else None
        self._hasher = _share_hasher() if tree is None else merkle.MerkleBuilder(tree)

    def digest(self) -> bytes:
        if self._hasher is None:  # under 5 bytes: garbage, hashed flat
            self._start()
            self._hasher.update(self._head)
        return self._hasher.digest()


def version_of(header: bytes | bytearray | memoryview) -> int:
    """The format version a share's header names (FormatError if it is not one read here)."""
    if len(header) < 5 or header[4] not in VERSIONS:
        raise FormatError("share header names a format version this program does not read")
    return header[4]


def _short(record_id: bytes) -> str:
    return record_id.hex()[:12]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _body_size(length: int, k: int, block_size: int) -> int:
    full, rest = divmod(length, k * block_size)
    return full * block_size + _ceil_div(rest, k)


def share_size(length: int, k: int, block_size: int = BLOCK_SIZE) -> int:
    """Total bytes of one share of a record of ``length`` bytes."""
    _check_parameters(k, k, block_size)
    return HEADER_SIZE + _body_size(length, k, block_size) + TRAILER_SIZE


def _segment(index: int, length: int, k: int, block_size: int) -> tuple[int, int, int]:
    segment_length = min(k * block_size, length - index * k * block_size)
    return index * block_size, _ceil_div(segment_length, k), segment_length


def segment_layout(length: int, k: int, block_size: int) -> list[tuple[int, int, int]]:
    """Per erasure segment: (offset in the share body, block length, segment length)."""
    _check_parameters(k, k, block_size)
    count = _ceil_div(length, k * block_size)
    return [_segment(i, length, k, block_size) for i in range(count)]


_Parts = list[list[bytes | memoryview]]  # per share, the pieces to append in order


def _join(parts: _Parts) -> list[bytes]:
    return [b"".join(share_parts) for share_parts in parts]


class ShareEncoder:
    """Turns a record fed in pieces into n shares, one segment at a time.

    ``feed`` and ``finish`` return n byte strings, one per share, to append to
    what was returned before; the headers come with the first output.
    """

    __slots__ = (
        "_block_size",
        "_encoder",
        "_hashers",
        "_headers",
        "_k",
        "_length",
        "_n",
        "_pending",
        "_record_id",
        "_segment_size",
        "descriptor",
    )

    def __init__(
        self,
        record_id: bytes,
        k: int,
        n: int,
        block_size: int = BLOCK_SIZE,
        version: int | Sequence[int] = VERSION,
    ) -> None:
        """``version``: of every share, or one per share (a friend that kept a share of
        another version already keeps it)."""
        _check_parameters(k, n, block_size)
        if len(record_id) != ID_SIZE:
            raise ValueError(f"record_id must be {ID_SIZE} bytes")
        versions = [version] * n if isinstance(version, int) else list(version)
        if len(versions) != n or not set(versions) <= set(VERSIONS):
            raise ValueError(f"share format versions {versions} are not written here")
        self._record_id = bytes(record_id)
        self._k, self._n, self._block_size = k, n, block_size
        self._segment_size = k * block_size
        self._encoder = zfec.Encoder(k, n)
        self._hashers = [ShareDigest() for _ in range(n)]
        self._headers: list[bytes] | None = [
            _HEADER.pack(MAGIC, v, k, n, i, block_size, self._record_id)
            for i, v in enumerate(versions)
        ]
        self._pending = bytearray()
        self._length = 0
        self.descriptor: RecordDescriptor | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        return _join(self._feed(data))

    def finish(self) -> list[bytes]:
        """The last segment and the trailers; sets ``descriptor``."""
        return _join(self._finish())

    def _feed(self, data: bytes | bytearray | memoryview) -> _Parts:
        if self.descriptor is not None:
            raise ValueError("the share encoder is finished")
        view = memoryview(data).cast("B")
        self._length += len(view)
        parts = self._start()
        pos = 0
        if self._pending:
            pos = min(self._segment_size - len(self._pending), len(view))
            self._pending += view[:pos]
            if len(self._pending) < self._segment_size:
                return parts
            self._encode(memoryview(bytes(self._pending)), parts)
            self._pending = bytearray()
        # Whole segments straight from the caller's buffer: no copy before zfec.
        while len(view) - pos >= self._segment_size:
            self._encode(view[pos : pos + self._segment_size], parts)
            pos += self._segment_size
        self._pending += view[pos:]
        return parts

    def _finish(self) -> _Parts:
        if self.descriptor is not None:
            raise ValueError("the share encoder is finished")
        parts = self._start()
        if self._pending:
            self._encode(memoryview(bytes(self._pending)), parts)
            self._pending = bytearray()
        length = _LENGTH.pack(self._length)
        hashes = []
        for hasher, share_parts in zip(self._hashers, parts, strict=True):
            hasher.update(length)
            digest = hasher.digest()
            hashes.append(digest)
            share_parts += (length, digest)
        self.descriptor = RecordDescriptor(
            self._record_id, self._k, self._n, self._length, tuple(hashes)
        )
        return parts

    def _start(self) -> _Parts:
        if self._headers is None:
            return [[] for _ in range(self._n)]
        parts: _Parts = [[header] for header in self._headers]
        for hasher, header in zip(self._hashers, self._headers, strict=True):
            hasher.update(header)
        self._headers = None
        return parts

    def _encode(self, segment: memoryview, parts: _Parts) -> None:
        block = _ceil_div(len(segment), self._k)
        if len(segment) < block * self._k:
            segment = memoryview(bytes(segment) + bytes(block * self._k - len(segment)))
        primaries = tuple(segment[i * block : (i + 1) * block] for i in range(self._k))
        for hasher, share_parts, encoded in zip(
            self._hashers, parts, self._encoder.encode(primaries), strict=True
        ):
            hasher.update(encoded)
            share_parts.append(encoded)


def encode(
    record_id: bytes,
    data: bytes | bytearray | memoryview,
    k: int,
    n: int,
    block_size: int = BLOCK_SIZE,
    version: int | Sequence[int] = VERSION,
) -> tuple[RecordDescriptor, list[bytes]]:
    """The descriptor and the n shares of ``data``."""
    encoder = ShareEncoder(record_id, k, n, block_size, version)
    parts = encoder._feed(data)
    for share_parts, tail in zip(parts, encoder._finish(), strict=True):
        share_parts += tail
    assert encoder.descriptor is not None
    return encoder.descriptor, _join(parts)


def parse_share(data: bytes | bytearray | memoryview) -> ShareInfo:
    """Check a share's structure and self-hash; FormatError/IntegrityError if it is bad."""
    checker = ShareChecker()
    checker.feed(data)
    return checker.finish()


class ShareChecker:
    """``parse_share`` for a share that arrives in pieces (a friend writing it to disk as it
    streams in): the same checks, with one pass and a few hundred bytes of memory."""

    __slots__ = ("_hasher", "_head", "_size", "_tail")

    def __init__(self) -> None:
        self._hasher = ShareDigest()
        self._head = bytearray()
        self._tail = b""  # the last TRAILER_SIZE bytes seen, not hashed yet
        self._size = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        if len(self._head) < HEADER_SIZE:
            self._head += view[: HEADER_SIZE - len(self._head)]
        self._size += len(view)
        if len(view) >= TRAILER_SIZE:
            self._hasher.update(self._tail)
            self._hasher.update(view[:-TRAILER_SIZE])
            self._tail = bytes(view[-TRAILER_SIZE:])
        else:
            combined = self._tail + bytes(view)
            cut = max(0, len(combined) - TRAILER_SIZE)
            self._hasher.update(combined[:cut])
            self._tail = combined[cut:]

    def finish(self) -> ShareInfo:
        size = self._size
        if size < HEADER_SIZE + TRAILER_SIZE:
            raise FormatError(
                f"share is truncated: {size} bytes, at least {HEADER_SIZE + TRAILER_SIZE} needed"
            )
        r = Reader(bytes(self._head), "share")
        r.magic(MAGIC)
        if r.u8("version") not in VERSIONS:
            raise r.fail(
                f"share format version {self._head[4]} is not supported (this program reads "
                f"versions {FLAT_VERSION} to {VERSION}); a newer p2pbackup may be needed"
            )
        k, n, index = r.u8("k"), r.u8("n"), r.u8("index")
        block_size = r.u32("block size")
        record_id = r.raw(ID_SIZE, "record id")
        if not 1 <= k <= n:
            raise r.fail(f"impossible k={k} n={n}")
        if index >= n:
            raise r.fail(f"share index {index} is not below n={n}")
        if not 1 <= block_size <= MAX_BLOCK_SIZE:
            raise r.fail(f"block size {block_size} is outside 1..{MAX_BLOCK_SIZE}")
        (length,) = _LENGTH.unpack(self._tail[: TRAILER_SIZE - HASH_SIZE])
        if length > MAX_RECORD_LENGTH:
            raise r.fail(f"record length {length} is impossibly large")
        expected = share_size(length, k, block_size)
        if size != expected:
            raise r.fail(
                f"share of record {_short(record_id)} has {size} bytes, expected {expected}"
            )
        self._hasher.update(self._tail[: TRAILER_SIZE - HASH_SIZE])
        digest = self._hasher.digest()
        if digest != self._tail[TRAILER_SIZE - HASH_SIZE :]:
            raise IntegrityError(
                f"share {index} of record {_short(record_id)} is damaged: its hash does not match"
            )
        return ShareInfo(k, n, index, block_size, record_id, length, digest, self._head[4])


def with_version(share: bytes | bytearray | memoryview, version: int) -> bytes:
    """The same share as format ``version``: its version byte and its hash (the rest is
    the same in every version). Only the bytes' own hash vouches for the result."""
    if version not in VERSIONS:
        raise ValueError(f"share format version {version} is not written here")
    hashed = bytearray(memoryview(share)[:-HASH_SIZE])
    if len(hashed) < HEADER_SIZE + TRAILER_SIZE - HASH_SIZE or hashed[:4] != MAGIC:
        raise FormatError("not a share: it cannot be given another format version")
    hashed[4] = version
    digest = ShareDigest()
    digest.update(hashed)
    return bytes(hashed) + digest.digest()


def verify_share(
    descriptor: RecordDescriptor, index: int, share: bytes | bytearray | memoryview
) -> None:
    """Raise IntegrityError unless ``share`` is exactly share ``index`` of ``descriptor``."""
    checker = ShareChecker()
    checker.feed(share)
    verify_checked(descriptor, index, checker)


def verify_checked(descriptor: RecordDescriptor, index: int, checker: ShareChecker) -> None:
    """``verify_share`` for a share fed to ``checker`` in pieces (read by ranges)."""
    what = f"share {index} of record {_short(descriptor.record_id)}"
    if not 0 <= index < descriptor.n:
        raise IntegrityError(f"{what} does not exist: the record has {descriptor.n} shares")
    try:
        info = checker.finish()
    except IntegrityError as exc:
        raise type(exc)(f"{what} is unusable: {exc.message}") from None
    if info.hash != descriptor.share_hashes[index]:
        raise IntegrityError(f"{what} is not the share that was stored: its hash differs")
    found = (info.record_id, info.k, info.n, info.index, info.length)
    wanted = (descriptor.record_id, descriptor.k, descriptor.n, index, descriptor.length)
    if found != wanted:
        # Only reachable if the descriptor itself is inconsistent with what was encoded.
        raise IntegrityError(f"{what} does not match the record's description")


def block_size_of(header: bytes | bytearray | memoryview) -> int:
    """The block size a share's header names (FormatError outside 1..MAX_BLOCK_SIZE); for
    decoding a share read by ranges, whose hash is checked only at its end."""
    if len(header) < HEADER_SIZE:
        raise FormatError(f"share header is truncated: {len(header)} of {HEADER_SIZE} bytes")
    (block_size,) = _BLOCK_SIZE_FIELD.unpack_from(header, 8)
    if not 1 <= block_size <= MAX_BLOCK_SIZE:
        raise FormatError(f"share header names block size {block_size}, not 1..{MAX_BLOCK_SIZE}")
    return block_size


class SegmentDecoder:
    """Decodes a record segment by segment from the blocks of k chosen shares.

    ``indexes`` names the shares whose blocks ``decode`` receives, in that
    order. Segments must be decoded in order, first to last. ``block_size``
    comes from the shares' headers (the descriptor does not carry it; the
    share hashes bind it).
    """

    __slots__ = ("_block_size", "_count", "_decoder", "_descriptor", "_indexes", "_next")

    def __init__(
        self, descriptor: RecordDescriptor, indexes: Sequence[int], block_size: int = BLOCK_SIZE
    ) -> None:
        _check_parameters(descriptor.k, descriptor.n, block_size)
        if len(indexes) != descriptor.k or len(set(indexes)) != descriptor.k:
            raise ValueError(f"need {descriptor.k} distinct share indexes, got {list(indexes)}")
        if not all(0 <= i < descriptor.n for i in indexes):
            raise ValueError(f"share indexes must be below n={descriptor.n}")
        self._descriptor = descriptor
        self._indexes = tuple(indexes)
        self._block_size = block_size
        self._decoder = zfec.Decoder(descriptor.k, descriptor.n)
        self._count = _ceil_div(descriptor.length, descriptor.k * block_size)
        self._next = 0

    def decode(self, blocks: Sequence[bytes | memoryview]) -> bytes:
        """The next segment of the record, from one block of each chosen share."""
        d = self._descriptor
        if self._next >= self._count:
            raise ValueError("every segment of the record was already decoded")
        _, block_length, segment_length = _segment(self._next, d.length, d.k, self._block_size)
        if len(blocks) != d.k or any(len(b) != block_length for b in blocks):
            raise FormatError(
                f"record {_short(d.record_id)}: segment {self._next} needs {d.k} blocks of "
                f"{block_length} bytes, got sizes {[len(b) for b in blocks]}"
            )
        self._next += 1
        primaries = self._decoder.decode(tuple(blocks), self._indexes)
        segment = b"".join(primaries)
        return segment if len(segment) == segment_length else segment[:segment_length]


def decode(
    descriptor: RecordDescriptor, shares: Mapping[int, bytes | bytearray | memoryview]
) -> bytes:
    """The record, from any k good shares among those offered.

    Shares are verified before decoding, primary shares first (decoding them
    is a copy, not arithmetic); bad ones are skipped. IntegrityError when
    fewer than k good shares are offered.
    """
    good: dict[int, memoryview] = {}
    bad: dict[int, str] = {}
    for index in sorted(shares):
        if len(good) == descriptor.k:
            break
        try:
            verify_share(descriptor, index, shares[index])
        except IntegrityError as exc:
            bad[index] = exc.message
            continue
        good[index] = memoryview(shares[index]).cast("B")
    if len(good) < descriptor.k:
        problems = "".join(f"; {problem}" for problem in bad.values())
        raise IntegrityError(
            f"record {_short(descriptor.record_id)} cannot be rebuilt: only {len(good)} of the "
            f"{len(shares)} shares offered are good and {descriptor.k} are needed; "
            f"bad shares {sorted(bad)}{problems}"
        )
    return decode_verified(descriptor, good)


def decode_verified(
    descriptor: RecordDescriptor, shares: Mapping[int, bytes | bytearray | memoryview]
) -> bytes:
    """The record from exactly k shares that ``verify_share`` already accepted.

    For callers that check each share as it arrives (to ask another friend
    when one is bad): hashing them again here would double the restore's cost.
    """
    if len(shares) != descriptor.k:
        raise ValueError(f"decode_verified takes exactly k={descriptor.k} shares")
    good = {i: memoryview(shares[i]).cast("B") for i in sorted(shares)}
    # The descriptor does not carry the block size; the verified headers do (offset 8).
    (block_size,) = _BLOCK_SIZE_FIELD.unpack_from(next(iter(good.values())), 8)
    decoder = SegmentDecoder(descriptor, tuple(good), block_size)
    views = tuple(good.values())
    pieces = [
        decoder.decode(tuple(v[HEADER_SIZE + offset : HEADER_SIZE + offset + block] for v in views))
        for offset, block, _ in segment_layout(descriptor.length, descriptor.k, block_size)
    ]
    return b"".join(pieces)
