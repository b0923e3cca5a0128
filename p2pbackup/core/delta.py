"""Deltas: a new text as copy ranges of a base text plus inserted bytes.

The owner keeps no old versions, so a delta is planned from the parent's
signature alone: each chunk of the new text whose hash the parent has becomes a
copy of the parent's bytes, the rest is inserted literally. Deltas are made on
plaintext, before sealing and erasure coding, because sealed, erasure-coded
shares cannot be patched.

A reverse delta (from a newer full text back to an older version, made when a
chain is repacked as ``rrrF``) is the same thing with the roles swapped:
``make_delta(signature_of(newer), older)``.

Layout (all varints are unsigned LEB128, minimal form)::

    offset  size  field
    0       4     magic b"P2BD"
    4       1     version = 1
    5       var   base size (varint): the text the copies read from
    .       var   target size (varint): the text the delta produces
    .       var   op count (varint)
    then per op, in target order:
            1     tag
        tag 1 = copy:   base offset (varint), length (varint)
        tag 2 = insert: length (varint), then that many bytes

Zero-length ops are invalid, copies lie inside the base, the op count is at
most a third of the bytes that follow it (an op takes 3 bytes at least), and
the op lengths add up to exactly the target size. See docs/formats/delta.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from p2pbackup.core.chunking import HASH_SIZE, Bytes, Signature, signature_of
from p2pbackup.core.codec import Reader, Writer
from p2pbackup.errors import IntegrityError, SourceChangedError

MAGIC = b"P2BD"
VERSION = 1
COPY = 1
INSERT = 2
_HEADER_SIZE = len(MAGIC) + 1
_MIN_OP_SIZE = 3  # tag + a one-byte varint + one more byte (a varint or an inserted byte)
_MAX_SIZE = 2**48  # 256 TiB: far past any real file; a damaged header cannot claim more
WINDOW = 1024 * 1024  # bytes read at a time when a delta is made or applied piece by piece


@dataclass(frozen=True)
class Copy:
    """Take ``length`` bytes of the base text from ``base_offset``."""

    base_offset: int
    length: int


@dataclass(frozen=True)
class Insert:
    """In a plan: take ``length`` bytes of the new text from ``new_offset``."""

    new_offset: int
    length: int


@dataclass(frozen=True)
class Literal:
    """In a parsed delta: these bytes, as they were inserted."""

    data: bytes


@dataclass(frozen=True)
class Inserted:
    """In a located delta: ``length`` inserted bytes at ``offset`` in the delta itself."""

    offset: int
    length: int


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


@dataclass(frozen=True)
class DeltaPlan:
    """The ops that turn the parent into the new text, planned from signatures only."""

    base_size: int
    target_size: int
    ops: tuple[Copy | Insert, ...]
    target: Signature  # encode_delta checks the literal bytes it reads against it

    @property
    def literal_bytes(self) -> int:
        return sum(op.length for op in self.ops if isinstance(op, Insert))

    def encoded_size(self) -> int:
        """The exact size of ``encode_delta``'s output, known before reading any data."""
        size = _HEADER_SIZE + _varint_size(self.base_size) + _varint_size(self.target_size)
        size += _varint_size(len(self.ops))
        for op in self.ops:
            if isinstance(op, Copy):
                size += 1 + _varint_size(op.base_offset) + _varint_size(op.length)
            else:
                size += 1 + _varint_size(op.length) + op.length
        return size


