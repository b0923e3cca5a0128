"""One backup run: scan, store what changed, publish a snapshot, then the head.

For each changed file: chunk it and hash the chunks (its signature), and store
the new revision as a delta against the parent's signature, or as a full text
when the chain policy says so. Small blobs (small files, small deltas) are
packed together, so a tree of many small files is a few records, not one
request per file per share. The snapshot manifest is stored only after every
record it needs is on friends, and the head only after the manifest: an
interrupted backup leaves nothing half-published.
"""

from __future__ import annotations

import functools
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import trio

from p2pbackup.core import delta as deltas
from p2pbackup.core.chunking import Signature, revision_id
from p2pbackup.core.head import FriendEntry
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.manifest import ChainStep, Entry, EntryType, Manifest
from p2pbackup.core.refs import BlobRef, StorageKind
from p2pbackup.core.revlog import ChainPolicy, Revision, Revlog, choose_storage, rebuild_plan
from p2pbackup.core.seal import Kind, record_id
from p2pbackup.engine import sourcefile
from p2pbackup.engine.events import (
    EventSink,
    FileDone,
    FileSkipped,
    FilesUnchanged,
    ScanProgress,
)
from p2pbackup.engine.failures import one_error
from p2pbackup.engine.headstore import publish_snapshot
from p2pbackup.engine.holdings import reconcile
from p2pbackup.engine.packer import Packer
from p2pbackup.engine.scanner import SCAN_BATCH, Found, root_labels, scan_batches
from p2pbackup.engine.state import BackupState, FileState
from p2pbackup.engine.uploader import Uploader, split_segments
from p2pbackup.errors import SourceChangedError
from p2pbackup.storage.store import ShareStore

SMALL_FILE = 256 * 1024  # read whole and packed; larger files stream
INLINE_READ = 64 * 1024  # read on the event loop, with no task of its own
STREAM_FILE = 4 * 1024 * 1024  # larger files are sealed and sent a batch at a time
# Files holding data (reading, encoding, uploading) at once. The benchmark's folder of
# 15 MiB photos peaks at 176-191 MB RSS with 2, 197-208 with 3 (the same code on other
# days: 192), for 7-10% more speed: 2 keeps the 200 MB line on any day.
HEAVY_FILES = 2


@dataclass(frozen=True)
class Settings:
    k: int = 2
    n: int = 4
    survive: int = 1
    chain: ChainPolicy = field(default_factory=ChainPolicy)
    device: str = "this device"
    friends: frozenset[FriendEntry] = frozenset()  # told to the head, for a recovered device
    always_snapshot: bool = False  # publish even when nothing changed since the last one


@dataclass
class BackupReport:
    manifest: Manifest
    files: int = 0
    bytes: int = 0
    changed: int = 0
    skipped: list[FileSkipped] = field(default_factory=list)
    unchanged: bool = False  # nothing changed: ``manifest`` is the last snapshot, not a new one


Finish = Callable[[str, bytes, tuple[ChainStep, ...]], None]  # (how, revision, chain)


