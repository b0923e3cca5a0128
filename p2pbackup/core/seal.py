"""A record: compressed, then sealed with XChaCha20-Poly1305, in segments.

A record is the unit stored on friends. Its plaintext is cut into segments of
``SEGMENT_SIZE`` bytes so that sealing and opening need one segment of memory,
whatever the record's size. Each segment is compressed with zstd (stored raw
when that does not shrink it) and encrypted on its own.

Layout (all integers big-endian)::

    offset  size  field
    header (40 bytes)
    0       4     magic b"P2BR"
    4       1     version = 1
    5       1     kind (Kind: 1 full, 2 delta, 3 reverse, 4 pack, 5 manifest, 6 catalog)
    6       2     reserved = 0
    8       32    record id
    then, for each segment i = 0, 1, ...
    +0      1     flags: bit0 = last segment, bit1 = zstd-compressed, other bits 0
    +1      4     length L of what follows, including the 16-byte tag
    +5      16    nonce suffix, only when compressed (counted in L)
    +5|+21  rest  ciphertext = XChaCha20-Poly1305(key, nonce_i, stored bytes, ad_i)

    nonce_i = u64 i || 16 zero bytes                      (stored raw)
    nonce_i = u64 i || BLAKE2b-128(key=record key,
                        person="p2pb-nonce_v1", stored)   (compressed)
    ad_i    = header (40 bytes) || flags (1 byte) || u64 i

Every segment authenticates the header, its own position and its flags, so
reordering, dropping or duplicating segments, cutting the record short (the
last flag), or changing any byte fails authentication. Exactly one segment
is marked last and it ends the record; an empty plaintext is one empty last
segment. Segments are canonical: every segment but the last holds exactly
``SEGMENT_SIZE`` plaintext bytes and the last holds 1..SEGMENT_SIZE (0 only
when it is the only one), so one plaintext has one segmentation.

Keys and nonces. The record id is a keyed BLAKE2b of (kind, plaintext), so it
names the content and nothing else, and peers learn nothing from it. Each
record gets its own key, BLAKE2b-256(key=data_key, person="p2pb-seal_v1",
data=record id). Since the key is unique per record id and the id binds the
content, one key only ever encrypts one plaintext: a counter nonce is unique
per key, and sealing is deterministic. The same record always seals to the
same bytes, so an upload resumed after an interruption produces byte-identical
shares and nothing is stored twice.

A raw segment's stored bytes are its plaintext, a function of the record id,
so the counter nonce is safe. A compressed segment's stored bytes also depend
on the zstd level and library version: a record sealed again by another zstd
could encrypt different bytes under the same key. Its nonce therefore carries
a keyed hash of the compressed bytes (synthetic-IV style), so different bytes
never share a nonce. Hashing only the compressed output costs little: it is a
fraction of the plaintext whenever compression was worth storing.

Speed (measured here: one core, 64 MiB records, MB/s; the second figure with
glibc's mmap threshold raised, see DESIGN.md)::

                         seal        open      ratio
    random,    level 1   500 / 660   570 / 780  1.00 (stored raw)
    random,    level 3   500 / 660   570 / 800  1.00
    text-like, level 1   375 / 395   600 / 710  0.24
    text-like, level 3   295 / 295   605 / 705  0.22

Two threads sealing two records reach 530-580 MB/s on text at level 3 and
690-770 at level 1 (zstd and libsodium release the GIL). Level 3 stays the
default: friends' disks are the scarce resource and it stores ~8% less than
level 1 on text, while two cores keep it well above 200 MB/s. A third of the
AEAD time is PyNaCl's wrapper (zero-filled output buffer, then a copy).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

import zstandard
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

from p2pbackup.core.codec import Reader
from p2pbackup.errors import FormatError, IntegrityError

MAGIC = b"P2BR"
VERSION = 1
KEY_SIZE = 32
ID_SIZE = 32
HEADER_SIZE = 40
TAG_SIZE = 16
SEGMENT_SIZE = 1 << 20  # plaintext bytes per segment: bounds memory on both sides
DEFAULT_LEVEL = 3

# Frozen BLAKE2b personalisation tags. Changing one changes every record id or
# record key, which breaks every stored backup.
RECORD_ID_PERSON_v1 = b"p2pb-record_v1"
SEAL_KEY_PERSON_v1 = b"p2pb-seal_v1"
NONCE_PERSON_v1 = b"p2pb-nonce_v1"

FLAG_LAST = 0x01
FLAG_ZSTD = 0x02
_KNOWN_FLAGS = FLAG_LAST | FLAG_ZSTD

# ZSTD_COMPRESSBOUND(SEGMENT_SIZE): the largest frame zstd may emit for a segment.
# Our sealer stores raw when zstd does not shrink, but the cap is what a parser
# accepts before allocating, so garbage cannot make it allocate gigabytes.
NONCE_SUFFIX_SIZE = 16
_MAX_CIPHERTEXT = SEGMENT_SIZE + (SEGMENT_SIZE >> 8) + TAG_SIZE + NONCE_SUFFIX_SIZE

_SEGMENT_PREFIX = struct.Struct(">BI")  # flags, ciphertext length
_AD_SUFFIX = struct.Struct(">BQ")  # flags, segment index
_NONCE_COUNTER = struct.Struct(">Q")
_NONCE_PAD = bytes(16)


class Kind(IntEnum):
    """What a record holds."""

    FULL = 1  # a revlog full text
    DELTA = 2  # a revlog forward delta
    REVERSE = 3  # a revlog reverse delta
    PACK = 4  # many small blobs in one record
    MANIFEST = 5  # a snapshot manifest
    CATALOG = 6  # the backup of the local catalog


def _check_key(key: bytes, name: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise ValueError(f"{name} must be {KEY_SIZE} bytes")


def _check_id(record_id: bytes) -> None:
    if not isinstance(record_id, bytes) or len(record_id) != ID_SIZE:
        raise ValueError(f"record_id must be {ID_SIZE} bytes")


def _short(record_id: bytes) -> str:
    return record_id.hex()[:12]


class RecordIdHasher:
    """Computes a record id over data given in pieces."""

    __slots__ = ("_hash",)

    def __init__(self, record_id_key: bytes, kind: Kind) -> None:
        _check_key(record_id_key, "record_id_key")
        self._hash = hashlib.blake2b(
            bytes((Kind(kind),)), digest_size=ID_SIZE, key=record_id_key, person=RECORD_ID_PERSON_v1
        )

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


def record_id(record_id_key: bytes, kind: Kind, data: bytes | bytearray | memoryview) -> bytes:
    """The 32-byte id of a record: BLAKE2b-256 keyed with the record-id key over kind || data."""
    hasher = RecordIdHasher(record_id_key, kind)
    hasher.update(data)
    return hasher.digest()


def _record_key(data_key: bytes, record_id: bytes) -> bytes:
    return hashlib.blake2b(
        record_id, digest_size=KEY_SIZE, key=data_key, person=SEAL_KEY_PERSON_v1
    ).digest()


def _header(kind: Kind, record_id: bytes) -> bytes:
    return MAGIC + bytes((VERSION, kind, 0, 0)) + record_id


def _nonce(index: int, suffix: bytes = _NONCE_PAD) -> bytes:
    return _NONCE_COUNTER.pack(index) + suffix


def _nonce_suffix(key: bytes, stored: bytes) -> bytes:
    return hashlib.blake2b(
        stored, digest_size=NONCE_SUFFIX_SIZE, key=key, person=NONCE_PERSON_v1
    ).digest()


class Sealer:
    """Seals one record, segment by segment, in order.

    ``record_id`` must be the id of this very content (``record_id()`` or an
    equivalent binding of it): the key and nonces are safe only because one id
    never names two plaintexts. Not thread-safe (it reuses one zstd
    compressor): use one per record or per thread.
    """

    __slots__ = ("_compressor", "_finished", "_index", "_key", "header")

    def __init__(
        self, data_key: bytes, kind: Kind, record_id: bytes, level: int = DEFAULT_LEVEL
    ) -> None:
        _check_key(data_key, "data_key")
        _check_id(record_id)
        if not 1 <= level <= zstandard.MAX_COMPRESSION_LEVEL:
            raise ValueError(f"zstd level must be 1..{zstandard.MAX_COMPRESSION_LEVEL}")
        self._key = _record_key(data_key, record_id)
        # No zstd checksum: the AEAD tag already authenticates every byte.
        self._compressor = zstandard.ZstdCompressor(level=level, write_checksum=False)
        self._index = 0
        self._finished = False
        self.header = _header(Kind(kind), record_id)

    def seal_segment(self, plaintext: bytes | bytearray | memoryview, last: bool) -> bytes:
        """The sealed bytes of the next segment (flags, length, ciphertext)."""
        size = len(plaintext)
        if self._finished:
            raise ValueError("the last segment was already sealed")
        if size > SEGMENT_SIZE:
            raise ValueError(f"a segment holds at most {SEGMENT_SIZE} bytes, got {size}")
        if not last and size != SEGMENT_SIZE:
            raise ValueError(f"every segment but the last holds exactly {SEGMENT_SIZE} bytes")
        if last and size == 0 and self._index:
            raise ValueError("an empty last segment is only allowed for an empty record")
        flags = FLAG_LAST if last else 0
        compressed = self._compressor.compress(plaintext)
        if len(compressed) < size:
            flags |= FLAG_ZSTD
            stored = compressed
            suffix = _nonce_suffix(self._key, compressed)
        else:
            stored = plaintext if isinstance(plaintext, bytes) else bytes(plaintext)
            suffix = b""
        ad = self.header + _AD_SUFFIX.pack(flags, self._index)
        ciphertext = crypto_aead_xchacha20poly1305_ietf_encrypt(
            stored, ad, _nonce(self._index, suffix or _NONCE_PAD), self._key
        )
        self._index += 1
        self._finished = last
        return _SEGMENT_PREFIX.pack(flags, len(suffix) + len(ciphertext)) + suffix + ciphertext


def max_sealed_length(plaintext_length: int) -> int:
    """The most bytes a record of this plaintext length seals to (compression only ever
    shrinks a segment), so room for its shares can be reserved before it is sealed."""
    segments = max(1, -(-plaintext_length // SEGMENT_SIZE))
    per_segment = _SEGMENT_PREFIX.size + NONCE_SUFFIX_SIZE + TAG_SIZE
    return HEADER_SIZE + plaintext_length + segments * per_segment


def _segments(plaintext: bytes | bytearray | memoryview) -> Iterator[tuple[memoryview, bool]]:
    view = memoryview(plaintext).cast("B")
    size = len(view)
    if size == 0:
        yield view, True
    for start in range(0, size, SEGMENT_SIZE):
        yield view[start : start + SEGMENT_SIZE], start + SEGMENT_SIZE >= size


def seal(
    data_key: bytes,
    kind: Kind,
    record_id: bytes,
    plaintext: bytes | bytearray | memoryview,
    level: int = DEFAULT_LEVEL,
) -> bytes:
    """The whole sealed record for ``plaintext``."""
    sealer = Sealer(data_key, kind, record_id, level)
    parts = [sealer.header]
    parts += (sealer.seal_segment(segment, last) for segment, last in _segments(plaintext))
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Opened:
    """An opened record."""

    kind: Kind
    record_id: bytes
    plaintext: bytes


class RecordOpener:
    """Opens a sealed record fed in pieces split at any byte.

    ``feed`` returns the plaintext of every segment completed by the new
    bytes, each authenticated before it is returned. Only ``finish`` proves
    the record was complete.
    """

    __slots__ = (
        "_data_key",
        "_decompressor",
        "_done",
        "_expected_id",
        "_expected_kind",
        "_flags",
        "_header",
        "_index",
        "_key",
        "_need",
        "_pending",
        "kind",
        "record_id",
    )

    def __init__(
        self,
        data_key: bytes,
        expected_record_id: bytes | None = None,
        expected_kind: Kind | None = None,
    ) -> None:
        _check_key(data_key, "data_key")
        if expected_record_id is not None:
            _check_id(expected_record_id)
        self._data_key = data_key
        self._expected_id = expected_record_id
        self._expected_kind = expected_kind
        self._decompressor = zstandard.ZstdDecompressor()
        self._pending = bytearray()
        self._need = HEADER_SIZE  # bytes of the next item: header, segment prefix or ciphertext
        self._flags: int | None = None  # set while waiting for a ciphertext
        self._header = b""
        self._key = b""
        self._index = 0
        self._done = False
        self.kind: Kind | None = None
        self.record_id: bytes | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """The plaintext of every segment these bytes complete, each authenticated."""
        view = memoryview(data).cast("B")
        pieces: list[bytes] = []
        pos = 0
        while pos < len(view):
            if self._done:
                raise self._fail(f"has {len(view) - pos} unexpected bytes after its last segment")
            if not self._pending and len(view) - pos >= self._need:
                # Fast path: the whole item is in this input, no buffering.
                item: bytes | memoryview = view[pos : pos + self._need]
                pos += self._need
            else:
                take = min(self._need - len(self._pending), len(view) - pos)
                self._pending += view[pos : pos + take]
                pos += take
                if len(self._pending) < self._need:
                    break
                item, self._pending = bytes(self._pending), bytearray()
            self._take(item, pieces)
        return pieces

    def finish(self) -> None:
        """Raise IntegrityError unless the whole record, up to its last segment, was fed."""
        if not self._done:
            where = "in its header" if self.record_id is None else f"in segment {self._index}"
            raise self._fail(f"is incomplete: it ends {where}, before its last segment")

    def _what(self) -> str:
        return "sealed record" if self.record_id is None else f"record {_short(self.record_id)}"

    def _fail(self, problem: str, error: type[IntegrityError] = IntegrityError) -> IntegrityError:
        return error(f"{self._what()} {problem}")

    def _take(self, item: bytes | memoryview, pieces: list[bytes]) -> None:
        if self.record_id is None:
            self._read_header(item)
            self._need = _SEGMENT_PREFIX.size
        elif self._flags is None:
            self._flags, self._need = self._read_prefix(item)
        else:
            pieces.append(self._open_segment(bytes(item), self._flags))
            self._flags = None
            self._need = _SEGMENT_PREFIX.size

    def _read_header(self, item: bytes | memoryview) -> None:
        r = Reader(item, "sealed record")
        r.magic(MAGIC)
        r.version(VERSION)
        kind_value = r.u8("kind")
        if r.u16("reserved") != 0:
            raise r.fail("reserved header bits are set")
        rid = r.raw(ID_SIZE, "record id")
        try:
            kind = Kind(kind_value)
        except ValueError:
            raise r.fail(f"unknown record kind {kind_value}") from None
        if self._expected_id is not None and rid != self._expected_id:
            raise IntegrityError(
                f"sealed record {_short(rid)} is not the record asked for "
                f"({_short(self._expected_id)}): a friend returned the wrong data"
            )
        if self._expected_kind is not None and kind != self._expected_kind:
            raise IntegrityError(
                f"sealed record {_short(rid)} holds a {kind.name.lower()} record, "
                f"expected a {Kind(self._expected_kind).name.lower()} record"
            )
        self._header = bytes(item)
        self._key = _record_key(self._data_key, rid)
        self.kind = kind
        self.record_id = rid

    def _read_prefix(self, item: bytes | memoryview) -> tuple[int, int]:
        flags, length = _SEGMENT_PREFIX.unpack(item)
        if flags & ~_KNOWN_FLAGS:
            raise self._fail(
                f"is damaged: segment {self._index} has unknown flags {flags:#04x}", FormatError
            )
        minimum = TAG_SIZE + (NONCE_SUFFIX_SIZE if flags & FLAG_ZSTD else 0)
        if not minimum <= length <= _MAX_CIPHERTEXT:
            raise self._fail(
                f"is damaged: segment {self._index} claims {length} bytes, outside "
                f"{minimum}..{_MAX_CIPHERTEXT}",
                FormatError,
            )
        return flags, length

    def _open_segment(self, ciphertext: bytes, flags: int) -> bytes:
        index = self._index
        ad = self._header + _AD_SUFFIX.pack(flags, index)
        nonce = _nonce(index)
        if flags & FLAG_ZSTD:
            nonce = _nonce(index, ciphertext[:NONCE_SUFFIX_SIZE])
            ciphertext = ciphertext[NONCE_SUFFIX_SIZE:]
        try:
            stored = crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, self._key)
        except CryptoError:
            raise self._fail(
                f"failed authentication (segment {index}): it was damaged or tampered with, "
                "or it belongs to another owner"
            ) from None
        plaintext = self._decompress(stored, index) if flags & FLAG_ZSTD else stored
        last = bool(flags & FLAG_LAST)
        size = len(plaintext)
        if (not last and size != SEGMENT_SIZE) or (last and size == 0 and index):
            raise self._fail(f"is damaged: segment {index} holds {size} bytes")
        self._index += 1
        self._done = last
        return plaintext

    def _decompress(self, stored: bytes, index: int) -> bytes:
        # Authenticated bytes, but a buggy or hostile key holder could still make a
        # frame claim a huge size: check the claim before zstd allocates for it.
        try:
            claimed = zstandard.frame_content_size(stored)
            if not 0 <= claimed <= SEGMENT_SIZE:
                raise self._fail(
                    f"is damaged: segment {index} claims a decompressed size over {SEGMENT_SIZE}"
                )
            return self._decompressor.decompress(stored, max_output_size=SEGMENT_SIZE)
        except zstandard.ZstdError as exc:
            raise self._fail(f"is damaged: segment {index} does not decompress ({exc})") from None


def open_record(
    data_key: bytes,
    sealed: bytes | bytearray | memoryview,
    expected_record_id: bytes | None = None,
    expected_kind: Kind | None = None,
) -> Opened:
    """Open a whole sealed record; IntegrityError if it is damaged, forged or for another key."""
    opener = RecordOpener(data_key, expected_record_id, expected_kind)
    pieces = opener.feed(sealed)
    opener.finish()
    assert opener.kind is not None and opener.record_id is not None
    return Opened(opener.kind, opener.record_id, b"".join(pieces))
