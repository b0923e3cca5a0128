"""A file's revisions: a DAG, each stored as a full text or a delta.

Pure bookkeeping: which blob rebuilds which revision, from what. The delta
bytes are the delta module's business, and revision ids are given by the
caller (this module never hashes content).

- FULL: the whole text; no base.
- DELTA: a forward delta against one of the revision's parents (its base).
- REVERSE: a delta against a *later* revision, made by repack so that old
  versions survive without their old full text (``FdddF`` -> ``rrrrF``).

A revision's *chain* is its base, its base's base, ... down to a full text.
Rebuilding reads every blob on the chain and applies one delta per *link*: a
full text has 0 links, a delta on it 1, and so on (Mercurial counts the same
way). Bases always point at revisions already in the revlog, so chains never
loop; ``apply_repack`` re-checks every chain because it moves bases.

Layout of ``Revlog.to_bytes`` (for the local catalog and its backup)::

    offset  size     field
    0       4        magic b"P2RL"
    4       1        version, 1
    5       varint   revision count
    then, per revision (offsets from the start of the revision):
    +0      32       rev_id
    +32     1        parent count p (0..2)
    +33     32 x p   parent ids
    ...     varint   size: bytes of the file at this revision
    ...     1        kind: 1 FULL, 2 DELTA, 3 REVERSE
    ...     32       base rev_id (kinds 2 and 3 only)
    ...     32       blob record id       (these three are a BlobRef, see refs.py)
    ...     varint   blob offset into the record's plaintext
    ...     varint   blob length
    ...     varint   blob_size: the bytes this revision's step reads when rebuilding

Revisions are in canonical order: by (links, rev_id), so every base comes
before the revisions that use it (a reverse delta's base is a later revision,
so file order is not history order). The reader rejects any other order, so
a revlog has exactly one encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

from p2pbackup.core.codec import Reader, Writer
from p2pbackup.core.refs import ID_SIZE, MAX_RECORD_LENGTH, BlobRef, StorageKind
from p2pbackup.errors import ConfigError, IntegrityError

MAGIC = b"P2RL"
VERSION = 1
MAX_PARENTS = 2  # a merge of two devices' histories
_SMALLEST_REVISION = 70  # encoded bytes of a full text with no parents: bounds the count


def _short(rev_id: bytes) -> str:
    return rev_id.hex()[:12]


@dataclass(frozen=True)
class Revision:
    """One version of a file and where its stored bytes are."""

    rev_id: bytes
    parents: tuple[bytes, ...]
    size: int
    kind: StorageKind
    base: bytes | None  # None for FULL; a parent for DELTA; a later revision for REVERSE
    blob: BlobRef
    blob_size: int

    def __post_init__(self) -> None:
        ids = (self.rev_id, *self.parents, *([self.base] if self.base is not None else []))
        if any(len(i) != ID_SIZE for i in ids):
            raise ValueError("revision ids must be 32 bytes")
        if len(self.parents) > MAX_PARENTS or len(set(self.parents)) != len(self.parents):
            raise ValueError("a revision has at most two distinct parents")
        if self.rev_id in self.parents or self.rev_id == self.base:
            raise ValueError("a revision cannot be its own parent or base")
        if self.size < 0 or self.blob_size < 0:
            raise ValueError("sizes cannot be negative")
        if not isinstance(self.kind, StorageKind):
            raise ValueError("kind must be a StorageKind")
        if (self.kind is StorageKind.FULL) != (self.base is None):
            raise ValueError("a full text has no base, and a delta needs one")
        if self.kind is StorageKind.DELTA and self.base not in self.parents:
            raise ValueError("a forward delta's base must be one of its parents")
        if self.kind is StorageKind.REVERSE and self.base in self.parents:
            raise ValueError("a reverse delta's base must be a later revision, not a parent")


@dataclass(frozen=True)
class Step:
    """One blob to read: the first step's is a full text, each next one a delta on it."""

    rev_id: bytes
    kind: StorageKind
    blob: BlobRef


@dataclass(frozen=True)
class ChainPolicy:
    """When to stop adding deltas and store a full text again (Mercurial's rule)."""

    max_links: int = 16
    max_read_factor: float = 2.0

    def __post_init__(self) -> None:
        if self.max_links < 0 or self.max_read_factor < 0:
            raise ConfigError("The delta chain limits cannot be negative.")


