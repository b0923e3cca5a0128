"""A snapshot manifest: the tree of paths, their metadata, and how to rebuild each file.

A manifest is the plaintext of a sealed record (the seal encrypts and
authenticates it; this module only turns values into bytes and back). Each
file entry carries its whole rebuild chain (a full text, then deltas each
applied to the previous text), and the manifest carries a table of every
record those chains use, so one snapshot is enough to restore its files.

Layout (integers big-endian; ``varint`` is minimal unsigned LEB128; ``zigzag``
is a signed integer mapped to a varint: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ...;
``blob`` is a varint length then that many bytes)::

    offset  size     field
    0       4        magic b"P2BM"
    4       1        version = 1
    5       16       snapshot id
    21      varint   generation (bumped when repack rewrites this snapshot's chains)
    ..      zigzag   created_at_ns (unix nanoseconds)
    ..      blob     device name, UTF-8, <= 256 bytes
    ..      varint   parent count, then 16 bytes per parent snapshot id (strictly increasing)
    ..      varint   root count, then a blob per root (the folders backed up)
    ..      varint   record count, then a RecordDescriptor per record (see refs.py),
                     record ids strictly increasing, each used by some chain
    ..      varint   entry count, then per entry, paths strictly increasing:
            varint   bytes shared with the previous entry's path (0 for the first)
            blob     the rest of the path; the shared prefix is the longest possible
            u8       type: 1 file, 2 directory, 3 symlink
            varint   mode (permission bits, <= 0o7777)
            zigzag   mtime_ns
            varint   size (0 for directories and symlinks)
            blob     symlink target                       (symlinks only)
            32       revision id                          (files with size > 0 only)
            u8       chain length, 1..255                 (files with size > 0 only)
            per step:
              u8     kind: 1 full (first step only), 2 delta, 3 reverse (later steps)
              32     revision id this step produces (not for the last step: it
                     produces the entry's own revision, already written above)
              varint index of the record in the table above
              varint offset of the blob in the record's plaintext
              varint length of the blob

Paths, roots and symlink targets are the file system's names: UTF-8, where a
byte that is not valid UTF-8 is kept as-is (Python's ``surrogateescape``), so
a file with a legacy-encoded name is backed up and restored byte for byte.
Paths sort by code point, which for valid UTF-8 is byte order.

Every value has exactly one encoding (minimal varints, sorted tables, longest
shared prefixes), so the same snapshot always seals to the same record.

Path safety: restore writes each path under a destination folder, so a path
is relative, '/'-separated, with no empty, '.' or '..' component and no NUL,
and its parent must be a directory entry of the same manifest (or the top
level). The last rule also means no entry can sit under a symlink, so restore
never writes through a link it just created.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise
from operator import attrgetter

from p2pbackup.core.codec import Reader, Writer, unzigzag, zigzag
from p2pbackup.core.refs import ID_SIZE, MAX_RECORD_LENGTH, BlobRef, RecordDescriptor, StorageKind
from p2pbackup.errors import FormatError

MAGIC = b"P2BM"
VERSION = 1
SNAPSHOT_ID_SIZE = 16
MAX_DEVICE_BYTES = 256
MAX_NAME_BYTES = 32768  # a path, root or link target: Windows' long-path limit, well past Linux's
MAX_CHAIN = 255
MAX_MODE = 0o7777
MAX_SIZE = 2**63 - 1  # off_t
MAX_GENERATION = 2**64 - 1

# The fewest bytes each repeated item can take, so a count read from garbage is
# bounded by what is left and cannot make the parser allocate.
_MIN_DESCRIPTOR = ID_SIZE + 3 + 32
_MIN_ENTRY = 6

_path_of = attrgetter("path")


class EntryType(IntEnum):
    FILE = 1
    DIR = 2
    SYMLINK = 3


@dataclass(frozen=True, slots=True)
class ChainStep:
    """One link of a file's rebuild chain: a full text, or a delta on the previous text."""

    kind: StorageKind
    rev_id: bytes
    blob: BlobRef

    def __post_init__(self) -> None:
        if not isinstance(self.kind, StorageKind):
            raise ValueError(f"chain step kind must be a StorageKind, not {self.kind!r}")
        if len(self.rev_id) != ID_SIZE or len(self.blob.record_id) != ID_SIZE:
            raise ValueError("chain step revision and record ids must be 32 bytes")
        if not (
            0 <= self.blob.offset <= MAX_RECORD_LENGTH
            and 0 <= self.blob.length <= MAX_RECORD_LENGTH
        ):
            raise ValueError("chain step blob offset or length is out of range")


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of a snapshot. Empty files, directories and symlinks have no chain."""

    path: str
    type: EntryType
    mode: int
    mtime_ns: int
    size: int
    target: str
    rev_id: bytes
    chain: tuple[ChainStep, ...]

    def __post_init__(self) -> None:
        _check_path(self.path)
        where = f"entry {self.path!r}"
        if not isinstance(self.type, EntryType):
            raise ValueError(f"{where}: type must be an EntryType, not {self.type!r}")
        if not 0 <= self.mode <= MAX_MODE:
            raise ValueError(f"{where}: mode {self.mode:#o} has more than permission bits")
        if not _fits_int64(self.mtime_ns):
            raise ValueError(f"{where}: mtime_ns {self.mtime_ns} does not fit in 64 bits")
        if not 0 <= self.size <= MAX_SIZE:
            raise ValueError(f"{where}: size {self.size} is out of range")
        if self.type is EntryType.SYMLINK:
            if "\0" in self.target or len(encode_name(self.target, where)) > MAX_NAME_BYTES:
                raise ValueError(f"{where}: the link target holds NUL or is too long")
        elif self.target:
            raise ValueError(f"{where}: only a symlink has a target")
        if self.type is EntryType.FILE and self.size:
            _check_chain(self, where)
        elif self.rev_id or self.chain or self.size:
            raise ValueError(f"{where}: only a file of size > 0 has a size, a revision and a chain")


def _check_chain(entry: Entry, where: str) -> None:
    chain = entry.chain
    if len(entry.rev_id) != ID_SIZE:
        raise ValueError(f"{where}: the revision id must be 32 bytes")
    if not 1 <= len(chain) <= MAX_CHAIN:
        raise ValueError(f"{where}: a chain has 1 to {MAX_CHAIN} steps, not {len(chain)}")
    if chain[0].kind is not StorageKind.FULL:
        raise ValueError(f"{where}: the chain must start with a full text")
    if len(chain) > 1 and any(step.kind is StorageKind.FULL for step in chain[1:]):
        raise ValueError(f"{where}: only the first step of a chain is a full text")
    if chain[-1].rev_id != entry.rev_id:
        raise ValueError(f"{where}: the chain does not end at the entry's revision")


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    """What changed between two snapshots, each part sorted by path."""

    added: tuple[Entry, ...]
    removed: tuple[Entry, ...]
    changed: tuple[tuple[Entry, Entry], ...]  # (old, new)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A snapshot. Construct with ``build`` (which fills the record table) or ``from_bytes``."""

    snapshot_id: bytes
    generation: int
    created_at_ns: int
    device: str
    parents: tuple[bytes, ...]
    roots: tuple[str, ...]
    records: tuple[RecordDescriptor, ...]
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        if len(self.snapshot_id) != SNAPSHOT_ID_SIZE:
            raise ValueError("the snapshot id must be 16 bytes")
        if not 0 <= self.generation <= MAX_GENERATION:
            raise ValueError(f"generation {self.generation} is out of range")
        if not _fits_int64(self.created_at_ns):
            raise ValueError(f"created_at_ns {self.created_at_ns} does not fit in 64 bits")
        if len(self.device.encode("utf-8")) > MAX_DEVICE_BYTES:
            raise ValueError(f"the device name is longer than {MAX_DEVICE_BYTES} bytes")
        if any(len(p) != SNAPSHOT_ID_SIZE for p in self.parents):
            raise ValueError("parent snapshot ids must be 16 bytes")
        if not _strictly_increasing(self.parents) or self.snapshot_id in self.parents:
            raise ValueError("parents must be sorted, unique, and not the snapshot itself")
        for root in self.roots:
            if not root or "\0" in root or len(encode_name(root, "root")) > MAX_NAME_BYTES:
                raise ValueError(f"root {root!r} is empty, holds NUL or is too long")
        _check_tree(self.entries)
        _check_records(self.records, self.entries)

    @classmethod
    def build(
        cls,
        *,
        snapshot_id: bytes,
        generation: int,
        created_at_ns: int,
        device: str,
        parents: Iterable[bytes],
        roots: Iterable[str],
        entries: Iterable[Entry],
        descriptors: Mapping[bytes, RecordDescriptor],
    ) -> Manifest:
        """A manifest whose record table holds, once each, every record the chains use.

        ``descriptors`` may hold more records than needed; only the used ones are kept.
        """
        entries = tuple(sorted(entries, key=_path_of))
        used = {step.blob.record_id for e in entries for step in e.chain}
        missing = used - descriptors.keys()
        if missing:
            raise ValueError(f"no descriptor for record {min(missing).hex()[:12]}")
        return cls(
            snapshot_id,
            generation,
            created_at_ns,
            device,
            tuple(sorted(set(parents))),
            tuple(roots),
            tuple(descriptors[rid] for rid in sorted(used)),
            entries,
        )

    def find(self, path: str) -> Entry | None:
        i = bisect_left(self.entries, path, key=_path_of)
        if i < len(self.entries) and self.entries[i].path == path:
            return self.entries[i]
        return None

    def walk(self, prefix: str = "") -> tuple[Entry, ...]:
        """Every entry under the directory ``prefix`` (all of them for ""), not itself."""
        prefix = prefix.strip("/")
        if not prefix:
            return self.entries
        # Paths under "a" are exactly those in ["a/", "a0"): '0' follows '/' in code points.
        start = bisect_left(self.entries, prefix + "/", key=_path_of)
        end = bisect_left(self.entries, prefix + "0", lo=start, key=_path_of)
        return self.entries[start:end]

    @property
    def file_count(self) -> int:
        return sum(1 for e in self.entries if e.type is EntryType.FILE)

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def record_ids(self) -> frozenset[bytes]:
        return frozenset(d.record_id for d in self.records)

    def to_bytes(self) -> bytes:
        w = Writer().raw(MAGIC).u8(VERSION).raw(self.snapshot_id)
        w.varint(self.generation).varint(zigzag(self.created_at_ns)).text(self.device)
        w.varint(len(self.parents))
        for parent in self.parents:
            w.raw(parent)
        w.varint(len(self.roots))
        for root in self.roots:
            w.blob(encode_name(root, "root"))
        w.varint(len(self.records))
        for descriptor in self.records:
            descriptor.write_to(w)
        index = {d.record_id: i for i, d in enumerate(self.records)}
        w.varint(len(self.entries))
        previous = b""
        for entry in self.entries:
            path = encode_name(entry.path, "path")
            shared = _shared_prefix(previous, path)
            w.varint(shared).blob(path[shared:])
            w.u8(entry.type).varint(entry.mode).varint(zigzag(entry.mtime_ns)).varint(entry.size)
            if entry.type is EntryType.SYMLINK:
                w.blob(encode_name(entry.target, "target"))
            elif entry.chain:
                last = len(entry.chain) - 1
                w.raw(entry.rev_id).u8(len(entry.chain))
                for i, step in enumerate(entry.chain):
                    w.u8(step.kind)
                    if i < last:  # the last step's revision is the entry's own, written above
                        w.raw(step.rev_id)
                    blob = step.blob
                    w.varint(index[blob.record_id]).varint(blob.offset).varint(blob.length)
            previous = path
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and check a manifest; anything malformed or unsafe raises FormatError."""
        r = Reader(data, "manifest")
        try:
            r.magic(MAGIC)
            r.version(VERSION)
            snapshot_id = r.raw(SNAPSHOT_ID_SIZE, "snapshot id")
            generation = r.varint("generation", MAX_GENERATION)
            created_at_ns = unzigzag(r.varint("creation time"))
            device = r.text("device name", MAX_DEVICE_BYTES)
            parents = tuple(
                r.raw(SNAPSHOT_ID_SIZE, "parent id")
                for _ in range(_count(r, "parent count", SNAPSHOT_ID_SIZE))
            )
            roots = tuple(
                _decode_name(r.blob("root", MAX_NAME_BYTES))
                for _ in range(_count(r, "root count", 1))
            )
            records = tuple(
                RecordDescriptor.read_from(r)
                for _ in range(_count(r, "record count", _MIN_DESCRIPTOR))
            )
            entries = _read_entries(r, records)
            r.end()
            return cls(
                snapshot_id, generation, created_at_ns, device, parents, roots, records, entries
            )
        except ValueError as exc:  # a value check in a constructor: the bytes are invalid
            raise FormatError(f"manifest: {exc}") from None


def diff(old: Manifest, new: Manifest) -> ManifestDiff:
    """Paths added, removed, and changed (type, size, mtime, mode, revision or link target).

    Chains are not compared: repack rewrites them without changing any file.
    """
    before = {e.path: e for e in old.entries}
    after = {e.path: e for e in new.entries}
    return ManifestDiff(
        added=tuple(e for e in new.entries if e.path not in before),
        removed=tuple(e for e in old.entries if e.path not in after),
        changed=tuple(
            (before[e.path], e)
            for e in new.entries
            if e.path in before and _summary(before[e.path]) != _summary(e)
        ),
    )


def _summary(entry: Entry) -> tuple[object, ...]:
    return (entry.type, entry.size, entry.mtime_ns, entry.mode, entry.rev_id, entry.target)


def _read_entries(r: Reader, records: tuple[RecordDescriptor, ...]) -> tuple[Entry, ...]:
    varint, blob = r.varint, r.blob  # bound once: this loop runs once per path
    entries = []
    previous = b""
    for _ in range(_count(r, "entry count", _MIN_ENTRY)):
        shared = varint("shared path prefix", len(previous))
        suffix = blob("entry path", MAX_NAME_BYTES - shared)
        if shared < len(previous) and suffix[:1] == previous[shared : shared + 1]:
            raise r.fail("an entry path does not share the longest prefix (not canonical)")
        path = previous[:shared] + suffix
        entry_type = _ENTRY_TYPES.get(r.u8("entry type"))
        if entry_type is None:
            raise r.fail("an entry type is unknown")
        mode = varint("mode", MAX_MODE)
        mtime_ns = unzigzag(varint("mtime"))
        size = varint("size", MAX_SIZE)
        target, rev_id, chain = "", b"", ()
        if entry_type is EntryType.SYMLINK:
            target = _decode_name(blob("link target", MAX_NAME_BYTES))
        elif entry_type is EntryType.FILE and size:
            rev_id = r.raw(ID_SIZE, "revision id")
            chain = _read_chain(r, records, rev_id)
        entries.append(
            Entry(_decode_name(path), entry_type, mode, mtime_ns, size, target, rev_id, chain)
        )
        previous = path
    return tuple(entries)


def _read_chain(
    r: Reader, records: tuple[RecordDescriptor, ...], rev_id: bytes
) -> tuple[ChainStep, ...]:
    length = r.u8("chain length")
    steps = []
    for i in range(1, length + 1):
        kind = _STORAGE_KINDS.get(r.u8("chain step kind"))
        if kind is None:
            raise r.fail("a chain step kind is unknown")
        # The last step produces the entry's own revision: its id is not repeated.
        step_rev = r.raw(ID_SIZE, "chain step revision id") if i < length else rev_id
        index = r.varint("record index")
        if index >= len(records):
            raise r.fail(f"record index {index} is past the table of {len(records)} records")
        offset = r.varint("blob offset", MAX_RECORD_LENGTH)
        size = r.varint("blob length", MAX_RECORD_LENGTH)
        steps.append(ChainStep(kind, step_rev, BlobRef(records[index].record_id, offset, size)))
    return tuple(steps)


_ENTRY_TYPES = {t.value: t for t in EntryType}
_STORAGE_KINDS = {k.value: k for k in StorageKind}


def _check_path(path: str) -> None:
    # One pass of substring searches for the common, valid case; the slow checks
    # below only run to name the problem.
    wrapped = f"/{path}/"
    if "//" in wrapped or "/./" in wrapped or "/../" in wrapped or "\0" in path:
        if not path:
            raise ValueError("a path is empty")
        if "\0" in path:
            raise ValueError(f"path {path!r} holds a NUL byte")
        if path[0] == "/":
            raise ValueError(f"path {path!r} is absolute; snapshot paths are relative")
        raise ValueError(f"path {path!r} has an empty, '.' or '..' component")
    may_be_long = len(path) > MAX_NAME_BYTES or not path.isascii()  # ASCII: bytes == chars
    if may_be_long and len(encode_name(path, "path")) > MAX_NAME_BYTES:
        raise ValueError(f"path {path[:64]!r}... is longer than {MAX_NAME_BYTES} bytes")


def _check_tree(entries: tuple[Entry, ...]) -> None:
    """Sorted, unique, and every entry's parent is a directory entry (or the top level)."""
    directories: set[str] = set()
    previous = ""
    for entry in entries:
        path = entry.path
        if path <= previous:
            raise ValueError(f"entries are not sorted and unique: {path!r} after {previous!r}")
        parent = path.rpartition("/")[0]
        if parent and parent not in directories:
            raise ValueError(f"entry {path!r} is not inside a directory entry {parent!r}")
        if entry.type is EntryType.DIR:
            directories.add(path)
        previous = path


