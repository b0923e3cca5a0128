"""A file's revisions: a DAG, each stored as a full text or a delta.

Pure bookkeeping: which blob rebuilds which revision, from what. The delta
bytes themselves are the delta module's business.

- DELTA: a forward delta against the parent revision.
- REVERSE: a delta against a *later* revision, made by repack so that old
  versions survive without their old full text (``FdddF`` -> ``rrrrF``).
- Chain policy (Mercurial's rule): store a full text when rebuilding would
  read more than ``max_read_factor`` times the file's size, or follow more
  than ``max_links`` links.

Layout of ``Revlog.to_bytes`` (for the local catalog)::

    magic b"P2RL" | version 1 | count varint | per revision:
    rev_id 32 | parent count u8 | parents 32 each | size varint | kind u8 |
    base 32 (if kind != FULL) | BlobRef | blob_size varint
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from p2pbackup.core.codec import Reader, Writer
from p2pbackup.core.refs import MAX_RECORD_LENGTH, BlobRef, StorageKind
from p2pbackup.errors import IntegrityError

MAGIC = b"P2RL"
VERSION = 1


@dataclass(frozen=True)
class Revision:
    rev_id: bytes
    parents: tuple[bytes, ...]
    size: int
    kind: StorageKind
    base: bytes | None
    blob: BlobRef
    blob_size: int


@dataclass(frozen=True)
class Step:
    rev_id: bytes
    kind: StorageKind
    blob: BlobRef


@dataclass(frozen=True)
class ChainPolicy:
    max_links: int = 16
    max_read_factor: float = 2.0


@dataclass
class Revlog:
    _revs: dict[bytes, Revision] = field(default_factory=dict)

    def add(self, rev: Revision) -> None:
        known = self._revs.get(rev.rev_id)
        if known is not None:
            if known != rev:
                raise IntegrityError("A revision was added twice with different storage.")
            return
        if rev.kind is StorageKind.FULL:
            if rev.base is not None:
                raise IntegrityError("A full text has no base.")
        elif rev.base not in self._revs:
            raise IntegrityError("A delta's base revision is unknown.")
        self._revs[rev.rev_id] = rev

    def get(self, rev_id: bytes) -> Revision:
        try:
            return self._revs[rev_id]
        except KeyError:
            raise IntegrityError(f"Revision {rev_id.hex()[:12]} is not in the revlog.") from None

    def __contains__(self, rev_id: object) -> bool:
        return rev_id in self._revs

    def __iter__(self) -> Iterator[Revision]:
        return iter(self._revs.values())

    def __len__(self) -> int:
        return len(self._revs)

    def tips(self) -> frozenset[bytes]:
        parents = {p for rev in self._revs.values() for p in rev.parents}
        return frozenset(r for r in self._revs if r not in parents)

    def _bases_first(self) -> list[Revision]:
        """Every revision after its base (a reverse delta's base is a later revision)."""
        ordered: list[Revision] = []
        placed: set[bytes] = set()
        for rev in self._revs.values():
            chain = []
            current: Revision | None = rev
            while current is not None and current.rev_id not in placed:
                chain.append(current)
                current = self._revs[current.base] if current.base is not None else None
            for item in reversed(chain):
                placed.add(item.rev_id)
                ordered.append(item)
        return ordered

    def to_bytes(self) -> bytes:
        w = Writer().raw(MAGIC).u8(VERSION).varint(len(self._revs))
        for rev in self._bases_first():
            w.raw(rev.rev_id).u8(len(rev.parents))
            for parent in rev.parents:
                w.raw(parent)
            w.varint(rev.size).u8(rev.kind)
            if rev.kind is not StorageKind.FULL:
                w.raw(rev.base or b"")
            rev.blob.write_to(w)
            w.varint(rev.blob_size)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Revlog:
        r = Reader(data, "revlog")
        r.magic(MAGIC)
        r.version(VERSION)
        revlog = cls()
        for _ in range(r.varint("revision count", r.remaining() // 70)):
            rev_id = r.raw(32, "revision id")
            parents = tuple(r.raw(32, "parent") for _ in range(r.u8("parent count")))
            size = r.varint("size", MAX_RECORD_LENGTH)
            try:
                kind = StorageKind(r.u8("kind"))
            except ValueError:
                raise r.fail("unknown storage kind") from None
            base = None if kind is StorageKind.FULL else r.raw(32, "base")
            blob = BlobRef.read_from(r)
            revlog.add(
                Revision(
                    rev_id,
                    parents,
                    size,
                    kind,
                    base,
                    blob,
                    r.varint("blob size", MAX_RECORD_LENGTH),
                )
            )
        r.end()
        return revlog


def rebuild_plan(revlog: Revlog, rev_id: bytes) -> list[Step]:
    """The steps that rebuild a revision: a full text, then deltas in order."""
    steps: list[Step] = []
    seen: set[bytes] = set()
    current: bytes | None = rev_id
    while current is not None:
        if current in seen:
            raise IntegrityError("The revlog has a cycle of deltas.")
        seen.add(current)
        rev = revlog.get(current)
        steps.append(Step(rev.rev_id, rev.kind, rev.blob))
        current = rev.base
    steps.reverse()
    return steps


def chain_cost(revlog: Revlog, rev_id: bytes) -> tuple[int, int]:
    """(links, bytes read) to rebuild a revision."""
    revs = [revlog.get(s.rev_id) for s in rebuild_plan(revlog, rev_id)]
    return len(revs), sum(r.blob_size for r in revs)


def choose_storage(
    revlog: Revlog,
    parent_id: bytes | None,
    new_size: int,
    delta_size: int,
    policy: ChainPolicy = ChainPolicy(),
) -> StorageKind:
    if parent_id is None or parent_id not in revlog:
        return StorageKind.FULL
    links, read = chain_cost(revlog, parent_id)
    if links + 1 > policy.max_links or read + delta_size > policy.max_read_factor * new_size:
        return StorageKind.FULL
    return StorageKind.DELTA


def repack_plan(
    revlog: Revlog, new_full_id: bytes, max_links: int = 16
) -> list[tuple[bytes, bytes]]:
    """Ancestors of a new full text to turn into reverse deltas, nearest first.

    Walks back through parents while each ancestor is stored FULL or as a
    DELTA on the very revision we came from, up to ``max_links``.
    """
    if revlog.get(new_full_id).kind is not StorageKind.FULL:
        raise ValueError("repack starts from a revision stored as a full text")
    plan: list[tuple[bytes, bytes]] = []
    child = revlog.get(new_full_id)
    while len(plan) < max_links - 1 and len(child.parents) == 1:
        parent = revlog.get(child.parents[0])
        if parent.kind is StorageKind.REVERSE:
            break
        plan.append((parent.rev_id, child.rev_id))
        if parent.kind is StorageKind.FULL:
            break
        child = parent
    return plan


def apply_repack(
    revlog: Revlog, converted: Mapping[bytes, tuple[BlobRef, int]], plan: list[tuple[bytes, bytes]]
) -> Revlog:
    """A new revlog where the planned revisions are REVERSE deltas with their new blobs."""
    new = Revlog(dict(revlog._revs))
    for rev_id, base in plan:
        if rev_id in converted:
            blob, size = converted[rev_id]
            new._revs[rev_id] = replace(
                new._revs[rev_id], kind=StorageKind.REVERSE, base=base, blob=blob, blob_size=size
            )
    for rev in new:  # every revision must still rebuild
        rebuild_plan(new, rev.rev_id)
    return new


@dataclass(frozen=True)
class PruneResult:
    revlog: Revlog
    dropped: frozenset[bytes]
    live_blobs: frozenset[BlobRef]
    dead_blobs: frozenset[BlobRef]


def prune(revlog: Revlog, keep: Iterable[bytes]) -> PruneResult:
    """Keep the given revisions and everything their rebuild needs; drop the rest."""
    needed: set[bytes] = set()
    for rev_id in keep:
        needed.update(step.rev_id for step in rebuild_plan(revlog, rev_id))
    kept = Revlog({r: revlog.get(r) for r in revlog._revs if r in needed})
    live = frozenset(rev.blob for rev in kept)
    dead = frozenset(rev.blob for rev in revlog if rev.blob not in live)
    dropped = frozenset(r for r in revlog._revs if r not in needed)
    return PruneResult(kept, dropped, live, dead)
