"""The owner's head: one small, signed, encrypted, mergeable pointer to everything.

Every friend keeps a full copy of the head; readers ask them all and take the
highest valid sequence number, and a friend does compare-and-swap on that
number. The body (the snapshots, the friend list, the catalog backup) is
encrypted under the head key, so a friend learns only its size and when it
changes, yet checks the signature and sequence number without that key.

Envelope (integers big-endian)::

    offset  size     field
    0       4        magic b"P2BH"
    4       1        version = 1
    5       32       owner id (the owner's Ed25519 public key)
    37      8        sequence number, u64
    45      varint   length L of the nonce and ciphertext (40 .. 16 MiB + 24)
    ..      24       nonce, random
    ..      L - 24   XChaCha20-Poly1305(head key, nonce, body, associated data = the 45 bytes above)
    ..      64       Ed25519 signature by the owner of b"p2pbackup\\0head_v1\\0" + all bytes before

Body (inside the ciphertext; ``zigzag`` maps signed to unsigned varints:
0, -1, 1 ... -> 0, 1, 2 ...)::

    4       magic b"P2HB"
    1       version = 2 (1 is still read)
    varint  tip count, then per snapshot, snapshot ids strictly increasing:
              16 snapshot id | varint generation | zigzag created_at_ns
              | RecordDescriptor of its manifest (see refs.py)
              version 2 only: | device name (UTF-8, <= 256 bytes)
              | blob folder-set id (0 bytes: unknown, or 16: ``folder_set_id``)
    varint  forgotten count, then 16-byte snapshot ids, strictly increasing
    varint  friend count, then per friend, owner ids strictly increasing:
              32 owner id | blob name (UTF-8, <= 256 bytes)
              | varint count + blobs: addresses (UTF-8, <= 64 of <= 1024 bytes)
              | varint count + blobs: node ids (UTF-8, <= 64 of <= 256 bytes)
              | varint updated_at (unix seconds) | u8 removed (0 or 1)
    u8      1 if a catalog backup follows, else 0
              zigzag created_at_ns | RecordDescriptor

Version 2 adds each snapshot's device and folder set, what retention and
``latest`` group by, so a snapshot whose manifest cannot be read can still be
grouped. A version 1 tip reads as an unknown device and folder set (its
manifest has them).

Merging. Two devices may publish at once; each friend then holds one of the
two heads. ``merge`` joins them: tips are the union (per snapshot id the
highest generation, so a repacked snapshot wins), minus every forgotten id;
forgotten ids are the union, so a merge never resurrects a forgotten
snapshot; per friend the entry updated last wins (a removed friend stays as a
tombstone for the same reason); the newest catalog backup wins. Every tie is
broken by the encoded bytes, so the merge is commutative, associative and
idempotent: no order of merges loses anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import TypeVar

import nacl.utils
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey

from p2pbackup.core import signing
from p2pbackup.core.codec import Reader, Writer, unzigzag, zigzag
from p2pbackup.core.manifest import encode_name
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.errors import IntegrityError

MAGIC = b"P2BH"
VERSION = 1
BODY_MAGIC = b"P2HB"
BODY_VERSION = 2
READ_BODY_VERSIONS = (1, 2)

# Frozen signing domain: changing it invalidates every head ever published.
HEAD_SIGNING_DOMAIN_v1 = b"head_v1"
# Frozen: changing it splits every device's snapshots into new retention groups.
FOLDER_SET_PERSON_v1 = b"p2pb-folders_v1"

OWNER_ID_SIZE = 32
SNAPSHOT_ID_SIZE = 16
KEY_SIZE = 32
NONCE_SIZE = 24
TAG_SIZE = 16
HEADER_SIZE = 45
MAX_BODY = 16 << 20  # thousands of snapshots fit in a few MiB; a friend stores no more
MAX_SEQ = 2**64 - 1
MAX_GENERATION = 2**64 - 1
MAX_FRIEND_NAME = 256
MAX_LIST = 64
MAX_ADDRESS = 1024
MAX_NODE_ID = 256
MAX_DEVICE = 256
FOLDER_SET_ID_SIZE = 16

# The fewest bytes a tip and a friend take, so a count read from garbage is
# bounded by what is left and cannot make the parser allocate.
_MIN_DESCRIPTOR = 32 + 3 + 32  # id, k, n, length, one share hash
_MIN_TIP = SNAPSHOT_ID_SIZE + 2 + _MIN_DESCRIPTOR
_MIN_FRIEND = OWNER_ID_SIZE + 5


def folder_set_id(roots: Iterable[str]) -> bytes:
    """16 bytes naming a set of folder labels (a manifest's roots), whatever their order."""
    h = hashlib.blake2b(digest_size=FOLDER_SET_ID_SIZE, person=FOLDER_SET_PERSON_v1)
    for root in sorted({encode_name(root, "root") for root in roots}):
        h.update(len(root).to_bytes(4, "big") + root)
    return h.digest()


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    """A snapshot in the head: its id, which rewrite of it, where its manifest is, and
    (version 2) the device and folder set it belongs to; "" and b"" when unknown."""

    snapshot_id: bytes
    generation: int
    created_at_ns: int
    manifest: RecordDescriptor
    device: str = ""
    folder_set: bytes = b""

    def __post_init__(self) -> None:
        if len(self.snapshot_id) != SNAPSHOT_ID_SIZE:
            raise ValueError("a snapshot id is 16 bytes")
        if not 0 <= self.generation <= MAX_GENERATION or not _fits_int64(self.created_at_ns):
            raise ValueError("snapshot generation or creation time out of range")
        if len(self.device.encode("utf-8")) > MAX_DEVICE:
            raise ValueError(f"a device name is at most {MAX_DEVICE} bytes")
        if len(self.folder_set) not in (0, FOLDER_SET_ID_SIZE):
            raise ValueError("a folder-set id is 16 bytes, or none")

    def write_to(self, w: Writer) -> None:
        w.raw(self.snapshot_id).varint(self.generation).varint(zigzag(self.created_at_ns))
        self.manifest.write_to(w)
        w.text(self.device).blob(self.folder_set)

    @classmethod
    def read_from(cls, r: Reader, version: int = BODY_VERSION) -> SnapshotRef:
        snapshot_id = r.raw(SNAPSHOT_ID_SIZE, "snapshot id")
        generation = r.varint("generation", MAX_GENERATION)
        created_at_ns = _read_int64(r, "snapshot time")
        manifest = RecordDescriptor.read_from(r)
        if version == 1:
            return cls(snapshot_id, generation, created_at_ns, manifest)
        device = r.text("device name", MAX_DEVICE)
        folder_set = r.blob("folder-set id", FOLDER_SET_ID_SIZE)
        return cls(snapshot_id, generation, created_at_ns, manifest, device, folder_set)


@dataclass(frozen=True, slots=True)
class FriendEntry:
    """A friend as the owner knows them, so a restored device can reconnect."""

    owner_id: bytes
    name: str
    addresses: tuple[str, ...]
    node_ids: tuple[str, ...]
    updated_at: int
    removed: bool

    def __post_init__(self) -> None:
        if len(self.owner_id) != OWNER_ID_SIZE:
            raise ValueError("a friend's owner id is 32 bytes")
        if len(self.name.encode("utf-8")) > MAX_FRIEND_NAME:
            raise ValueError(f"a friend's name is at most {MAX_FRIEND_NAME} bytes")
        for items, limit in ((self.addresses, MAX_ADDRESS), (self.node_ids, MAX_NODE_ID)):
            if len(items) > MAX_LIST or any(len(i.encode("utf-8")) > limit for i in items):
                raise ValueError(f"a friend has at most {MAX_LIST} addresses and node ids")
        if not 0 <= self.updated_at <= 2**64 - 1 or not isinstance(self.removed, bool):
            raise ValueError("a friend's update time or removed flag is invalid")

    def write_to(self, w: Writer) -> None:
        w.raw(self.owner_id).text(self.name)
        for items in (self.addresses, self.node_ids):
            w.varint(len(items))
            for item in items:
                w.text(item)
        w.varint(self.updated_at).u8(self.removed)

    @classmethod
    def read_from(cls, r: Reader) -> FriendEntry:
        owner_id = r.raw(OWNER_ID_SIZE, "friend owner id")
        name = r.text("friend name", MAX_FRIEND_NAME)
        addresses = _read_texts(r, "friend address", MAX_ADDRESS)
        node_ids = _read_texts(r, "friend node id", MAX_NODE_ID)
        updated_at = r.varint("friend update time")
        removed = r.u8("friend removed flag")
        if removed > 1:
            raise r.fail(f"friend removed flag is {removed}, not 0 or 1")
        return cls(owner_id, name, addresses, node_ids, updated_at, bool(removed))


@dataclass(frozen=True, slots=True)
class CatalogRef:
    """The latest backup of the local catalog."""

    created_at_ns: int
    descriptor: RecordDescriptor

    def __post_init__(self) -> None:
        if not _fits_int64(self.created_at_ns):
            raise ValueError("catalog backup time out of range")


@dataclass(frozen=True, slots=True)
class HeadBody:
    """What the head points to. One tip per snapshot id, none of them forgotten."""

    tips: frozenset[SnapshotRef]
    forgotten: frozenset[bytes]
    friends: frozenset[FriendEntry]
    catalog: CatalogRef | None

    def __post_init__(self) -> None:
        ids = {t.snapshot_id for t in self.tips}
        if len(ids) != len(self.tips):
            raise ValueError("a head lists one version of each snapshot")
        if any(len(f) != SNAPSHOT_ID_SIZE for f in self.forgotten):
            raise ValueError("a forgotten snapshot id is 16 bytes")
        if not ids.isdisjoint(self.forgotten):
            raise ValueError("a head cannot list a snapshot it has forgotten")
        if len({f.owner_id for f in self.friends}) != len(self.friends):
            raise ValueError("a head lists one entry per friend")

    def to_bytes(self) -> bytes:
        """The canonical encoding: every set sorted, so equal bodies give equal bytes."""
        w = Writer().raw(BODY_MAGIC).u8(BODY_VERSION)
        tips = sorted(self.tips, key=lambda t: t.snapshot_id)
        w.varint(len(tips))
        for tip in tips:
            tip.write_to(w)
        w.varint(len(self.forgotten))
        for snapshot_id in sorted(self.forgotten):
            w.raw(snapshot_id)
        friends = sorted(self.friends, key=lambda f: f.owner_id)
        w.varint(len(friends))
        for friend in friends:
            friend.write_to(w)
        w.u8(self.catalog is not None)
        if self.catalog is not None:
            w.varint(zigzag(self.catalog.created_at_ns))
            self.catalog.descriptor.write_to(w)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> HeadBody:
        r = Reader(data, "head body")
        try:
            return cls._read(r)
        except ValueError as exc:  # a value check in a constructor: the bytes are invalid
            raise r.fail(str(exc)) from None

    @classmethod
    def _read(cls, r: Reader) -> HeadBody:
        r.magic(BODY_MAGIC)
        version = r.u8("version")
        if version not in READ_BODY_VERSIONS:
            raise r.fail(
                f"format version {version} is not supported (this program reads versions "
                f"{', '.join(map(str, READ_BODY_VERSIONS))}); a newer p2pbackup may be needed"
            )
        tips = [
            SnapshotRef.read_from(r, version) for _ in range(_count(r, "tip count", _MIN_TIP))
        ]
        _check_increasing(r, [t.snapshot_id for t in tips], "snapshots")
        forgotten = [
            r.raw(SNAPSHOT_ID_SIZE, "forgotten id")
            for _ in range(_count(r, "forgotten count", SNAPSHOT_ID_SIZE))
        ]
        _check_increasing(r, forgotten, "forgotten snapshots")
        friends = [FriendEntry.read_from(r) for _ in range(_count(r, "friend count", _MIN_FRIEND))]
        _check_increasing(r, [f.owner_id for f in friends], "friends")
        has_catalog = r.u8("catalog flag")
        if has_catalog > 1:
            raise r.fail(f"catalog flag is {has_catalog}, not 0 or 1")
        catalog = None
        if has_catalog:
            catalog = CatalogRef(_read_int64(r, "catalog time"), RecordDescriptor.read_from(r))
        r.end()
        if not {t.snapshot_id for t in tips}.isdisjoint(forgotten):
            raise r.fail("a snapshot is both listed and forgotten")
        return cls(frozenset(tips), frozenset(forgotten), frozenset(friends), catalog)


@dataclass(frozen=True, slots=True)
class SignedHead:
    """What anyone can check without the head key: who signed it, and its number."""

    owner_id: bytes
    seq: int


def merge(a: HeadBody, b: HeadBody) -> HeadBody:
    """The join of two heads: commutative, associative, idempotent; nothing is lost."""
    forgotten = a.forgotten | b.forgotten
    tips = _best_per(
        (t for t in a.tips | b.tips if t.snapshot_id not in forgotten),
        lambda t: t.snapshot_id,
        lambda t: (t.generation, t.manifest.to_bytes(), t.created_at_ns, t.device,
                   t.folder_set),  # a known device and folder set win over a version 1 tip
    )
    friends = _best_per(a.friends | b.friends, lambda f: f.owner_id, _friend_order)
    catalogs = [c for c in (a.catalog, b.catalog) if c is not None]
    catalog = max(catalogs, key=lambda c: (c.created_at_ns, c.descriptor.to_bytes()), default=None)
    return HeadBody(frozenset(tips), forgotten, frozenset(friends), catalog)


def seal_head(signing_key: SigningKey, head_key: bytes, seq: int, body: HeadBody) -> bytes:
    """The signed envelope of ``body`` as head number ``seq``."""
    return _seal_head_with_nonce(signing_key, head_key, seq, body, nacl.utils.random(NONCE_SIZE))


def verify_head(data: bytes, owner_id: bytes | None = None) -> SignedHead:
    """Check structure and signature (no head key needed): what a friend does before storing."""
    signed, _ = _verified(bytes(data), owner_id)
    return signed


def open_head(data: bytes, owner_id: bytes, head_key: bytes) -> tuple[int, HeadBody]:
    """Verify ``owner_id``'s head and decrypt it: its sequence number and body."""
    _check_key(head_key)
    data = bytes(data)
    signed, sealed = _verified(data, owner_id)
    try:
        body = crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed[NONCE_SIZE:], data[:HEADER_SIZE], sealed[:NONCE_SIZE], head_key
        )
    except CryptoError:
        raise IntegrityError(
            "head: the body cannot be decrypted; the head key does not match this owner"
        ) from None
    return signed.seq, HeadBody.from_bytes(body)