class Backup:
    def __init__(
        self,
        keys: OwnerKeys,
        stores: Mapping[str, ShareStore],
        state: BackupState,
        settings: Settings,
        events: EventSink,
        *,
        room: Mapping[str, int],
    ) -> None:
        self._keys = keys
        self._stores = stores
        self._state = state
        self._settings = settings
        self._events = events
        self._workers = trio.CapacityLimiter(2)
        self._room = room
        self._uploader = Uploader(
            keys,
            stores,
            state,
            events,
            k=settings.k,
            n=settings.n,
            survive=settings.survive,
            room=room,
            workers=self._workers,
        )
        self._heavy = trio.Semaphore(HEAVY_FILES)
        self._active = 0  # file tasks not finished yet
        self._progress = trio.Event()
        self._changed = 0
        self._entries: dict[str, Entry] = {}
        self._same = [0, 0]  # unchanged files and bytes not reported yet
        self._scan = [0, 0, 0, 0]  # files and bytes scanned, then those to store (ScanProgress)
        self._pending: dict[bytes, trio.Event] = {}  # revisions a file task is storing
        self._packing: dict[bytes, list[Finish]] = {}  # small files' revisions in a pack

    async def run(self, roots: Sequence[str], excludes: Sequence[str] = ()) -> BackupReport:
        skipped: list[FileSkipped] = []
        await self._check_holdings(roots)

        def _sink(event) -> None:  # any engine event
            if isinstance(event, FileSkipped):
                skipped.append(event)
            self._events(event)

        # Packs being sealed live in the outer nursery with the file tasks; the last pack is
        # flushed once every file has been read, which lets the files in it finish.
        with one_error():
            async with trio.open_nursery() as outer:
                self._nursery = outer
                self._packer = Packer(self._keys, self._uploader, outer)
                send, receive = trio.open_memory_channel[tuple[list[Found], list[FileSkipped]]](1)
                outer.start_soon(scan_batches, roots, excludes, send)
                async with receive:
                    async for batch, events in receive:
                        for event in events:
                            _sink(event)
                        changed = self._sort_out(batch)
                        # Before the batch is sent; a short batch is the scan's last.
                        self._events(ScanProgress(*self._scan, done=len(batch) < SCAN_BATCH))
                        for item, previous in changed:
                            if item.st.st_size <= INLINE_READ:
                                await self._small_file(item, previous, _sink)
                            else:
                                await self._file(item, previous, _sink)
                await self._drain()
        entries = tuple(self._entries[p] for p in sorted(self._entries))
        files = [e for e in entries if e.type is EntryType.FILE]
        last = None if self._settings.always_snapshot else await self._last_if_same(roots, entries)
        if last is not None:  # another snapshot would only add an entry to every list
            return BackupReport(last, len(files), sum(e.size for e in files), 0, skipped, True)
        manifest = await publish_snapshot(
            self._keys,
            self._stores,
            self._state,
            self._uploader,
            entries,
            roots=tuple(root_labels(roots)),
            device=self._settings.device,
            friends=self._settings.friends,
        )
        return BackupReport(
            manifest, len(files), sum(e.size for e in files), self._changed, skipped
        )

    async def _last_if_same(
        self, roots: Sequence[str], entries: tuple[Entry, ...]
    ) -> Manifest | None:
        """This device's last snapshot, if it is still kept and holds exactly these folders
        and entries (an unchanged file keeps its entry; a changed folder its mtime)."""
        last, head = self._state.last_snapshot, self._state.head
        if last is None or head is None or self._changed:
            return None
        if not any(ref.snapshot_id == last for ref in head.tips):
            return None  # forgotten since: a backup now must publish
        encoded = self._state.manifest_bytes(last)
        if encoded is None:
            return None
        manifest = await trio.to_thread.run_sync(Manifest.from_bytes, encoded)
        if manifest.roots != tuple(root_labels(roots)) or manifest.entries != entries:
            return None
        return manifest

    def _sort_out(self, batch: list[Found]) -> list[tuple[Found, FileState | None]]:
        """A scan batch: entries that are not files taken as they are, unchanged files told
        and counted, and the changed files to store (with what this device knew of each)."""
        changed = []
        for item in batch:
            if not stat.S_ISREG(item.st.st_mode):
                self._entries[item.path] = self._other_entry(item)
                continue
            previous = self._known(item.path)
            self._scan[0] += 1
            self._scan[1] += item.st.st_size
            if not self._unchanged(item, previous):
                self._scan[2] += 1
                self._scan[3] += item.st.st_size
                changed.append((item, previous))
        self._tell_unchanged()
        return changed

    async def _check_holdings(self, roots: Sequence[str]) -> None:
        """Local state says which records friends hold; friends say what they hold."""
        await reconcile(
            self._keys, self._stores, self._state, self._events, self._settings.device, roots,
            self._room, self._workers,
        )  # fmt: skip

    def _other_entry(self, item: Found) -> Entry:
        st = item.st
        if stat.S_ISLNK(st.st_mode):
            return Entry(
                item.path,
                EntryType.SYMLINK,
                stat.S_IMODE(st.st_mode),
                st.st_mtime_ns,
                0,
                item.target,  # read by the scanner, as the snapshot keeps it
                b"",
                (),
            )
        return Entry(
            item.path, EntryType.DIR, stat.S_IMODE(st.st_mode), st.st_mtime_ns, 0, "", b"", ()
        )

    def _known(self, path: str) -> FileState | None:
        """The file as the last backup left it, if every record it needs is still stored;
        else it is stored again from scratch (its revisions' records are gone)."""
        previous = self._state.files.get(path)
        if previous is not None and not self._state.chain_stored(previous.entry.chain):
            self._state.forget_files([path])
            return None
        return previous

    def _unchanged(self, item: Found, previous: FileState | None) -> bool:
        """The file is as the last backup left it: its entry is kept without reading it."""
        st = item.st
        if previous is None or (previous.size, previous.mtime_ns, previous.inode) != (
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
        ):
            return False
        self._entries[item.path] = previous.entry
        self._same[0] += 1
        self._same[1] += st.st_size
        return True

    def _tell_unchanged(self) -> None:
        if self._same[0]:
            self._events(FilesUnchanged(*self._same))
            self._same = [0, 0]

    async def _small_file(self, item: Found, previous: FileState | None, sink: EventSink) -> None:
        """Back up a small changed or new file without a task of its own: a tree of small
        files costs a note per file in the open packs, not a waiting coroutine per file.
        The file is finished when its pack is on friends."""
        try:
            signature, data = sourcefile.read_signature(item.source, item.st.st_size, True)
        except OSError as exc:
            self._skip(item, previous, exc, sink)
            return
        assert data is not None
        finish: Finish = functools.partial(self._finish, item, signature, sink)
        if not signature.size:
            finish("empty", b"", ())
            return
        rev = revision_id(self._keys.record_id_key, signature)
        if rev in self._state.contents and self._state.chain_stored(self._state.contents[rev]):
            finish("known", rev, self._state.contents[rev])
            return
        if rev in self._packing:  # the same content is in a pack already
            self._packing[rev].append(functools.partial(finish, "known"))
            return
        self._packing[rev] = [functools.partial(finish, "packed")]
        revlog = self._state.revlog(item.path)
        parent = _parent(previous, revlog)

        def _sealed(blob: BlobRef) -> None:
            chain = _add_revision(revlog, rev, parent, signature.size, StorageKind.FULL, blob)
            for done in self._packing.pop(rev):
                done(rev, chain)

        await self._packer.add(data, _sealed)

    async def _file(self, item: Found, previous: FileState | None, sink: EventSink) -> None:
        """Start backing up one larger changed or new file; the work goes on in a task."""
        # At most ``_heavy`` files hold data (read, encode, upload) at once: memory stays
        # bounded. A file releases its slot before it waits for anything else.
        await self._heavy.acquire()
        self._active += 1
        self._nursery.start_soon(self._changed_file, item, previous, sink)

    async def _drain(self) -> None:
        """Seal the last packs until every file task has finished and no pack is open."""
        while True:
            for _ in range(HEAVY_FILES):  # nobody is reading or uploading any more
                await self._heavy.acquire()
            for _ in range(HEAVY_FILES):
                self._heavy.release()
            if self._packer.waiting:
                await self._packer.flush()
            elif self._active:
                self._progress = trio.Event()
                await self._progress.wait()
            else:
                return

    async def _changed_file(self, item: Found, previous: FileState | None, sink: EventSink) -> None:
        try:
            await self._changed_file_inner(item, previous, sink)
        finally:
            self._active -= 1
            self._progress.set()

    async def _changed_file_inner(
        self, item: Found, previous: FileState | None, sink: EventSink
    ) -> None:
        release = _Once(self._heavy.release)
        try:
            size = item.st.st_size
            signature, data = await trio.to_thread.run_sync(
                sourcefile.read_signature, item.source, size, size <= SMALL_FILE,
                limiter=self._workers,
            )  # fmt: skip
            how, rev, chain = await self._store_revision(item, signature, data, previous, release)
        except (OSError, SourceChangedError) as exc:
            self._skip(item, previous, exc, sink)
            return
        finally:
            release()
        self._finish(item, signature, sink, how, rev, chain)

    def _skip(
        self,
        item: Found,
        previous: FileState | None,
        exc: OSError | SourceChangedError,
        sink: EventSink,
    ) -> None:
        reason = (
            exc.message
            if isinstance(exc, SourceChangedError)
            else f"could not be read: {exc.strerror or exc}"
        )
        if previous is not None:  # the snapshot keeps the version it had
            self._entries[item.path] = previous.entry
            reason += "; the previous version stays in this snapshot"
        sink(FileSkipped(item.path, reason))

    def _finish(
        self,
        item: Found,
        signature: Signature,
        sink: EventSink,
        how: str,
        rev: bytes,
        chain: tuple[ChainStep, ...],
    ) -> None:
        """The file is on friends: its entry joins the snapshot and the local state."""
        st = item.st
        entry = Entry(
            item.path,
            EntryType.FILE,
            stat.S_IMODE(st.st_mode),
            st.st_mtime_ns,
            signature.size,
            "",
            rev,
            chain,
        )
        self._changed += 1
        self._entries[item.path] = entry
        self._state.file_done(
            item.path,
            FileState(entry.size, st.st_mtime_ns, st.st_ino, entry),
            signature if entry.size else None,
        )
        sink(FileDone(item.path, entry.size, how))

    async def _store_revision(
        self,
        item: Found,
        signature: Signature,
        data: bytes | None,
        previous: FileState | None,
        release: _Once,
    ) -> tuple[str, bytes, tuple[ChainStep, ...]]:
        """How the revision was stored, its id and its chain."""
        if signature.size == 0:
            return "empty", b"", ()
        rev = revision_id(self._keys.record_id_key, signature)
        while rev in self._pending:  # the same content is being stored for another path
            release()
            await self._pending[rev].wait()
        if rev in self._state.contents and self._state.chain_stored(self._state.contents[rev]):
            return "known", rev, self._state.contents[rev]
        # A file that grew past INLINE_READ while it was read may share its content with
        # one in a pack; it is then stored again. Both copies are valid; nothing waits.
        self._pending[rev] = trio.Event()
        try:
            revlog = self._state.revlog(item.path)
            parent = _parent(previous, revlog)
            kind, blob, how = await self._store_blob(item, signature, data, revlog, parent, release)
            chain = _add_revision(revlog, rev, parent, signature.size, kind, blob)
        finally:
            self._pending.pop(rev).set()
        return how, rev, chain

    async def _store_blob(
        self,
        item: Found,
        signature: Signature,
        data: bytes | None,
        revlog: Revlog,
        parent: bytes | None,
        release: _Once,
    ) -> tuple[StorageKind, BlobRef, str]:
        if data is not None:
            return StorageKind.FULL, await self._packed(data, release), "packed"
        base = self._state.signature(item.path) if parent is not None else None
        if parent is not None and base is not None:
            plan = deltas.plan_delta(base, signature)
            size = plan.encoded_size()
            kind = choose_storage(revlog, parent, signature.size, size, self._settings.chain)
            if kind is StorageKind.DELTA:
                return await self._store_delta(item, plan, release)
        # A full text's id is the keyed hash of its signature, which the chunking pass
        # already computed: no second hashing pass over a large file.
        rid = record_id(self._keys.record_id_key, Kind.FULL, signature.to_bytes())
        if signature.size > STREAM_FILE:
            await self._uploader.store_stream(
                Kind.FULL, rid, lambda: sourcefile.file_segments(item.source, signature.size),
                signature.size,
            )  # fmt: skip
        else:
            await self._uploader.store(
                Kind.FULL, rid, sourcefile.file_segments(item.source, signature.size)
            )
        return StorageKind.FULL, BlobRef(rid, 0, signature.size), "full"

    async def _store_delta(
        self, item: Found, plan: deltas.DeltaPlan, release: _Once
    ) -> tuple[StorageKind, BlobRef, str]:
        size = plan.encoded_size()
        if size > STREAM_FILE:  # never held: hashed in one pass over the file, sent in another
            rid = await trio.to_thread.run_sync(
                sourcefile.delta_id,
                self._keys.record_id_key,
                item.source,
                plan,
                limiter=self._workers,
            )
            await self._uploader.store_stream(
                Kind.DELTA, rid, lambda: sourcefile.delta_segments(item.source, plan), size
            )
            return StorageKind.DELTA, BlobRef(rid, 0, size), "delta"
        delta = await trio.to_thread.run_sync(
            sourcefile.encode_delta, item.source, plan, limiter=self._workers
        )
        if len(delta) <= SMALL_FILE:
            return StorageKind.DELTA, await self._packed(delta, release), "delta"
        rid = record_id(self._keys.record_id_key, Kind.DELTA, delta)
        await self._uploader.store(Kind.DELTA, rid, split_segments(delta))
        return StorageKind.DELTA, BlobRef(rid, 0, len(delta)), "delta"

    async def _packed(self, blob: bytes, release: _Once) -> BlobRef:
        done, where = trio.Event(), []

        def _sealed(ref: BlobRef) -> None:
            where.append(ref)
            done.set()

        await self._packer.add(blob, _sealed)
        release()  # the pack holds the bytes now
        await done.wait()
        return where[0]


def _parent(previous: FileState | None, revlog: Revlog) -> bytes | None:
    """The revision a new one follows: the file's last backed-up one, if its revlog has it."""
    return previous.entry.rev_id if previous and previous.entry.rev_id in revlog else None


def _add_revision(
    revlog: Revlog, rev: bytes, parent: bytes | None, size: int, kind: StorageKind, blob: BlobRef
) -> tuple[ChainStep, ...]:
    """Record the stored revision in the file's revlog; return how to rebuild it."""
    if rev not in revlog:
        delta_base = parent if kind is StorageKind.DELTA else None
        revlog.add(
            Revision(rev, (parent,) if parent else (), size, kind, delta_base, blob, blob.length)
        )
    return tuple(ChainStep(s.kind, s.rev_id, s.blob) for s in rebuild_plan(revlog, rev))


class _Once:
    """Calls a function the first time it is called, then never again."""

    def __init__(self, fn) -> None:
        self._fn = fn

    def __call__(self) -> None:
        if self._fn is not None:
            fn, self._fn = self._fn, None
            fn()
