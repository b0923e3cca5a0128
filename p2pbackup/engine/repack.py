"""Repack: turn the chain behind a newer full text into reverse deltas (`FdddF` → `rrrrF`).

Run by ``forget --prune`` before pruning. For each file whose revlog has a
full text stored after a chain of deltas, the older revisions become reverse
deltas against their newer neighbour (``revlog.repack_plan``), so the old
full text is needed by no one and prune frees it, while every kept version
still restores. Kept snapshots that use a changed chain are rewritten as the
next generation of the same snapshot (same id); the head's merge keeps the
highest generation. Texts up to ``MAX_TEXT`` are rebuilt in memory; a file with a
larger revision is rebuilt on disk instead (``_OnDisk``: two texts at a time in a
scratch folder, as restore rebuilds a large file), its signatures read from there and
its reverse delta hashed in one pass and sent in another, so memory stays bounded
whatever the file's size.

Upkeep runs it under a ``RepackBudget``: its CPU work (rebuilding, signatures, deltas)
is followed by enough rest to hold it at a share of one core, and what it reads from
and sends to friends shares one token bucket (and is counted: ``Meter``).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from p2pbackup.core import delta as deltas
from p2pbackup.core import head as heads
from p2pbackup.core.chunking import signature_of
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.manifest import ChainStep, Manifest
from p2pbackup.core.refs import BlobRef, RecordDescriptor, StorageKind
from p2pbackup.core.revlog import Revlog, apply_repack, rebuild_plan, repack_plan
from p2pbackup.core.seal import Kind, RecordIdHasher, record_id
from p2pbackup.engine import sourcefile
from p2pbackup.engine.fetcher import Fetcher, RecordCache
from p2pbackup.engine.headstore import publish
from p2pbackup.engine.restore import Restorer
from p2pbackup.engine.state import BackupState, FileState
from p2pbackup.engine.throttle import Throttle
from p2pbackup.engine.uploader import Uploader, split_segments
from p2pbackup.errors import IntegrityError
from p2pbackup.storage.store import ShareKey, ShareStore

MAX_TEXT = 64 * 1024 * 1024  # larger texts are rebuilt on disk, not in memory
CACHE_BYTES = 64 * 1024 * 1024  # records kept while the repack runs: not every one it read

T = TypeVar("T")


@dataclass(frozen=True)
class RepackBudget:
    """What a repack may use: ``cpu``, the share of one core its own CPU work keeps busy
    (each piece of work is followed by rest in proportion); ``rate``, bytes per second
    read from and sent to friends together (None: no limit); ``seconds``, how long it may
    go on starting files (None: until done), so a backup waiting behind it waits no
    longer: what is left is repacked the next time, as nothing is lost by stopping
    between files."""

    cpu: float = 1.0
    rate: float | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.cpu <= 1 or (self.rate is not None and self.rate <= 0):
            raise ValueError("a repack budget is a share of a core in (0, 1] and a rate > 0")

    def rest_after(self, cpu_seconds: float) -> float:
        """Seconds to rest after ``cpu_seconds`` of work to hold the share at ``cpu``."""
        return cpu_seconds * (1 / self.cpu - 1)

    async def work(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread, then the rest its CPU time calls for."""

        def _timed() -> tuple[T, float]:
            started = time.thread_time()
            return fn(*args), time.thread_time() - started

        result, spent = await trio.to_thread.run_sync(_timed)
        if self.cpu < 1:
            await trio.sleep(self.rest_after(spent))
        return result

    def stores(
        self, stores: Mapping[str, ShareStore], meter: Meter | None = None
    ) -> dict[str, ShareStore]:
        """``stores`` counted into ``meter``, and with a ``rate``, sharing one bucket of
        that many bytes a second for what they read and write."""
        bucket = Throttle(self.rate) if self.rate is not None else None
        meter = meter if meter is not None else Meter()
        return {name: _MeteredStore(store, bucket, meter) for name, store in stores.items()}


@dataclass
class Meter:
    """Share bytes a repack read from friends and sent to them."""

    read: int = 0
    sent: int = 0