def plan_delta(parent: Signature, new: Signature) -> DeltaPlan:
    """Copy every new chunk the parent has, insert the others; coalesce neighbours."""
    first_at: dict[tuple[int, bytes], int] = {}
    chunk_at: dict[int, tuple[int, bytes]] = {}
    offset = 0
    for chunk in zip(parent.lengths, parent.hashes, strict=True):
        first_at.setdefault(chunk, offset)
        chunk_at[offset] = chunk
        offset += chunk[0]
    ops: list[Copy | Insert] = []
    new_offset = 0
    for chunk in zip(new.lengths, new.hashes, strict=True):
        length = chunk[0]
        last = ops[-1] if ops else None
        if chunk in first_at:
            # A chunk repeated in the parent (zeros, say) is taken from where the
            # previous copy ends when it can be, so the copies coalesce.
            follow = last.base_offset + last.length if isinstance(last, Copy) else None
            if follow is not None and chunk_at.get(follow) == chunk:
                ops[-1] = Copy(last.base_offset, last.length + length)
            else:
                ops.append(Copy(first_at[chunk], length))
        elif isinstance(last, Insert):
            ops[-1] = Insert(last.new_offset, last.length + length)
        else:
            ops.append(Insert(new_offset, length))
        new_offset += length
    return DeltaPlan(parent.size, new.size, tuple(ops), new)


def encode_delta(plan: DeltaPlan, read_new: Callable[[int, int], Bytes]) -> bytes:
    """The delta's bytes; ``read_new(offset, length)`` gives bytes of the new text."""
    return b"".join(delta_pieces(plan, read_new))


def delta_pieces(plan: DeltaPlan, read_new: Callable[[int, int], Bytes]) -> Iterator[Bytes]:
    """The delta's bytes a piece at a time (``plan.encoded_size()`` in all): the new text
    is read whole chunks at a time, about WINDOW bytes, so a large delta is never held.

    Literal bytes are checked against the new text's chunk hashes: if the file
    changed since its signature was taken, the delta would not rebuild the
    revision the signature names, and later deltas would copy wrong bytes.
    """
    w = Writer().raw(MAGIC).u8(VERSION).varint(plan.base_size).varint(plan.target_size)
    w.varint(len(plan.ops))
    chunks = iter(zip(plan.target.lengths, plan.target.hashes, strict=True))
    for op in plan.ops:
        if isinstance(op, Copy):
            w.u8(COPY).varint(op.base_offset).varint(op.length)
            _skip_chunks(chunks, op.length)
            continue
        w.u8(INSERT).varint(op.length)
        offset, end = op.new_offset, op.new_offset + op.length
        while offset < end:
            length, expected = _window(chunks, end - offset)
            data = memoryview(read_new(offset, length)).cast("B")
            if len(data) != length or not _matches(data, iter(expected)):
                raise SourceChangedError(
                    "The file changed while it was being backed up; back it up again once "
                    "nothing is writing to it."
                )
            w.raw(data)
            offset += length
            if len(w) >= WINDOW:
                yield w.getvalue()
                w = Writer()
    yield w.getvalue()


def _window(chunks: Iterator[tuple[int, bytes]], left: int) -> tuple[int, list[tuple[int, bytes]]]:
    """The next whole chunks of an insert: WINDOW bytes or a little more, or what is left."""
    taken: list[tuple[int, bytes]] = []
    length = 0
    while length < min(left, WINDOW):
        chunk = next(chunks)
        taken.append(chunk)
        length += chunk[0]
    return length, taken


def _skip_chunks(chunks: Iterator[tuple[int, bytes]], length: int) -> None:
    while length > 0:
        length -= next(chunks)[0]


def _matches(data: memoryview, chunks: Iterator[tuple[int, bytes]]) -> bool:
    start = 0
    while start < len(data):
        length, digest = next(chunks)
        piece = data[start : start + length]
        if hashlib.blake2b(piece, digest_size=HASH_SIZE).digest() != digest:
            return False
        start += length
    return True


def make_delta(parent: Signature, new_data: Bytes) -> bytes:
    view = memoryview(new_data).cast("B")
    plan = plan_delta(parent, signature_of(view))
    return encode_delta(plan, lambda offset, length: view[offset : offset + length])


@dataclass(frozen=True)
class Delta:
    base_size: int
    target_size: int
    ops: tuple[Copy | Literal | Inserted, ...]


