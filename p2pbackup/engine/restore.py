"""Restore: from the head to a snapshot to its records to files on disk.

Each file is rebuilt by following its chain (a full text, then deltas), written
to a temporary file beside its destination and renamed into place with its
mode and mtime, so a crash never leaves a half-written file under the real
name. Small files are written in batches by a thread (``storage.restoredfiles``)
while the next batch is fetched. Records are cached while a restore runs
because a pack serves many files.

Names are written as the bytes the snapshot keeps (``diskname.to_disk``), so a
name that is not UTF-8 comes back byte for byte.

A file that cannot be written (a read-only folder, a folder where the file
should go, a full disk) is listed in the report's ``errors`` with the disk's
reason, and the restore goes on with the rest: one bad spot must not cost the
user every other file (docs/decisions.md, "Errors").

Unless told to overwrite (``keep_newer=False``: ``--force``), a restore never
replaces what is on disk with an older version: a file or link whose mtime is
newer than the snapshot's is kept and listed in the report, whether the
restore goes back in place or ``--to`` a folder (docs/decisions.md). Told to
bring back only what is missing (``only_missing``), it leaves every file and
link already on disk alone, whatever its time, and lists them in
``kept_existing``.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import trio

from p2pbackup.core import delta as deltas
from p2pbackup.core import head as heads
from p2pbackup.core.manifest import Entry, EntryType, Manifest
from p2pbackup.core.refs import BlobRef, RecordDescriptor, StorageKind
from p2pbackup.core.seal import Kind
from p2pbackup.engine import failures
from p2pbackup.engine.diskname import to_disk
from p2pbackup.engine.events import EventSink, RestoreProgress, ignore
from p2pbackup.engine.fetcher import Fetcher, RecordCache
from p2pbackup.errors import ConfigError, FormatError, IntegrityError
from p2pbackup.storage.restoredfiles import RestoredFile, write_batch

CACHE_BYTES = 16 * 1024 * 1024  # eight 2 MiB packs: files are restored in pack order
STREAM_FILE = 4 * 1024 * 1024  # larger files are rebuilt on disk, not in memory
# One sync per batch; at most two batches in memory (one gathered, one being written).
BATCH_FILES = 512
BATCH_BYTES = 8 * 1024 * 1024
PROGRESS_EVERY = 0.25  # seconds between RestoreProgress events


@dataclass
class RestoreReport:
    files: int = 0
    bytes: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) not written
    kept_newer: list[str] = field(default_factory=list)  # newer on disk: left alone
    kept_existing: list[str] = field(default_factory=list)  # on disk (only_missing): left alone


async def load_manifest(fetcher: Fetcher, ref: heads.SnapshotRef) -> tuple[Manifest, bytes]:
    """A snapshot's manifest, parsed off the event loop, and its bytes: a manifest has one
    encoding, so they are what a cache keeps (not the manifest encoded again)."""
    data = await fetcher.fetch(ref.manifest, Kind.MANIFEST)
    return await trio.to_thread.run_sync(Manifest.from_bytes, data), data


class Restorer:
    def __init__(self, fetcher: Fetcher, events: EventSink = ignore) -> None:
        self._fetcher = fetcher
        self._records = RecordCache(fetcher, CACHE_BYTES)
        self._events = events
        self._totals = (0, 0)  # files and bytes chosen, for RestoreProgress
        self._told = 0.0

    def _progress(self, report: RestoreReport, last: bool = False) -> None:
        now = time.monotonic()
        if last or now - self._told >= PROGRESS_EVERY:
            self._told = now
            self._events(RestoreProgress(report.files, report.bytes, *self._totals))

    async def _blob(self, records: Mapping[bytes, RecordDescriptor], blob: BlobRef) -> bytes:
        plaintext = await self._records.get(records[blob.record_id])
        if blob.offset + blob.length > len(plaintext):
            raise IntegrityError(
                f"A blob points past the end of record {blob.record_id.hex()[:12]}."
            )
        return plaintext[blob.offset : blob.offset + blob.length]

    async def content(self, records: Mapping[bytes, RecordDescriptor], entry: Entry) -> bytes:
        """A file's bytes, rebuilt from its chain (``records``: the manifest's, by id)."""
        text = b""
        for step in entry.chain:
            blob = await self._blob(records, step.blob)
            text = blob if step.kind is StorageKind.FULL else deltas.apply_delta_bytes(blob, text)
        if len(text) != entry.size:
            raise IntegrityError(
                f"{entry.path} rebuilt to {len(text)} bytes, expected {entry.size}."
            )
        return text

    async def _write_streaming(
        self, records: Mapping[bytes, RecordDescriptor], entry: Entry, target: str
    ) -> None:
        """A large file, rebuilt through temporary files: a full text streamed from friends,
        then each delta applied against the previous text on disk. Memory stays bounded."""
        current: str | None = None
        try:
            for number, step in enumerate(entry.chain):
                out = f"{target}.p2pbackup-partial-{number}"
                if step.kind is StorageKind.FULL:
                    await self._full_text(records[step.blob.record_id], step.blob, out)
                else:
                    assert current is not None  # a chain starts with a full text
                    await self._apply_delta(records, step.blob, current, out)
                    os.unlink(current)
                current = out
            if current is None or os.path.getsize(current) != entry.size:
                raise IntegrityError(f"{entry.path} did not rebuild to {entry.size} bytes.")
            await trio.to_thread.run_sync(_finish_file, current, target, entry)
        finally:
            for number in range(len(entry.chain)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{target}.p2pbackup-partial-{number}")

    async def text_to_file(
        self, records: Mapping[bytes, RecordDescriptor], chain: Sequence, size: int, out: str
    ) -> None:
        """The text a chain (steps with ``kind`` and ``blob``) rebuilds, written to ``out``
        as a large file is restored: through temporary files beside it, memory bounded.
        For repack (engine/repack.py), which turns large chains around."""
        parts = [f"{out}.part-{number}" for number in range(len(chain))]
        current: str | None = None
        try:
            for part, step in zip(parts, chain, strict=True):
                if step.kind is StorageKind.FULL:
                    await self._full_text(records[step.blob.record_id], step.blob, part)
                else:
                    assert current is not None  # a chain starts with a full text
                    await self._apply_delta(records, step.blob, current, part)
                    os.unlink(current)
                current = part
            if current is None or os.path.getsize(current) != size:
                raise IntegrityError(f"A revision did not rebuild to its {size} bytes.")
            os.replace(current, out)
        finally:
            for part in parts:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(part)

    async def _apply_delta(
        self, records: Mapping[bytes, RecordDescriptor], blob: BlobRef, base: str, out: str
    ) -> None:
        """``out`` = the delta in ``blob`` applied to the file ``base``. A large delta goes
        to a file of its own first, and is read from there: it is never held whole."""
        if blob.length <= STREAM_FILE:
            delta = await self._blob(records, blob)
            await trio.to_thread.run_sync(_apply_on_disk, delta, base, out)
            return
        spooled = f"{out}.delta"
        try:
            await self._full_text(records[blob.record_id], blob, spooled)
            await trio.to_thread.run_sync(_apply_spooled, spooled, base, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spooled)

    async def _full_text(self, descriptor: RecordDescriptor, blob: BlobRef, out: str) -> None:
        if descriptor.length <= STREAM_FILE:  # a small record, or a pack: cached
            with open(out, "wb") as f:
                f.write(await self._blob({descriptor.record_id: descriptor}, blob))
            return
        handle: list = []

        def _begin() -> Callable[[bytes], None]:
            if handle:
                handle[0].close()
            f = open(out, "wb")  # noqa: SIM115 -- closed below, or by the next attempt
            handle[:] = [f]
            position = [0]

            def _write(piece: bytes) -> None:
                start, end = position[0], position[0] + len(piece)
                position[0] = end
                lo, hi = max(start, blob.offset), min(end, blob.offset + blob.length)
                if lo < hi:
                    f.write(memoryview(piece)[lo - start : hi - start])

            return _write

        try:
            await self._fetcher.fetch_into(descriptor, _begin)
        finally:
            if handle:
                handle[0].close()

    async def restore(
        self,
        manifest: Manifest,
        dest: str | Callable[[str], str],
        paths: Sequence[str] = (),
        *,
        keep_newer: bool = False,
        only_missing: bool = False,
    ) -> RestoreReport:
        """Write the chosen entries under ``dest`` (a folder, or a snapshot path -> disk path
        function for in-place restores). With ``keep_newer``, a file or link on disk that is
        newer than the snapshot's is left alone (and listed in ``kept_newer``), and one that
        already matches is not rewritten. With ``only_missing``, any file or link already
        on disk is left alone (and listed in ``kept_existing``)."""
        report = RestoreReport()
        target_of = dest if callable(dest) else _under(dest)
        chosen = [e for e in manifest.entries if _selected(e.path, paths)]
        if paths and not chosen:
            raise ConfigError(f"Nothing in this snapshot matches {', '.join(paths)}.")
        files = [e.size for e in chosen if e.type is EntryType.FILE]
        self._totals = (len(files), sum(files))
        self._progress(report, last=True)
        async with _batched_writes(report) as batches:
            await self._write_entries(manifest, chosen, target_of, (keep_newer, only_missing),
                                      batches, report)  # fmt: skip
        # Directory times last: writing files into a directory changes its mtime.
        skip = {*report.kept_newer, *report.kept_existing, *(path for path, _ in report.errors)}
        for entry in reversed(chosen):
            if entry.path in skip:
                continue
            target = target_of(entry.path)
            try:
                if entry.type is EntryType.DIR:
                    os.chmod(target, entry.mode)
                    os.utime(target, ns=(entry.mtime_ns, entry.mtime_ns))
                elif entry.type is EntryType.SYMLINK:
                    os.utime(target, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)
            except OSError as exc:
                report.errors.append((entry.path, _reason(exc)))
        self._progress(report, last=True)
        return report

    async def _write_entries(
        self,
        manifest: Manifest,
        chosen: list[Entry],
        target_of: Callable[[str], str],
        keep: tuple[bool, bool],  # (keep_newer, only_missing)
        batches: _Batches,
        report: RestoreReport,
    ) -> None:
        records = {d.record_id: d for d in manifest.records}  # once, not once per file
        made: set[str] = set()  # parent folders already made: one makedirs per folder
        keep_newer, only_missing = keep
        for entry in chosen:
            target = target_of(entry.path)
            if only_missing and entry.type is not EntryType.DIR and os.path.lexists(target):
                report.kept_existing.append(entry.path)
                continue
            try:
                if entry.type is EntryType.DIR:
                    os.makedirs(target, exist_ok=True)
                elif entry.type is EntryType.SYMLINK:
                    if keep_newer and _keep_on_disk(target, entry, report):
                        continue
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    if os.path.lexists(target):
                        os.unlink(target)
                    os.symlink(to_disk(entry.target), target)
                else:
                    if keep_newer and _keep_on_disk(target, entry, report):
                        continue
                    parent = os.path.dirname(target)
                    if parent not in made:
                        os.makedirs(parent, exist_ok=True)
                        made.add(parent)
                    if entry.size > STREAM_FILE:
                        await self._write_streaming(records, entry, target)
                    else:
                        data = await self.content(records, entry)
                        file = RestoredFile(target, data, entry.mode, entry.mtime_ns)
                        await batches.add(file, entry.path)
                    report.files += 1
                    report.bytes += entry.size
                    self._progress(report)
            except OSError as exc:  # this one; the rest go on (a batch's: in _batched_writes)
                report.errors.append((entry.path, _reason(exc)))


class _Batches:
    """Small files gathered into batches for the writer task."""

    def __init__(self, send: trio.MemorySendChannel[list[RestoredFile]]) -> None:
        self._send = send
        self._files: list[RestoredFile] = []
        self._bytes = 0
        self.paths: dict[str, str] = {}  # target on disk -> path in the snapshot

    async def add(self, file: RestoredFile, path: str) -> None:
        self.paths[file.target] = path
        self._files.append(file)
        self._bytes += len(file.data)
        if len(self._files) >= BATCH_FILES or self._bytes >= BATCH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._files:
            batch, self._files, self._bytes = self._files, [], 0
            await self._send.send(batch)  # waits while the writer is busy with the last one


@contextlib.asynccontextmanager
async def _batched_writes(report: RestoreReport) -> AsyncIterator[_Batches]:
    """A writer task that puts each batch in place in a thread, off the event loop; files
    it could not place go to the report's errors. On leaving without an error, what is
    gathered is written and waited for; on an error, the batch being written finishes, and
    what was only gathered is dropped."""
    send, receive = trio.open_memory_channel[list[RestoredFile]](0)

    async def _writer(batches: _Batches) -> None:
        async with receive:
            async for batch in receive:
                for file, reason in await trio.to_thread.run_sync(write_batch, batch):
                    report.errors.append((batches.paths.get(file.target, file.target), reason))
                    report.files -= 1
                    report.bytes -= len(file.data)
                for file in batch:
                    batches.paths.pop(file.target, None)

    with failures.one_error():
        async with trio.open_nursery() as nursery, send:
            batches = _Batches(send)
            nursery.start_soon(_writer, batches)
            yield batches
            await batches.flush()


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _under(dest: str) -> Callable[[str], str]:
    return lambda path: os.path.join(dest, *to_disk(path).split("/"))


def _keep_on_disk(target: str, entry: Entry, report: RestoreReport) -> bool:
    """Whether to leave what is at ``target``: it is newer than the snapshot's version
    (kept, and reported), or it already is that version (nothing to write)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return False
    if entry.type is EntryType.SYMLINK:
        if stat.S_ISLNK(st.st_mode) and os.readlink(target) == to_disk(entry.target):
            return True  # the same link; its mtime is set at the end
    elif st.st_size == entry.size and st.st_mtime_ns == entry.mtime_ns:
        return True
    if st.st_mtime_ns > entry.mtime_ns:
        report.kept_newer.append(entry.path)
        return True
    return False