class _MeteredStore:
    """A store whose reads and writes are counted, and wait for the bucket if there is one;
    everything else passes through (a wrapper, as engine/throttle.py's)."""

    def __init__(self, store: ShareStore, bucket: Throttle | None, meter: Meter) -> None:
        self._store, self._bucket, self._meter = store, bucket, meter
        self.name = store.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def _take(self, size: int) -> None:
        if self._bucket is not None:
            await self._bucket.take(size)

    async def put(self, key: ShareKey, share: bytes) -> None:
        await self._take(len(share))
        await self._store.put(key, share)
        self._meter.sent += len(share)

    async def put_part(
        self, key: ShareKey, offset: int, reserve: int, last: bool, piece: bytes
    ) -> bool:
        await self._take(len(piece))
        taken = await self._store.put_part(key, offset, reserve, last, piece)
        self._meter.sent += len(piece)
        return taken

    async def get(self, key: ShareKey) -> bytes:
        share = await self._store.get(key)
        self._meter.read += len(share)
        await self._take(len(share))
        return share

    async def get_range(self, key: ShareKey, offset: int, length: int) -> bytes:
        piece = await self._store.get_range(key, offset, length)
        self._meter.read += len(piece)
        await self._take(len(piece))
        return piece


@dataclass
class RepackReport:
    revisions: int = 0  # turned into reverse deltas
    snapshots: int = 0  # rewritten as a new generation
    left_for_later: bool = False  # out of time: the next repack goes on from here


class _Texts:
    """Revision texts rebuilt from friends, with the records read lately cached."""

    def __init__(
        self, fetcher: Fetcher, descriptors: Mapping[bytes, RecordDescriptor],
        budget: RepackBudget,
    ) -> None:  # fmt: skip
        self._descriptors = descriptors
        self._records = RecordCache(fetcher, CACHE_BYTES)
        self._budget = budget

    async def blob(self, blob: BlobRef) -> bytes:
        record = await self._records.get(self._descriptors[blob.record_id])
        return record[blob.offset : blob.offset + blob.length]

    async def text(self, revlog: Revlog, rev_id: bytes) -> bytes:
        text = b""
        for step in rebuild_plan(revlog, rev_id):
            blob = await self.blob(step.blob)
            if step.kind is StorageKind.FULL:
                text = blob
            else:  # up to MAX_TEXT of CPU work: off the event loop, within the budget
                text = await self._budget.work(deltas.apply_delta_bytes, blob, text)
        if len(text) != revlog.get(rev_id).size:
            raise IntegrityError(f"Revision {rev_id.hex()[:12]} did not rebuild to its size.")
        return text


def _reverse_delta(base_text: bytes, rev_text: bytes) -> bytes:
    return deltas.make_delta(signature_of(base_text), rev_text)


class _OnDisk:
    """Reverse deltas of a file too large to hold: its texts rebuilt in ``folder``."""

    def __init__(
        self, keys: OwnerKeys, fetcher: Fetcher, uploader: Uploader,
        descriptors: dict[bytes, RecordDescriptor], budget: RepackBudget, folder: str,
    ) -> None:  # fmt: skip
        self._keys, self._uploader, self._budget = keys, uploader, budget
        self._descriptors, self._folder = descriptors, folder
        self._restorer = Restorer(fetcher)
        self._texts: dict[bytes, str] = {}  # revision -> its text on disk, two at most

    async def _text(self, revlog: Revlog, rev_id: bytes) -> str:
        if rev_id not in self._texts:
            path = os.path.join(self._folder, rev_id.hex())
            chain = rebuild_plan(revlog, rev_id)
            await self._restorer.text_to_file(self._descriptors, chain,
                                              revlog.get(rev_id).size, path)  # fmt: skip
            self._texts[rev_id] = path
        return self._texts[rev_id]

    async def reverse_delta(
        self, revlog: Revlog, rev_id: bytes, base: bytes
    ) -> tuple[BlobRef, int]:
        """``rev_id`` as a reverse delta on ``base``, stored; the plan walks back, so the
        base's text is needed no more and ``rev_id``'s is the next one's base."""
        base_path, rev_path = await self._text(revlog, base), await self._text(revlog, rev_id)
        base_sig = await self._budget.work(_signature, base_path, revlog.get(base).size)
        rev_sig = await self._budget.work(_signature, rev_path, revlog.get(rev_id).size)
        plan = await self._budget.work(deltas.plan_delta, base_sig, rev_sig)
        size = plan.encoded_size()
        rid = await self._budget.work(_reverse_id, self._keys.record_id_key, rev_path, plan)
        self._descriptors[rid] = await self._uploader.store_stream(
            Kind.REVERSE, rid, lambda: sourcefile.delta_segments(rev_path, plan), size
        )
        os.unlink(self._texts.pop(base))
        return BlobRef(rid, 0, size), size

    def done(self) -> None:
        """The file's plans are done: its texts go."""
        for path in self._texts.values():
            os.unlink(path)
        self._texts.clear()