def _seal_head_with_nonce(
    signing_key: SigningKey, head_key: bytes, seq: int, body: HeadBody, nonce: bytes
) -> bytes:
    """``seal_head`` with a chosen nonce, for fixed test vectors only."""
    _check_key(head_key)
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"head sequence number {seq} does not fit in 64 bits")
    plaintext = body.to_bytes()
    if len(plaintext) > MAX_BODY - TAG_SIZE:
        raise ValueError("the head body is too large; forget old snapshots to shrink it")
    header = Writer().raw(MAGIC).u8(VERSION).raw(bytes(signing_key.verify_key)).u64(seq)
    header_bytes = header.getvalue()
    ciphertext = crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, header_bytes, nonce, head_key
    )
    unsigned = header.blob(nonce + ciphertext).getvalue()
    return unsigned + signing.sign(signing_key, HEAD_SIGNING_DOMAIN_v1, unsigned)


def _verified(data: bytes, owner_id: bytes | None) -> tuple[SignedHead, bytes]:
    """The checked envelope's owner and number, and its nonce + ciphertext."""
    r = Reader(data, "head")
    r.magic(MAGIC)
    r.version(VERSION)
    owner = r.raw(OWNER_ID_SIZE, "owner id")
    seq = r.u64("sequence number")
    sealed = r.blob("encrypted body", MAX_BODY + NONCE_SIZE)
    if len(sealed) < NONCE_SIZE + TAG_SIZE:
        raise r.fail("the encrypted body is too short")
    r.raw(signing.SIGNATURE_SIZE, "signature")
    r.end()
    if owner_id is not None and owner != owner_id:
        raise IntegrityError(
            f"head: it belongs to owner {owner.hex()[:12]}, not {owner_id.hex()[:12]}"
        )
    cut = len(data) - signing.SIGNATURE_SIZE
    signing.verify(owner, HEAD_SIGNING_DOMAIN_v1, data[:cut], data[cut:], "head")
    return SignedHead(owner, seq), sealed


