"""Restored files, written in batches, each durable before it takes its real name.

A restored file must never show up under its real name half-written. So each
one goes to a temporary name beside its target (created 0600) and is renamed
into place with its mode and mtime. It is renamed only once its bytes are on
disk; otherwise a crash could leave the real name pointing at an empty file.

A fsync per file was the main cost of restoring many small files: 10,000
files of 0-4 KiB on ext4 here took 2.4 s of fsyncs (10 s on a busy block
group), but 0.6 s for the whole write with one sync per batch. So a batch's
temporaries are written, one ``os.sync()`` makes them all durable, and only
then are they renamed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from p2pbackup.errors import StorageError

PARTIAL = ".p2pbackup-partial"
# Windows has no sync(); there each file is flushed on its own before it is closed.
_SYNC_ALL = hasattr(os, "sync")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True, slots=True)
class RestoredFile:
    target: str
    data: bytes
    mode: int
    mtime_ns: int


def write_batch(files: Sequence[RestoredFile]) -> None:
    """Put every file of the batch in place. On failure raise a StorageError that names
    the file, and leave no temporary behind; a file that has its real name is whole."""
    current = None
    try:
        for current in files:
            _write_temporary(current)
        if _SYNC_ALL:
            os.sync()
        for current in files:
            os.replace(current.target + PARTIAL, current.target)
    except BaseException as exc:
        for file in files:
            with contextlib.suppress(OSError):  # already renamed, or never written
                os.unlink(file.target + PARTIAL)
        if isinstance(exc, OSError) and current is not None:
            raise StorageError(f"Cannot write {current.target}: {exc.strerror or exc}.") from exc
        raise


def _write_temporary(file: RestoredFile) -> None:
    temporary = file.target + PARTIAL
    with os.fdopen(os.open(temporary, _CREATE, 0o600), "wb") as out:
        out.write(file.data)
        if not _SYNC_ALL:
            out.flush()
            os.fsync(out.fileno())
    os.chmod(temporary, file.mode)
    os.utime(temporary, ns=(file.mtime_ns, file.mtime_ns))
