"""Reading a file that is being backed up: its signature, its bytes, its delta.

A file may change while it is read. Its signature is taken in one pass; its
full text or its delta is read again later, so every later pass is checked
against that signature (the chunk hashes) or against the size it had.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from p2pbackup.core import delta as deltas
from p2pbackup.core.chunking import Bytes, Signature, SignatureBuilder
from p2pbackup.core.seal import SEGMENT_SIZE, Kind, RecordIdHasher

READ_WINDOW = 4 * 1024 * 1024
GROWTH_WINDOW = 64 * 1024  # reads past the size a file had when it was listed


def read_signature(path: str, size: int, keep: bool) -> tuple[Signature, bytes | None]:
    """The file's signature, and its bytes if ``keep``, read to its end even if it grew
    since it measured ``size``. A read allocates its whole window before it reads: a
    window sized to the file, not 4 MiB per small file, is what keeps a tree of small
    files from spending more in page faults than in reading."""
    builder = SignatureBuilder()
    kept: list[bytes] = []
    window = min(READ_WINDOW, size + 1)  # the whole file, and nothing more, in one read
    with open(path, "rb", buffering=0) as f:
        while block := f.read(window):
            builder.feed(block)
            if keep:
                kept.append(block)
            window = min(READ_WINDOW, max(size + 1, GROWTH_WINDOW))
    return builder.finish(), (b"".join(kept) if keep else None)


def file_segments(path: str, size: int) -> Iterator[bytes]:
    """The first ``size`` bytes of a file, a segment at a time (memory stays bounded)."""
    with open(path, "rb") as f:
        left = size
        while left > 0:
            segment = f.read(min(SEGMENT_SIZE, left))
            if not segment:
                raise OSError(f"{path} shrank while it was being backed up")
            left -= len(segment)
            yield segment


def delta_pieces(path: str, plan: deltas.DeltaPlan) -> Iterator[Bytes]:
    """The delta that takes the parent to the file's current text, a piece at a time."""
    fd = os.open(path, os.O_RDONLY)
    try:
        yield from deltas.delta_pieces(plan, lambda offset, length: os.pread(fd, length, offset))
    finally:
        os.close(fd)


def encode_delta(path: str, plan: deltas.DeltaPlan) -> bytes:
    return b"".join(delta_pieces(path, plan))


def delta_id(record_id_key: bytes, path: str, plan: deltas.DeltaPlan) -> bytes:
    """A large delta's record id, from a first pass over it; its bytes are not kept."""
    hasher = RecordIdHasher(record_id_key, Kind.DELTA)
    for piece in delta_pieces(path, plan):
        hasher.update(piece)
    return hasher.digest()


def delta_segments(path: str, plan: deltas.DeltaPlan) -> Iterator[bytes]:
    """A large delta again, cut into segments for sealing. Each pass checks the inserted
    bytes against the file's chunk hashes, so both passes give the same bytes, or this one
    raises SourceChangedError."""
    buffer = bytearray()
    for piece in delta_pieces(path, plan):
        buffer += piece
        while len(buffer) >= SEGMENT_SIZE:
            yield bytes(buffer[:SEGMENT_SIZE])
            del buffer[:SEGMENT_SIZE]
    if buffer:
        yield bytes(buffer)