def _signature(path: str, size: int):
    signature, _ = sourcefile.read_signature(path, size, keep=False)
    if signature.size != size:
        raise IntegrityError(f"A rebuilt revision has {signature.size} bytes, not {size}.")
    return signature


def _reverse_id(record_id_key: bytes, path: str, plan: deltas.DeltaPlan) -> bytes:
    """A large reverse delta's record id, from a first pass over it; its bytes not kept.
    The same id as ``record_id`` over the whole delta: the bytes are the same."""
    hasher = RecordIdHasher(record_id_key, Kind.REVERSE)
    for piece in sourcefile.delta_pieces(path, plan):
        hasher.update(piece)
    return hasher.digest()


def _chains(revlog: Revlog) -> dict[bytes, tuple[ChainStep, ...]]:
    return {
        rev.rev_id: tuple(
            ChainStep(s.kind, s.rev_id, s.blob) for s in rebuild_plan(revlog, rev.rev_id)
        )
        for rev in revlog
    }


async def repack(
    keys: OwnerKeys,
    stores: Mapping[str, ShareStore],
    state: BackupState,
    uploader: Uploader,
    fetcher: Fetcher,
    kept: list[tuple[heads.SnapshotRef, Manifest]],
    friends: frozenset[heads.FriendEntry],
    *,
    budget: RepackBudget = RepackBudget(),
    max_text: int = MAX_TEXT,
    scratch: str | None = None,
) -> tuple[RepackReport, list[tuple[heads.SnapshotRef, Manifest]]]:
    """Repack every file this device backs up; the kept snapshots, rewritten where needed.
    A file with a revision over ``max_text`` bytes is rebuilt in a temporary folder under
    ``scratch`` (None: the system's), not in memory. ``stores``, ``uploader`` and
    ``fetcher`` are the caller's: built over ``budget.stores`` for a bandwidth budget."""
    report = RepackReport()
    descriptors = {rid: rec.descriptor for rid, rec in state.records.items()}
    for _, manifest in kept:
        descriptors.update({d.record_id: d for d in manifest.records})
    texts = _Texts(fetcher, descriptors, budget)
    changed: dict[bytes, tuple[ChainStep, ...]] = {}  # revision -> its new chain
    with tempfile.TemporaryDirectory(prefix="repack-", dir=scratch) as folder:
        started = trio.current_time()
        for path in sorted(state.files):
            revlog = state.revlog(path)
            if not len(revlog):
                continue
            out_of_time = budget.seconds is not None and (
                trio.current_time() - started > budget.seconds
            )  # checked once a file was repacked: every round gets somewhere
            if out_of_time and report.revisions:
                report.left_for_later = True
                break
            on_disk = None
            if max(r.size for r in revlog) > max_text:
                on_disk = _OnDisk(keys, fetcher, uploader, descriptors, budget, folder)
            new = revlog
            for full in [r for r in revlog if r.kind is StorageKind.FULL and r.parents]:
                plan = repack_plan(new, full.rev_id)
                if not plan:
                    continue
                converted: dict[bytes, tuple[BlobRef, int]] = {}
                held: dict[bytes, bytes] = {}  # the last text: the next pair's base
                for rev_id, base in plan:
                    if on_disk is not None:
                        converted[rev_id] = await on_disk.reverse_delta(new, rev_id, base)
                        continue
                    base_text = held.pop(base, None)
                    if base_text is None:
                        base_text = await texts.text(new, base)
                    rev_text = await texts.text(new, rev_id)
                    held = {rev_id: rev_text}
                    delta = await budget.work(_reverse_delta, base_text, rev_text)
                    rid = record_id(keys.record_id_key, Kind.REVERSE, delta)
                    descriptors[rid] = await uploader.store(Kind.REVERSE, rid,
                                                            split_segments(delta))  # fmt: skip
                    converted[rev_id] = (BlobRef(rid, 0, len(delta)), len(delta))
                if on_disk is not None:
                    on_disk.done()
                new = apply_repack(new, converted, plan)
                report.revisions += len(converted)
            changed.update(_repacked(state, path, revlog, new))
    if not changed:
        return report, kept
    return report, await _rewrite(keys, stores, state, uploader, kept, friends, changed,
                                  descriptors, report)  # fmt: skip