def _check_records(records: tuple[RecordDescriptor, ...], entries: tuple[Entry, ...]) -> None:
    ids = [d.record_id for d in records]
    if not _strictly_increasing(ids):
        raise ValueError("the record table is not sorted by id, or lists a record twice")
    used = {step.blob.record_id for e in entries for step in e.chain}
    if used != set(ids):
        unknown = used.difference(ids)
        if unknown:
            raise ValueError(
                f"a chain uses record {min(unknown).hex()[:12]}, missing from the table"
            )
        raise ValueError("the record table lists a record that no chain uses")


def _strictly_increasing(items: Iterable[bytes]) -> bool:
    return all(a < b for a, b in pairwise(items))


def _count(r: Reader, field: str, min_item_size: int) -> int:
    return r.varint(field, r.remaining() // min_item_size)


def encode_name(name: str, what: str) -> bytes:
    """UTF-8, with undecodable file-name bytes (surrogateescape) restored as they were.
    ValueError if no file name has these bytes (the scanner skips such a name)."""
    try:
        data = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {name!r} holds a character no file name can have") from None
    if not name.isascii() and data.decode("utf-8", "surrogateescape") != name:
        # e.g. "\udcc3\udca9" encodes to the bytes of "é": two names, one encoding
        raise ValueError(f"{what} {name!r} escapes bytes that are valid UTF-8")
    return data


def _decode_name(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _shared_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix, by bisection: a few slice compares, no byte loop."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _fits_int64(value: int) -> bool:
    return -(2**63) <= value < 2**63