_T = TypeVar("_T")


def _best_per(
    items: Iterable[_T], identity: Callable[[_T], bytes], order: Callable[[_T], tuple]
) -> list[_T]:
    """Per identity, the item greatest in ``order`` (a total order, so ties cannot occur)."""
    best: dict[bytes, _T] = {}
    for item in items:
        key = identity(item)
        if key not in best or order(item) > order(best[key]):
            best[key] = item
    return list(best.values())


def _friend_order(friend: FriendEntry) -> tuple[int, bool, bytes]:
    """Newest first; in the same second a removal wins (paired and unfriended within one
    second is an unfriend), then the bytes, so the order never depends on the arguments'."""
    w = Writer()
    friend.write_to(w)
    return friend.updated_at, friend.removed, w.getvalue()


def _read_texts(r: Reader, field: str, maximum: int) -> tuple[str, ...]:
    return tuple(r.text(field, maximum) for _ in range(r.varint(f"{field} count", MAX_LIST)))


def _count(r: Reader, field: str, min_item_size: int) -> int:
    return r.varint(field, r.remaining() // min_item_size)


def _check_increasing(r: Reader, ids: list[bytes], what: str) -> None:
    if any(a >= b for a, b in pairwise(ids)):
        raise r.fail(f"{what} are not sorted by id, or one is listed twice")


def _check_key(head_key: bytes) -> None:
    if len(head_key) != KEY_SIZE:
        raise ValueError("the head key is 32 bytes")


def _read_int64(r: Reader, field: str) -> int:
    return unzigzag(r.varint(field))  # every u64 maps into the int64 range


def _fits_int64(value: int) -> bool:
    return -(2**63) <= value < 2**63
