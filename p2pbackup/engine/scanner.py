"""Walks the folders to protect and says what is there, without reading files.

Each folder becomes a top-level name in the snapshot (its base name, made
unique), so ``restore --to DIR`` gives ``DIR/Documents/...``, which is what a
person expects. Entries that vanish or cannot be listed are reported and
skipped; the walk goes on.

Snapshot paths are the bytes of the names on disk (``diskname``): a name that
is not UTF-8 is kept as it is. One that no snapshot can hold (too long) is
reported and skipped like an unreadable one: no name stops a backup.

``scan_batches`` runs the walk in a worker thread, a batch at a time, for a
backup on the event loop.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import trio

from p2pbackup.core.manifest import MAX_NAME_BYTES, encode_name
from p2pbackup.engine.diskname import from_disk
from p2pbackup.engine.events import EventSink, FileSkipped


class Stat(NamedTuple):
    """The four fields a backup uses: os.stat_result holds some 600 bytes per file."""

    st_mode: int
    st_size: int
    st_mtime_ns: int
    st_ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> Stat:
        return cls(st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True, slots=True)
class Found:
    path: str  # the snapshot path: "<root label>/relative/path"
    source: str  # where it is on disk
    st: Stat
    target: str = ""  # a symlink's target, as a snapshot keeps it


SCAN_BATCH = 2000  # entries listed per trip to the scanning thread (and per progress event)

def root_labels(roots: Sequence[str]) -> list[str]:
    """A unique top-level name per folder: its base name, then "name-2", ..."""
    labels: list[str] = []
    for root in roots:
        base = from_disk(os.path.basename(os.path.normpath(root))) or "root"
        label, n = base, 1
        while label in labels:
            n += 1
            label = f"{base}-{n}"
        labels.append(label)
    return labels


def scan(roots: Sequence[str], excludes: Sequence[str], events: EventSink) -> Iterator[Found]:
    """Every directory, file and symlink under the roots, parents before children."""
    excludes = [from_disk(p) for p in excludes]  # typed as the OS gave them: match as names are
    for label, root in zip(root_labels(roots), roots, strict=True):
        try:
            st = os.stat(root)
        except OSError as exc:
            events(FileSkipped(label, f"the folder {root} cannot be read: {exc.strerror}"))
            continue
        yield Found(label, root, Stat.of(st))
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, label, excludes, events)


def _excluded(name: str, path: str, excludes: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in excludes)


def _walk(
    directory: str, prefix: str, excludes: Sequence[str], events: EventSink
) -> Iterator[Found]:
    try:
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        events(FileSkipped(prefix, f"cannot list the folder: {exc.strerror}"))
        return
    for child in children:
        name = from_disk(child.name)
        path = f"{prefix}/{name}"
        if _excluded(name, path, excludes):
            continue
        try:
            st = child.stat(follow_symlinks=False)
            target = from_disk(os.readlink(child.path)) if stat.S_ISLNK(st.st_mode) else ""
        except OSError as exc:
            events(FileSkipped(path, f"vanished or unreadable: {exc.strerror}"))
            continue
        problem = _unstorable(path, target)
        if problem:
            events(FileSkipped(path, problem))
        elif stat.S_ISDIR(st.st_mode):
            yield Found(path, child.path, Stat.of(st))
            yield from _walk(child.path, path, excludes, events)
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            yield Found(path, child.path, Stat.of(st), target)
        else:
            events(
                FileSkipped(
                    path,
                    "not a regular file, folder or symlink (sockets, devices "
                    "and pipes are not backed up)",
                )
            )


def _unstorable(path: str, target: str) -> str | None:
    """Why a snapshot cannot hold this name (or link target), or None: it almost always can."""
    for name, what in ((path, "the path"), (target, "the link target")):
        if name.isascii() and len(name) <= MAX_NAME_BYTES:
            continue
        try:
            size = len(encode_name(name, what))
        except ValueError as exc:
            return f"{what} cannot be stored: {exc}"
        if size > MAX_NAME_BYTES:
            return f"{what} is longer than {MAX_NAME_BYTES} bytes"
    return None


async def scan_batches(
    roots: Sequence[str],
    excludes: Sequence[str],
    send: trio.MemorySendChannel[tuple[list[Found], list[FileSkipped]]],
) -> None:
    """The scan, walked in a worker thread a batch at a time, each batch sent with what it
    skipped: a tree of a million files is never held whole, events reach the sink in trio's
    thread, and the next batch is listed while this one is looked at."""
    skipped: list[FileSkipped] = []
    found = scan(roots, excludes, skipped.append)
    async with send:
        while True:
            batch = await trio.to_thread.run_sync(lambda: list(itertools.islice(found, SCAN_BATCH)))
            events, skipped[:] = list(skipped), []
            await send.send((batch, events))
            if len(batch) < SCAN_BATCH:
                return
