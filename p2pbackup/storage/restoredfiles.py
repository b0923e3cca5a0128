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


def write_batch(files: Sequence[RestoredFile]) -> list[tuple[RestoredFile, str]]:
    """Put every file of the batch in place; the files that could not be, each with the
    disk's reason (the rest are whole under their names). No temporary is left behind."""
    failed: dict[str, tuple[RestoredFile, str]] = {}
    try:
        for file in files:
            try:
                _write_temporary(file)
            except OSError as exc:  # this file's folder or name: the others go on
                failed[file.target] = (file, _reason(exc))
        if _SYNC_ALL:
            os.sync()
        for file in files:
            if file.target not in failed:
                try:
                    os.replace(file.target + PARTIAL, file.target)
                except OSError as exc:  # a folder where the file should go, say
                    failed[file.target] = (file, _reason(exc))
    finally:
        for file in files:
            with contextlib.suppress(OSError):  # already renamed, or never written
                os.unlink(file.target + PARTIAL)
    return list(failed.values())


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _write_temporary(file: RestoredFile) -> None:
    temporary = file.target + PARTIAL
    with os.fdopen(os.open(temporary, _CREATE, 0o600), "wb") as out:
        out.write(file.data)
        if not _SYNC_ALL:
            out.flush()
            os.fsync(out.fileno())
    os.chmod(temporary, file.mode)
    os.utime(temporary, ns=(file.mtime_ns, file.mtime_ns))
