"""Deltas: a new text as copy ranges of a base text plus inserted bytes.

The owner keeps no old versions, so deltas are planned from the parent's
signature: each chunk of the new text whose hash the parent has becomes a
copy of the parent's bytes, the rest is inserted literally. Deltas are made on
plaintext, before sealing and erasure coding, because erasure-coded shares
cannot be patched. A reverse delta (an older version against a newer full
text) is the same thing with the roles swapped:
``make_delta(signature_of(newer), older)``.

Layout::

    offset  size  field
    0       4     magic b"P2BD"
    4       1     version = 1
    5       var   base size (varint)
    .       var   target size (varint)
    .       var   op count (varint)
    then per op: tag (u8)
        1 = copy:   base offset (varint), length (varint)
        2 = insert: length (varint), then that many bytes
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from p2pbackup.core.chunking import Signature, signature_of
from p2pbackup.core.codec import Reader, Writer
from p2pbackup.errors import IntegrityError

MAGIC = b"P2BD"
VERSION = 1
COPY, INSERT = 1, 2
_MAX = 2**48


@dataclass(frozen=True)
class Copy:
    base_offset: int
    length: int


@dataclass(frozen=True)
class Insert:
    new_offset: int  # where the bytes are in the new text (plans); 0 in parsed deltas
    length: int
    data: bytes = b""


Op = Copy | Insert


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


@dataclass(frozen=True)
class DeltaPlan:
    base_size: int
    target_size: int
    ops: tuple[Op, ...]

    @property
    def literal_bytes(self) -> int:
        return sum(op.length for op in self.ops if isinstance(op, Insert))

    def encoded_size(self) -> int:
        """The exact size of ``encode_delta``'s output, computed without reading data."""
        size = 5 + _varint_size(self.base_size) + _varint_size(self.target_size)
        size += _varint_size(len(self.ops))
        for op in self.ops:
            if isinstance(op, Copy):
                size += 1 + _varint_size(op.base_offset) + _varint_size(op.length)
            else:
                size += 1 + _varint_size(op.length) + op.length
        return size


def plan_delta(parent: Signature, new: Signature) -> DeltaPlan:
    where: dict[bytes, list[int]] = {}
    offset = 0
    for length, digest in zip(parent.lengths, parent.hashes, strict=True):
        where.setdefault(digest, []).append(offset)
        offset += length
    ops: list[Op] = []
    new_offset = 0
    for length, digest in zip(new.lengths, new.hashes, strict=True):
        candidates = where.get(digest)
        last = ops[-1] if ops else None
        if candidates:
            # Prefer the occurrence that continues the previous copy, so ranges coalesce.
            follow = last.base_offset + last.length if isinstance(last, Copy) else None
            base = follow if follow in candidates else candidates[0]
            if isinstance(last, Copy) and base == follow:
                ops[-1] = Copy(last.base_offset, last.length + length)
            else:
                ops.append(Copy(base, length))
        elif isinstance(last, Insert):
            ops[-1] = Insert(last.new_offset, last.length + length)
        else:
            ops.append(Insert(new_offset, length))
        new_offset += length
    return DeltaPlan(parent.size, new.size, tuple(ops))


def encode_delta(plan: DeltaPlan, read_new: Callable[[int, int], bytes]) -> bytes:
    w = Writer().raw(MAGIC).u8(VERSION).varint(plan.base_size).varint(plan.target_size)
    w.varint(len(plan.ops))
    for op in plan.ops:
        if isinstance(op, Copy):
            w.u8(COPY).varint(op.base_offset).varint(op.length)
        else:
            data = read_new(op.new_offset, op.length)
            if len(data) != op.length:
                raise IntegrityError("The file changed while its delta was being made.")
            w.u8(INSERT).varint(op.length).raw(data)
    return w.getvalue()


def make_delta(parent: Signature, new_data: bytes | memoryview) -> bytes:
    view = memoryview(new_data)
    return encode_delta(plan_delta(parent, signature_of(view)), lambda o, n: bytes(view[o : o + n]))


@dataclass(frozen=True)
class Delta:
    base_size: int
    target_size: int
    ops: tuple[Op, ...]


def parse_delta(data: bytes) -> Delta:
    r = Reader(data, "delta")
    r.magic(MAGIC)
    r.version(VERSION)
    base_size = r.varint("base size", _MAX)
    target_size = r.varint("target size", _MAX)
    count = r.varint("op count", r.remaining() // 2)
    ops: list[Op] = []
    produced = 0
    for _ in range(count):
        tag = r.u8("op tag")
        if tag == COPY:
            offset = r.varint("copy offset", _MAX)
            length = r.varint("copy length", _MAX)
            if length == 0 or offset + length > base_size:
                raise r.fail(f"copies {length} bytes at {offset}, outside the base")
            ops.append(Copy(offset, length))
        elif tag == INSERT:
            length = r.varint("insert length", r.remaining())
            if length == 0:
                raise r.fail("has an empty insert")
            ops.append(Insert(0, length, r.raw(length, "inserted bytes")))
        else:
            raise r.fail(f"unknown op {tag}")
        produced += length
    r.end()
    if produced != target_size:
        raise r.fail(f"produces {produced} bytes but promises {target_size}")
    return Delta(base_size, target_size, tuple(ops))


def apply_delta(
    delta: bytes, read_base: Callable[[int, int], bytes], base_size: int
) -> Iterator[bytes]:
    parsed = parse_delta(delta)
    if parsed.base_size != base_size:
        raise IntegrityError(
            f"This delta does not apply to this base ({base_size} bytes; it needs "
            f"{parsed.base_size})."
        )
    for op in parsed.ops:
        if isinstance(op, Copy):
            piece = read_base(op.base_offset, op.length)
            if len(piece) != op.length:
                raise IntegrityError("The base text is shorter than the delta needs.")
            yield piece
        else:
            yield op.data


def apply_delta_bytes(delta: bytes, base: bytes) -> bytes:
    view = memoryview(base)
    return b"".join(apply_delta(delta, lambda o, n: bytes(view[o : o + n]), len(base)))
