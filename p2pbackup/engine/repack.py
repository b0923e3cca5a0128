"""Repack: turn the chain behind a newer full text into reverse deltas (`FdddF` → `rrrrF`).

Run by ``forget --prune`` before pruning. For each file whose revlog has a
full text stored after a chain of deltas, the older revisions become reverse
deltas against their newer neighbour (``revlog.repack_plan``), so the old
full text is needed by no one and prune frees it, while every kept version
still restores. Kept snapshots that use a changed chain are rewritten as the
next generation of the same snapshot (same id); the head's merge keeps the
highest generation. Texts are rebuilt in memory, so files larger than
``MAX_TEXT`` are left as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import trio

from p2pbackup.core import delta as deltas
from p2pbackup.core import head as heads
from p2pbackup.core.chunking import signature_of
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.manifest import ChainStep, Manifest
from p2pbackup.core.refs import BlobRef, RecordDescriptor, StorageKind
from p2pbackup.core.revlog import Revlog, apply_repack, rebuild_plan, repack_plan
from p2pbackup.core.seal import Kind, record_id
from p2pbackup.engine.fetcher import Fetcher, RecordCache
from p2pbackup.engine.headstore import publish
from p2pbackup.engine.state import BackupState, FileState
from p2pbackup.engine.uploader import Uploader, split_segments
from p2pbackup.errors import IntegrityError
from p2pbackup.storage.store import ShareStore

MAX_TEXT = 64 * 1024 * 1024
CACHE_BYTES = 64 * 1024 * 1024  # records kept while the repack runs: not every one it read


@dataclass
class RepackReport:
    revisions: int = 0  # turned into reverse deltas
    snapshots: int = 0  # rewritten as a new generation


class _Texts:
    """Revision texts rebuilt from friends, with the records read lately cached."""

    def __init__(self, fetcher: Fetcher, descriptors: Mapping[bytes, RecordDescriptor]) -> None:
        self._descriptors = descriptors
        self._records = RecordCache(fetcher, CACHE_BYTES)

    async def blob(self, blob: BlobRef) -> bytes:
        record = await self._records.get(self._descriptors[blob.record_id])
        return record[blob.offset : blob.offset + blob.length]

    async def text(self, revlog: Revlog, rev_id: bytes) -> bytes:
        text = b""
        for step in rebuild_plan(revlog, rev_id):
            blob = await self.blob(step.blob)
            if step.kind is StorageKind.FULL:
                text = blob
            else:  # up to MAX_TEXT of CPU work: off the event loop
                text = await trio.to_thread.run_sync(deltas.apply_delta_bytes, blob, text)
        if len(text) != revlog.get(rev_id).size:
            raise IntegrityError(f"Revision {rev_id.hex()[:12]} did not rebuild to its size.")
        return text


def _reverse_delta(base_text: bytes, rev_text: bytes) -> bytes:
    return deltas.make_delta(signature_of(base_text), rev_text)


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
) -> tuple[RepackReport, list[tuple[heads.SnapshotRef, Manifest]]]:
    """Repack every file this device backs up; the kept snapshots, rewritten where needed."""
    report = RepackReport()
    descriptors = {rid: rec.descriptor for rid, rec in state.records.items()}
    for _, manifest in kept:
        descriptors.update({d.record_id: d for d in manifest.records})
    texts = _Texts(fetcher, descriptors)
    changed: dict[bytes, tuple[ChainStep, ...]] = {}  # revision -> its new chain
    for path in sorted(state.files):
        revlog = state.revlog(path)
        if not len(revlog) or max(r.size for r in revlog) > MAX_TEXT:
            continue
        new = revlog
        for full in [r for r in revlog if r.kind is StorageKind.FULL and r.parents]:
            plan = repack_plan(new, full.rev_id)
            if not plan:
                continue
            converted: dict[bytes, tuple[BlobRef, int]] = {}
            for rev_id, base in plan:
                base_text, rev_text = await texts.text(new, base), await texts.text(new, rev_id)
                delta = await trio.to_thread.run_sync(_reverse_delta, base_text, rev_text)
                rid = record_id(keys.record_id_key, Kind.REVERSE, delta)
                descriptors[rid] = await uploader.store(Kind.REVERSE, rid, split_segments(delta))
                converted[rev_id] = (BlobRef(rid, 0, len(delta)), len(delta))
            new = apply_repack(new, converted, plan)
            report.revisions += len(converted)
        if new is revlog:
            continue
        before, after = _chains(revlog), _chains(new)
        changed.update({rev: chain for rev, chain in after.items() if before.get(rev) != chain})
        state.replace_revlog(path, new)
        # A backup that meets one of these contents again must use the new chain.
        state.contents.update(
            {rev: chain for rev, chain in changed.items() if rev in state.contents}
        )
        current = state.files[path]
        if current.entry.rev_id in changed:
            entry = dataclasses.replace(current.entry, chain=changed[current.entry.rev_id])
            state.file_done(path, FileState(current.size, current.mtime_ns, current.inode, entry),
                            None)  # fmt: skip
    if not changed:
        return report, kept
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
    return report, out
