"""What friends actually hold, asked rather than remembered, and storing again what they lost.

Local state is a cache of what friends hold, never the truth: a friend's pool can be
restored from an old copy or wiped. So a backup first asks every friend for its list
of my shares (one ``list`` each) and keeps calling a record stored only if at least
``k`` of its shares are held. A share counts as held when a friend that answered
lists it, or when local state placed it on a friend that did not answer (unknown is
not lost: a friend away for a day must not cost a full upload). Records found
missing are forgotten locally, with everything that pointed at them, so the normal
path stores the files again.

Some lost records can be stored again exactly, under the same id and with the same
shares (sealing and encoding are deterministic), which makes the old snapshots that
use them whole again: a manifest this device keeps a copy of, and a full text or a
pack of full texts whose every file is still on disk as the snapshot has it (checked
by the revision id of its chunks, then by the record id of the rebuilt bytes).
Deltas need the older version they apply to, which is gone: those are reported lost.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import trio

from p2pbackup.core import head as heads
from p2pbackup.core.chunking import Signature, revision_id
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.manifest import EntryType, Manifest
from p2pbackup.core.refs import RecordDescriptor, StorageKind
from p2pbackup.core.seal import Kind, record_id
from p2pbackup.engine import sourcefile
from p2pbackup.engine.diskname import to_disk
from p2pbackup.engine.events import EventSink, FriendTrouble, RecordsMissing
from p2pbackup.engine.scanner import root_labels
from p2pbackup.engine.state import BackupState, StoredRecord
from p2pbackup.engine.uploader import Uploader, split_segments
from p2pbackup.errors import IntegrityError, P2PBackupError, PeerError, SourceChangedError
from p2pbackup.storage.store import ShareKey, ShareStore

STREAM_FILE = 4 * 1024 * 1024  # as engine/backup.py: larger full texts are sent a batch at a time


def missing_from(
    holders: Mapping[ShareKey, Sequence[str]],
    answered: set[str],
    records: Mapping[bytes, StoredRecord],
) -> set[bytes]:
    """The records fewer than k shares of are held: listed by a friend that answered, or
    placed (as local state says) on a friend that did not."""
    listed = Counter(key.record_id for key in holders)  # distinct indexes listed, per record
    missing = set()
    for rid, rec in records.items():
        k = rec.descriptor.k
        if listed.get(rid, 0) >= k:
            continue  # the common case, decided without looking at the placement
        held = {i for i in range(rec.descriptor.n) if ShareKey(rid, i) in holders}
        held.update(i for i, friend in rec.placement.items() if friend not in answered)
        if len(held) < k:
            missing.add(rid)
    return missing


async def missing_records(
    stores: Mapping[str, ShareStore], state: BackupState, events: EventSink
) -> set[bytes]:
    """Records local state calls stored of which friends hold fewer than k shares."""
    holders: dict[ShareKey, list[str]] = defaultdict(list)
    answered: set[str] = set()

    async def _list(name: str, store: ShareStore) -> None:
        # Every backup asks this now: a friend that answers garbage (IntegrityError) is
        # treated as one that did not answer, so it cannot stop my backups.
        try:
            keys = await store.list()
        except (PeerError, IntegrityError) as exc:
            events(FriendTrouble(name, exc.message))
            return
        for key in keys:
            holders[key].append(name)
        answered.add(name)

    async with trio.open_nursery() as nursery:
        for name, store in stores.items():
            nursery.start_soon(_list, name, store)
    return missing_from(holders, answered, state.records)


@dataclass
class Resupplied:
    records: list[bytes] = field(default_factory=list)  # stored again, same id and shares
    lost: dict[bytes, list[str]] = field(default_factory=dict)  # record -> paths using it


def _uploader(keys, stores, state, events, d: RecordDescriptor, room, workers) -> Uploader:
    return Uploader(keys, stores, state, events, k=d.k, n=d.n, survive=1, room=room,
                    workers=workers)  # fmt: skip


async def store_manifests(
    keys: OwnerKeys,
    stores: Mapping[str, ShareStore],
    state: BackupState,
    events: EventSink,
    refs: Iterable[heads.SnapshotRef],
    lost: set[bytes],
    room: Mapping[str, int],
    workers: trio.CapacityLimiter,
) -> list[bytes]:
    """Store again the lost manifests this device keeps a copy of; the record ids stored."""
    done = []
    for ref in refs:
        d = ref.manifest
        data = state.manifest_bytes(ref.snapshot_id) if d.record_id in lost else None
        if data is None or record_id(keys.record_id_key, Kind.MANIFEST, data) != d.record_id:
            continue
        state.forget_records([d.record_id])
        up = _uploader(keys, stores, state, events, d, room, workers)
        if await up.store(Kind.MANIFEST, d.record_id, split_segments(data)) == d:
            done.append(d.record_id)
    return done


async def store_from_sources(
    keys: OwnerKeys,
    stores: Mapping[str, ShareStore],
    state: BackupState,
    events: EventSink,
    manifests: Sequence[Manifest],
    lost: Mapping[bytes, RecordDescriptor],
    source_of: Callable[[Manifest, str], str | None],
    room: Mapping[str, int],
    workers: trio.CapacityLimiter,
) -> Resupplied:
    """Store again each lost record that the files on disk rebuild exactly; the rest are
    reported with the snapshot paths that used them."""
    out = Resupplied()
    uses: dict[bytes, list[tuple[Manifest, str, StorageKind, bytes, int, int]]] = defaultdict(list)
    files_of: dict[bytes, list[tuple[Manifest, str]]] = defaultdict(list)  # revision -> files
    for manifest in manifests:
        for entry in manifest.entries:
            if entry.type is not EntryType.FILE:
                continue
            files_of[entry.rev_id].append((manifest, entry.path))
            for step in entry.chain:
                if step.blob.record_id in lost:
                    uses[step.blob.record_id].append((manifest, entry.path, step.kind,
                        step.rev_id, step.blob.offset, step.blob.length))  # fmt: skip
    # Where each revision's bytes are on disk now: a file whose snapshot entry is that
    # revision, if the file still hashes to it.
    sources: dict[bytes, str] = {}
    checked: dict[str, bytes | None] = {}

    def _revision_on_disk(path: str) -> bytes | None:
        if path not in checked:
            try:
                checked[path] = revision_id(keys.record_id_key, _signature(path))
            except (OSError, SourceChangedError):
                checked[path] = None
        return checked[path]

    for rid, descriptor in lost.items():
        pieces: dict[tuple[int, int], bytes] = {}  # (offset, length) -> revision
        rebuildable = bool(uses.get(rid))
        for _, _, kind, rev, offset, length in uses.get(rid, ()):
            rebuildable &= kind is StorageKind.FULL
            pieces[(offset, length)] = rev
        if rebuildable:
            for rev in set(pieces.values()) - set(sources):
                for manifest, snapshot_path in files_of.get(rev, ()):
                    path = source_of(manifest, snapshot_path)
                    if path is not None and rev == await trio.to_thread.run_sync(
                        _revision_on_disk, path
                    ):
                        sources[rev] = path
                        break
            rebuildable = all(rev in sources for rev in pieces.values())
        try:
            if rebuildable and await _store_again(
                keys, stores, state, events, descriptor, pieces, sources, room, workers
            ):
                out.records.append(rid)
                continue
        except (P2PBackupError, OSError):
            pass  # a file changed or vanished while read, or no friend took it: lost
        out.lost[rid] = sorted({path for _, path, *_ in uses.get(rid, ())})
    return out


async def _store_again(
    keys: OwnerKeys,
    stores: Mapping[str, ShareStore],
    state: BackupState,
    events: EventSink,
    d: RecordDescriptor,
    pieces: dict[tuple[int, int], bytes],
    sources: dict[bytes, str],
    room: Mapping[str, int],
    workers: trio.CapacityLimiter,
) -> bool:
    """The record rebuilt from files, checked by its id, then stored: True if its shares
    are again the ones the snapshots name."""
    up = _uploader(keys, stores, state, events, d, room, workers)
    state.forget_records([d.record_id])
    ((offset, length), rev), *rest = sorted(pieces.items())
    if not rest and offset == 0:  # a full text of its own, keyed by its signature
        path = sources[rev]
        signature = await trio.to_thread.run_sync(_signature, path)
        if record_id(keys.record_id_key, Kind.FULL, signature.to_bytes()) == d.record_id:
            if length > STREAM_FILE:
                got = await up.store_stream(
                    Kind.FULL, d.record_id, lambda: sourcefile.file_segments(path, length), length
                )
            else:
                got = await up.store(Kind.FULL, d.record_id, sourcefile.file_segments(path, length))
            return got == d
    data = await trio.to_thread.run_sync(_pack, pieces, sources)
    if data is None or record_id(keys.record_id_key, Kind.PACK, data) != d.record_id:
        return False
    return await up.store(Kind.PACK, d.record_id, split_segments(data)) == d


def _signature(path: str) -> Signature:
    return sourcefile.read_signature(path, os.stat(path).st_size, False)[0]


def _pack(pieces: dict[tuple[int, int], bytes], sources: dict[bytes, str]) -> bytes | None:
    """A pack's blobs back to back from their files; None at a gap (a blob no snapshot
    names) or a file of another length."""
    data = bytearray()
    for (offset, length), rev in sorted(pieces.items()):
        if offset != len(data):
            return None
        with open(sources[rev], "rb") as f:
            blob = f.read(length + 1)
        if len(blob) != length:
            return None
        data += blob
    return bytes(data)

async def reconcile(
    keys: OwnerKeys,
    stores: Mapping[str, ShareStore],
    state: BackupState,
    events: EventSink,
    device: str,
    roots: Sequence[str],
    room: Mapping[str, int],
    workers: trio.CapacityLimiter,
) -> None:
    """What a backup does first. Of the records fewer than k shares of are held, those
    this device can rebuild exactly (a manifest it has a copy of; full texts and packs of
    files unchanged on disk) are stored again, so the old snapshots that use them are
    whole again; the rest are forgotten, and the backup reads their files again."""
    missing = await missing_records(stores, state, events)
    if missing:
        events(RecordsMissing(len(missing)))
        missing -= await _store_again_from_copies(
            keys, stores, state, events, device, roots, missing, room, workers
        )
        await trio.to_thread.run_sync(state.forget_lost, missing)
    state.rollbacks_checked()  # local state says what friends hold again


async def _store_again_from_copies(
    keys: OwnerKeys,
    stores: Mapping[str, ShareStore],
    state: BackupState,
    events: EventSink,
    device: str,
    roots: Sequence[str],
    missing: set[bytes],
    room: Mapping[str, int],
    workers: trio.CapacityLimiter,
) -> set[bytes]:
    """The missing records stored again under the same ids and shares."""
    head = state.head
    if head is None:
        return set()
    args = (keys, stores, state, events)
    done = set(await store_manifests(*args, head.tips, missing, room, workers))
    manifests = []  # this device's snapshots, from its copies: their files are here
    for ref in head.tips:
        data = state.manifest_bytes(ref.snapshot_id)
        if data is not None:
            manifest = await trio.to_thread.run_sync(Manifest.from_bytes, data)
            if manifest.device == device:
                manifests.append(manifest)
    lost = {
        d.record_id: d
        for m in manifests
        for d in m.records
        if d.record_id in missing and d.record_id not in done
    }
    found = await store_from_sources(*args, manifests, lost, sources_under(roots), room, workers)
    return done | set(found.records)


def sources_under(folders: Sequence[str]) -> Callable[[Manifest, str], str | None]:
    """Where a snapshot path's file is on this disk, under the folders this device backs
    up (a snapshot path starts with its folder's label); None outside them."""
    where = dict(zip(root_labels(folders), folders, strict=True))

    def _source(manifest: Manifest, path: str) -> str | None:
        label, _, rest = path.partition("/")
        if label not in where:
            return None
        return os.path.join(where[label], *to_disk(rest).split("/")) if rest else where[label]

    return _source