def parse_delta(data: Bytes) -> Delta:
    """A delta's ops, every bound checked; only ``FormatError`` comes out."""
    return _parse(data, lambda r, length: Literal(r.raw(length, "inserted bytes")))


def locate_delta(data: Bytes) -> Delta:
    """``parse_delta``, but each insert is where its bytes are in ``data``, not a copy of
    them: only the op headers are read, so a delta mapped from disk stays on disk."""
    return _parse(data, lambda r, length: Inserted(r.skip(length, "inserted bytes"), length))


def _parse(data: Bytes, insert: Callable[[Reader, int], Literal | Inserted]) -> Delta:
    r = Reader(data, "delta")
    r.magic(MAGIC)
    r.version(VERSION)
    base_size = r.varint("base size", _MAX_SIZE)
    target_size = r.varint("target size", _MAX_SIZE)
    count = r.varint("op count", r.remaining() // _MIN_OP_SIZE)
    ops: list[Copy | Literal | Inserted] = []
    produced = 0
    for _ in range(count):
        tag = r.u8("op tag")
        if tag == COPY:
            offset = r.varint("copy offset", base_size)
            length = r.varint("copy length", base_size - offset)
            op: Copy | Literal | Inserted = Copy(offset, length)
        elif tag == INSERT:
            length = r.varint("insert length", _MAX_SIZE)
            op = insert(r, length)
        else:
            raise r.fail(f"has an unknown op {tag} (a newer p2pbackup may be needed)")
        if length == 0:
            raise r.fail("has an empty op")
        produced += length
        if produced > target_size:
            raise r.fail(f"produces more than the {target_size} bytes it promises")
        ops.append(op)
    r.end()
    if produced != target_size:
        raise r.fail(f"produces {produced} bytes but promises {target_size}")
    return Delta(base_size, target_size, tuple(ops))


def apply_delta(
    delta: Bytes, read_base: Callable[[int, int], Bytes], base_size: int
) -> Iterator[Bytes]:
    """The target text, a piece at a time; ``read_base(offset, length)`` reads the base.

    The delta is parsed and checked against ``base_size`` here, before any piece.
    """
    view = memoryview(delta).cast("B")
    return apply_located(
        locate_delta(view), lambda offset, length: view[offset : offset + length],
        read_base, base_size,
    )  # fmt: skip


def apply_located(
    located: Delta,
    read_delta: Callable[[int, int], Bytes],
    read_base: Callable[[int, int], Bytes],
    base_size: int,
) -> Iterator[Bytes]:
    """The target text of a located delta, in pieces of at most WINDOW bytes: the delta's
    inserts are read with ``read_delta`` and the base with ``read_base``, so neither text
    is held whole. Checked against ``base_size`` here, before any piece."""
    if located.base_size != base_size:
        raise IntegrityError(
            f"This delta does not apply to this base: it needs a base of {located.base_size} "
            f"bytes, the base has {base_size}."
        )
    return _pieces(located, read_delta, read_base)


def _pieces(
    located: Delta,
    read_delta: Callable[[int, int], Bytes],
    read_base: Callable[[int, int], Bytes],
) -> Iterator[Bytes]:
    for op in located.ops:
        if isinstance(op, Literal):
            yield op.data
            continue
        inserted = isinstance(op, Inserted)
        read, start = (read_delta, op.offset) if inserted else (read_base, op.base_offset)
        for at in range(start, start + op.length, WINDOW):
            length = min(WINDOW, start + op.length - at)
            piece = read(at, length)
            if len(piece) != length:
                text = "delta" if inserted else "base text"
                raise IntegrityError(
                    f"The {text} gave {len(piece)} bytes at offset {at} where the delta "
                    f"needs {length}."
                )
            yield piece


def apply_delta_bytes(delta: Bytes, base: Bytes) -> bytes:
    view = memoryview(base).cast("B")
    pieces = apply_delta(delta, lambda offset, length: view[offset : offset + length], len(view))
    return b"".join(pieces)