def _repacked(
    state: BackupState, path: str, revlog: Revlog, new: Revlog
) -> dict[bytes, tuple[ChainStep, ...]]:
    """The file's revlog repacked in the state; the revisions whose chains changed."""
    if new is revlog:
        return {}
    before, after = _chains(revlog), _chains(new)
    changed = {rev: chain for rev, chain in after.items() if before.get(rev) != chain}
    state.replace_revlog(path, new)
    # A backup that meets one of these contents again must use the new chain.
    state.contents.update({rev: chain for rev, chain in changed.items() if rev in state.contents})
    current = state.files[path]
    if current.entry.rev_id in changed:
        entry = dataclasses.replace(current.entry, chain=changed[current.entry.rev_id])
        state.file_done(path, FileState(current.size, current.mtime_ns, current.inode, entry),
                        None)  # fmt: skip
    return changed


async def _rewrite(
    keys: OwnerKeys, stores: Mapping[str, ShareStore], state: BackupState, uploader: Uploader,
    kept: list[tuple[heads.SnapshotRef, Manifest]], friends: frozenset[heads.FriendEntry],
    changed: Mapping[bytes, tuple[ChainStep, ...]], descriptors: Mapping[bytes, RecordDescriptor],
    report: RepackReport,
) -> list[tuple[heads.SnapshotRef, Manifest]]:  # fmt: skip
    """Kept snapshots that use a changed chain, as their next generation, published."""
    out, tips = [], set()
    for ref, manifest in kept:
        if not any(e.rev_id in changed for e in manifest.entries):
            out.append((ref, manifest))
            continue
        entries = [
            dataclasses.replace(e, chain=changed[e.rev_id]) if e.rev_id in changed else e
            for e in manifest.entries
        ]
        rewritten = Manifest.build(
            snapshot_id=manifest.snapshot_id, generation=ref.generation + 1,
            created_at_ns=manifest.created_at_ns, device=manifest.device,
            parents=manifest.parents, roots=manifest.roots, entries=entries,
            descriptors=descriptors,
        )  # fmt: skip
        data = rewritten.to_bytes()
        rid = record_id(keys.record_id_key, Kind.MANIFEST, data)
        descriptor = await uploader.store(Kind.MANIFEST, rid, split_segments(data))
        new_ref = heads.SnapshotRef(
            manifest.snapshot_id, ref.generation + 1, ref.created_at_ns, descriptor,
            manifest.device, heads.folder_set_id(manifest.roots),
        )  # fmt: skip
        tips.add(new_ref)
        out.append((new_ref, rewritten))
        report.snapshots += 1
    await publish(keys, stores, state, heads.HeadBody(frozenset(tips), frozenset(), friends, None))
    return out