class Revlog:
    """The revisions of one file by id; each one's base is always present."""

    __slots__ = ("_revs",)

    def __init__(self, revisions: Iterable[Revision] = ()) -> None:
        self._revs: dict[bytes, Revision] = {}
        for rev in revisions:
            self.add(rev)

    @classmethod
    def _of(cls, revs: dict[bytes, Revision]) -> Revlog:
        """A revlog around revisions whose bases the caller has checked."""
        revlog = cls()
        revlog._revs = revs
        return revlog

    def add(self, rev: Revision) -> None:
        """Add a revision whose base is already here; adding the same one again is a no-op.

        As the base must already exist, a new revision can never close a loop of bases.
        """
        known = self._revs.get(rev.rev_id)
        if known is not None:
            if known != rev:
                raise IntegrityError(
                    f"Revision {_short(rev.rev_id)} was added twice with different storage."
                )
            return
        if rev.base is not None and rev.base not in self._revs:
            raise IntegrityError(
                f"Revision {_short(rev.rev_id)} is a delta on {_short(rev.base)}, "
                "which is not in the revlog."
            )
        self._revs[rev.rev_id] = rev

    def get(self, rev_id: bytes) -> Revision:
        try:
            return self._revs[rev_id]
        except KeyError:
            raise IntegrityError(f"Revision {_short(rev_id)} is not in the revlog.") from None

    def __contains__(self, rev_id: object) -> bool:
        return rev_id in self._revs

    def __iter__(self) -> Iterator[Revision]:
        return iter(self._revs.values())

    def __len__(self) -> int:
        return len(self._revs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Revlog) and self._revs == other._revs

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Revlog({len(self._revs)} revisions)"

    def tips(self) -> frozenset[bytes]:
        """Revisions that no revision here names as a parent."""
        parents = {p for rev in self._revs.values() for p in rev.parents}
        return frozenset(r for r in self._revs if r not in parents)

    def to_bytes(self) -> bytes:
        w = Writer().raw(MAGIC).u8(VERSION).varint(len(self._revs))
        for rev in sorted(self._revs.values(), key=_canonical_key(self)):
            w.raw(rev.rev_id).u8(len(rev.parents))
            for parent in rev.parents:
                w.raw(parent)
            w.varint(rev.size).u8(rev.kind)
            if rev.base is not None:
                w.raw(rev.base)
            rev.blob.write_to(w)
            w.varint(rev.blob_size)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Revlog:
        r = Reader(data, "revlog")
        r.magic(MAGIC)
        r.version(VERSION)
        revlog = cls()
        links: dict[bytes, int] = {}
        previous: tuple[int, bytes] | None = None
        for _ in range(r.varint("revision count", r.remaining() // _SMALLEST_REVISION)):
            rev = _read_revision(r)
            if rev.base is not None and rev.base not in links:
                raise r.fail(f"revision {_short(rev.rev_id)} comes before its base")
            links[rev.rev_id] = 0 if rev.base is None else links[rev.base] + 1
            key = (links[rev.rev_id], rev.rev_id)
            if previous is not None and key <= previous:
                raise r.fail("revisions are repeated or out of order")
            previous = key
            revlog.add(rev)
        r.end()
        return revlog


def _read_revision(r: Reader) -> Revision:
    rev_id = r.raw(ID_SIZE, "revision id")
    parent_count = r.u8("parent count")
    if parent_count > MAX_PARENTS:
        raise r.fail(f"a revision has {parent_count} parents, at most {MAX_PARENTS} allowed")
    parents = tuple(r.raw(ID_SIZE, "parent id") for _ in range(parent_count))
    size = r.varint("file size", MAX_RECORD_LENGTH)
    kind_byte = r.u8("storage kind")
    if kind_byte not in StorageKind._value2member_map_:
        raise r.fail(f"unknown storage kind {kind_byte}")
    kind = StorageKind(kind_byte)
    base = None if kind is StorageKind.FULL else r.raw(ID_SIZE, "base id")
    blob = BlobRef.read_from(r)
    blob_size = r.varint("blob size", MAX_RECORD_LENGTH)
    try:
        return Revision(rev_id, parents, size, kind, base, blob, blob_size)
    except ValueError as error:
        raise r.fail(f"revision {_short(rev_id)} is inconsistent: {error}") from None


def _canonical_key(revlog: Revlog) -> Callable[[Revision], tuple[int, bytes]]:
    """(links, rev_id): bases first, then by id; one order for one revlog."""
    links = {rev.rev_id: chain_cost(revlog, rev.rev_id)[0] for rev in revlog}
    return lambda rev: (links[rev.rev_id], rev.rev_id)


def rebuild_plan(revlog: Revlog, rev_id: bytes) -> list[Step]:
    """The blobs that rebuild a revision: a full text, then each delta in turn."""
    steps: list[Step] = []
    seen: set[bytes] = set()
    current: bytes | None = rev_id
    while current is not None:
        if current in seen:
            raise IntegrityError(
                f"Revision {_short(rev_id)} cannot be rebuilt: its deltas form a loop."
            )
        seen.add(current)
        try:
            rev = revlog.get(current)
        except IntegrityError:
            raise IntegrityError(
                f"Revision {_short(rev_id)} cannot be rebuilt: it needs {_short(current)}, "
                "which is not in the revlog."
            ) from None
        steps.append(Step(rev.rev_id, rev.kind, rev.blob))
        current = rev.base
    steps.reverse()
    return steps


def chain_cost(revlog: Revlog, rev_id: bytes) -> tuple[int, int]:
    """(links, bytes read) to rebuild a revision; a full text has 0 links."""
    steps = rebuild_plan(revlog, rev_id)
    return len(steps) - 1, sum(revlog.get(step.rev_id).blob_size for step in steps)


def choose_storage(
    revlog: Revlog,
    parent_id: bytes | None,
    new_size: int,
    delta_size: int,
    policy: ChainPolicy = ChainPolicy(),
) -> StorageKind:
    """DELTA on the parent if the new chain stays within the policy, otherwise FULL."""
    if parent_id is None or parent_id not in revlog:
        return StorageKind.FULL
    links, read = chain_cost(revlog, parent_id)
    if links + 1 <= policy.max_links and read + delta_size <= policy.max_read_factor * new_size:
        return StorageKind.DELTA
    return StorageKind.FULL


def repack_plan(
    revlog: Revlog, new_full_id: bytes, max_links: int = ChainPolicy.max_links
) -> list[tuple[bytes, bytes]]:
    """(rev_id, new_base_id) pairs, nearest first, to turn into reverse deltas.

    Starts at a revision stored FULL (otherwise there is nothing to repack) and
    walks back: first to its first parent, then along each delta's base, while
    the revision reached is a DELTA or a FULL. It stops after the old full text
    (whose chain this was), at a reverse delta (already repacked), at a parent
    no longer here, or after ``max_links`` revisions, so the oldest converted
    revision is at most ``max_links`` links from the new full text.
    """
    child = revlog.get(new_full_id)
    if child.kind is not StorageKind.FULL or not child.parents:
        return []
    plan: list[tuple[bytes, bytes]] = []
    ancestor_id: bytes | None = child.parents[0]
    while len(plan) < max_links and ancestor_id in revlog and ancestor_id != new_full_id:
        ancestor = revlog.get(ancestor_id)
        if ancestor.kind is StorageKind.REVERSE or child.rev_id in ancestor.parents:
            break  # already repacked, or a history that loops back on itself
        plan.append((ancestor.rev_id, child.rev_id))
        child, ancestor_id = ancestor, ancestor.base
    return plan


def apply_repack(
    revlog: Revlog,
    converted: Mapping[bytes, tuple[BlobRef, int]],
    plan: list[tuple[bytes, bytes]],
) -> Revlog:
    """A new revlog where the converted revisions are REVERSE deltas on their planned base.

    ``converted`` maps rev_id -> (new blob, its size) for the reverse deltas
    that were stored. They must be a nearest-first prefix of ``plan``: skipping
    one would leave its older neighbour a reverse delta on a revision that is
    still a delta on it, a loop. Every revision is checked to still rebuild.
    The blobs the converted revisions used (the old full text among them) are
    no longer referenced, so no live set includes them any more.
    """
    planned = [rev_id for rev_id, _ in plan]
    applied = planned[: next((i for i, r in enumerate(planned) if r not in converted), len(plan))]
    if set(converted) != set(applied):
        raise ValueError("converted revisions must be a nearest-first prefix of the repack plan")
    new = Revlog._of(dict(revlog._revs))
    for rev_id, base in plan[: len(applied)]:
        blob, blob_size = converted[rev_id]
        if base not in revlog:
            raise IntegrityError(f"Repack base {_short(base)} is not in the revlog.")
        new._revs[rev_id] = replace(
            revlog.get(rev_id), kind=StorageKind.REVERSE, base=base, blob=blob, blob_size=blob_size
        )
    for rev in new:
        rebuild_plan(new, rev.rev_id)
    return new


@dataclass(frozen=True)
class PruneResult:
    """What survives a prune, and which blobs may now be removed."""

    revlog: Revlog
    dropped: frozenset[bytes]
    live_blobs: frozenset[BlobRef]  # used by a kept revision
    dead_blobs: frozenset[BlobRef]  # used only by dropped revisions


def prune(revlog: Revlog, keep: Iterable[bytes]) -> PruneResult:
    """Keep the given revisions and every revision their rebuilds read; drop the rest.

    A kept revision's parents may be dropped: parents are history, bases are
    what rebuilding needs. Blobs are compared by reference, so a blob shared by
    a kept and a dropped revision stays live. (Whole records may still hold
    other live blobs: the caller removes a record only when none of its blobs
    is live anywhere.)
    """
    needed: set[bytes] = set()
    for rev_id in keep:
        needed.update(step.rev_id for step in rebuild_plan(revlog, rev_id))
    kept = Revlog._of({rev.rev_id: rev for rev in revlog if rev.rev_id in needed})
    live = frozenset(rev.blob for rev in kept)
    dropped = [rev for rev in revlog if rev.rev_id not in needed]
    return PruneResult(
        kept,
        frozenset(rev.rev_id for rev in dropped),
        live,
        frozenset(rev.blob for rev in dropped if rev.blob not in live),
    )
