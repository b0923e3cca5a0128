"""Small value types that several formats embed: how to find stored bytes.

A *record* is the unit stored on friends (sealed, then erasure-coded into
``n`` shares). A *blob* is a slice of a record's plaintext: a full text or a
delta, alone in its record or packed with others.

Embedded layouts (inside manifests, heads and the catalog; no magic of their
own because the container is versioned):

RecordDescriptor::

    record_id      32 bytes
    k              u8       shares needed to rebuild (1..n)
    n              u8       shares made (k..255)
    length         varint   bytes of the sealed record
    share_hashes   n x 32   BLAKE2b-256 of each share, in share-index order

BlobRef::

    record_id      32 bytes
    offset         varint   into the record's plaintext
    length         varint
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from p2pbackup.core.codec import Reader, Writer

ID_SIZE = 32
HASH_SIZE = 32
MAX_SHARES = 255
MAX_RECORD_LENGTH = 2**48  # 256 TiB: far beyond any file, small enough to reject garbage


class StorageKind(IntEnum):
    """How a revision's blob rebuilds it."""

    FULL = 1  # the whole text
    DELTA = 2  # a forward delta against the parent revision
    REVERSE = 3  # a reverse delta against a later revision


@dataclass(frozen=True, slots=True)
class RecordDescriptor:
    """Everything needed to fetch, check and decode one record."""

    record_id: bytes
    k: int
    n: int
    length: int
    share_hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if len(self.record_id) != ID_SIZE:
            raise ValueError("record_id must be 32 bytes")
        if not 1 <= self.k <= self.n <= MAX_SHARES:
            raise ValueError(f"need 1 <= k <= n <= {MAX_SHARES}, got k={self.k} n={self.n}")
        if len(self.share_hashes) != self.n or any(len(h) != HASH_SIZE for h in self.share_hashes):
            raise ValueError("share_hashes must be n hashes of 32 bytes")

    def write_to(self, w: Writer) -> None:
        w.raw(self.record_id).u8(self.k).u8(self.n).varint(self.length)
        for h in self.share_hashes:
            w.raw(h)

    @classmethod
    def read_from(cls, r: Reader) -> RecordDescriptor:
        record_id = r.raw(ID_SIZE, "record id")
        k = r.u8("k")
        n = r.u8("n")
        if not 1 <= k <= n:
            raise r.fail(f"record descriptor has impossible k={k} n={n}")
        length = r.varint("record length", MAX_RECORD_LENGTH)
        hashes = tuple(r.raw(HASH_SIZE, "share hash") for _ in range(n))
        return cls(record_id, k, n, length, hashes)

    def to_bytes(self) -> bytes:
        w = Writer()
        self.write_to(w)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> RecordDescriptor:
        r = Reader(data, "record descriptor")
        descriptor = cls.read_from(r)
        r.end()
        return descriptor


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A slice of one record's plaintext."""

    record_id: bytes
    offset: int
    length: int

    def write_to(self, w: Writer) -> None:
        w.raw(self.record_id).varint(self.offset).varint(self.length)

    @classmethod
    def read_from(cls, r: Reader, ids: dict[bytes, bytes] | None = None) -> BlobRef:
        """``ids``, if given, shares one bytes object per record id across many reads."""
        record_id = r.raw(ID_SIZE, "blob record id")
        if ids is not None:
            record_id = ids.setdefault(record_id, record_id)
        return cls(
            record_id,
            r.varint("blob offset", MAX_RECORD_LENGTH),
            r.varint("blob length", MAX_RECORD_LENGTH),
        )