def _apply_on_disk(delta: bytes, base_path: str, out: str) -> None:
    with open(base_path, "rb") as base, open(out, "wb") as f:
        fd, size = base.fileno(), os.fstat(base.fileno()).st_size
        for piece in deltas.apply_delta(delta, lambda offset, n: os.pread(fd, n, offset), size):
            f.write(piece)


def _apply_spooled(delta_path: str, base_path: str, out: str) -> None:
    with open(delta_path, "rb") as delta, open(base_path, "rb") as base, open(out, "wb") as f:
        located = _locate(delta.fileno())
        dfd, bfd = delta.fileno(), base.fileno()
        for piece in deltas.apply_located(
            located, lambda offset, n: os.pread(dfd, n, offset),
            lambda offset, n: os.pread(bfd, n, offset), os.fstat(bfd).st_size,
        ):  # fmt: skip
            f.write(piece)


def _locate(fd: int) -> deltas.Delta:
    """A delta's ops, read through a map of its file: only the op headers are touched."""
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
        try:
            return deltas.locate_delta(mapped)
        except FormatError as exc:
            problem = str(exc)  # raised again once no view of the map is left, so it closes
    raise FormatError(problem)


def _finish_file(temporary: str, target: str, entry: Entry) -> None:
    fd = os.open(temporary, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temporary, entry.mode)
    os.utime(temporary, ns=(entry.mtime_ns, entry.mtime_ns))
    os.replace(temporary, target)


def _selected(path: str, paths: Sequence[str]) -> bool:
    return not paths or any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths)
