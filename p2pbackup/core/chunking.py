"""Content-defined chunks and a revision's signature.

Chunk boundaries depend on content (FastCDC with a gear hash), so an
insertion shifts only the chunks around it: the rest keep their boundaries
and hashes, and a delta against the parent's signature copies them. The
compiled ``pyfastcdc`` runs at several GB/s here and releases the GIL; a
pure-Python chunker runs at under 10 MB/s.

Signature layout::

    offset  size  field
    0       4     magic b"P2SG"
    4       1     version = 1
    5       1     chunker id (1 = CHUNKER_V1)
    6       var   chunk count (varint)
    then per chunk: length (varint), BLAKE2b-256 of the chunk (32 bytes)
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pyfastcdc import FastCDC

from p2pbackup.core.codec import Reader, Writer

MAGIC = b"P2SG"
VERSION = 1
HASH_SIZE = 32
REVISION_PERSON_v1 = b"p2pb-rev_v1"  # frozen: changing it changes every revision id


@dataclass(frozen=True)
class ChunkerParams:
    avg: int
    min: int
    max: int
    normalized: int


# Frozen: a real mean chunk of about 61 KiB on random data (pyfastcdc's mean is
# about avg + min). Changing these breaks delta matching against every existing
# signature (not data safety).
CHUNKER_V1 = ChunkerParams(avg=48 * 1024, min=16 * 1024, max=256 * 1024, normalized=2)
CHUNKER_ID = 1


def _chunker() -> FastCDC:
    p = CHUNKER_V1
    return FastCDC(p.avg, min_size=p.min, max_size=p.max, normalized_chunking=p.normalized)


class ChunkStream:
    """Cuts data arriving in windows of any size exactly as if it came at once.

    FastCDC decides each cut from the chunk's start, looking at most ``max``
    bytes ahead, so every cut but the last of a window is final; the tail is
    carried into the next window and cut again.
    """

    def __init__(self) -> None:
        self._cdc = _chunker()
        self._tail = b""

    def feed(self, data: bytes | bytearray | memoryview) -> list[memoryview]:
        buffer = self._tail + data if self._tail else memoryview(data)
        chunks = [memoryview(c.data) for c in self._cdc.cut_buf(buffer)]
        if not chunks:
            return []
        self._tail = bytes(chunks[-1])
        return chunks[:-1]

    def finish(self) -> list[bytes]:
        tail, self._tail = self._tail, b""
        return [tail] if tail else []


@dataclass(frozen=True)
class Signature:
    """A text's chunk lengths and hashes: enough to compute deltas against it."""

    lengths: tuple[int, ...]
    hashes: tuple[bytes, ...]

    @property
    def size(self) -> int:
        return sum(self.lengths)

    def to_bytes(self) -> bytes:
        w = Writer().raw(MAGIC).u8(VERSION).u8(CHUNKER_ID).varint(len(self.lengths))
        for length, digest in zip(self.lengths, self.hashes, strict=True):
            w.varint(length).raw(digest)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        r = Reader(data, "signature")
        r.magic(MAGIC)
        r.version(VERSION)
        if r.u8("chunker id") != CHUNKER_ID:
            raise r.fail("made by an unknown chunker")
        count = r.varint("chunk count", r.remaining() // (1 + HASH_SIZE))
        lengths, hashes = [], []
        for _ in range(count):
            lengths.append(r.varint("chunk length", CHUNKER_V1.max))
            hashes.append(r.raw(HASH_SIZE, "chunk hash"))
        r.end()
        if any(length == 0 for length in lengths):
            raise r.fail("has an empty chunk")
        return cls(tuple(lengths), tuple(hashes))


class SignatureBuilder:
    """Builds a signature from data fed in windows; ``on_chunk`` sees every chunk."""

    def __init__(self, on_chunk: Callable[[memoryview | bytes], None] | None = None) -> None:
        self._stream = ChunkStream()
        self._lengths: list[int] = []
        self._hashes: list[bytes] = []
        self._on_chunk = on_chunk

    def _add(self, chunks: Iterable[memoryview | bytes]) -> None:
        for chunk in chunks:
            self._lengths.append(len(chunk))
            self._hashes.append(hashlib.blake2b(chunk, digest_size=HASH_SIZE).digest())
            if self._on_chunk is not None:
                self._on_chunk(chunk)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._add(self._stream.feed(data))

    def finish(self) -> Signature:
        self._add(self._stream.finish())
        return Signature(tuple(self._lengths), tuple(self._hashes))


def signature_of(data: bytes | bytearray | memoryview) -> Signature:
    builder = SignatureBuilder()
    builder.feed(data)
    return builder.finish()


def revision_id(record_id_key: bytes, signature: Signature) -> bytes:
    """The content id of a revision: keyed BLAKE2b-256 over its size and chunks."""
    h = hashlib.blake2b(digest_size=32, key=record_id_key, person=REVISION_PERSON_v1)
    h.update(struct.pack(">Q", signature.size))
    for length, digest in zip(signature.lengths, signature.hashes, strict=True):
        h.update(struct.pack(">I", length))
        h.update(digest)
    return h.digest()
