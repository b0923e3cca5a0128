"""The disk's refusals in words: an OSError or sqlite3 error as a StorageError.

A full disk, a read-only folder or profile, a file that vanished: the user can
act on each, so each reaches them as a StorageError (exit 5) with a plain
message, and its traceback only reaches the log. Errors of any other kind are
bugs, told as "internal error, see the log" (docs/decisions.md, "Errors").
Cases are told apart by ``errno`` and SQLite's result code, never by text.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterable

from p2pbackup.errors import StorageError

_OS_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the disk is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "the disk failed to read or write",
    errno.ENOENT: "it does not exist",
    errno.ENOTDIR: "a file is where a folder should be",
    errno.EISDIR: "a folder is where a file should be",
    errno.EEXIST: "something else is already there",
    errno.ENOTEMPTY: "a folder that is not empty is in the way",
    errno.ENAMETOOLONG: "the name is too long",
}
# SQLite's primary result codes (the low byte of the extended code) for a disk that
# refuses to write a database that is itself fine.
_SQLITE_REFUSALS = {
    3: "permission denied",  # SQLITE_PERM
    8: "it is read-only",  # SQLITE_READONLY
    10: "the disk failed to read or write",  # SQLITE_IOERR
    13: "the disk is full",  # SQLITE_FULL
}
_SQLITE_REASONS = {**_SQLITE_REFUSALS, 14: "it cannot be opened"}  # SQLITE_CANTOPEN


def storage_error(exc: BaseException) -> StorageError | None:
    """The StorageError the disk's refusal in ``exc`` means to a user; None if ``exc`` is
    no such refusal (then it is a bug)."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _OS_REASONS:
        where = f" {exc.filename}" if exc.filename else ""
        return StorageError(f"The disk refused{where}: {_OS_REASONS[exc.errno]}.")
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        reason = _SQLITE_REASONS.get(code & 0xFF) if isinstance(code, int) else None
        if reason is not None:
            return StorageError(
                f"The profile's database cannot be written: {reason}. Check that the "
                "profile folder is writable and the disk has room."
            )
    return None


def database_refused(exc: sqlite3.Error, path: str) -> StorageError | None:
    """The disk refusing to write the database at ``path`` (read-only, full), as opposed to
    a database that is damaged; None if it is not that."""
    code = getattr(exc, "sqlite_errorcode", None)
    reason = _SQLITE_REFUSALS.get(code & 0xFF) if isinstance(code, int) else None
    if reason is None:
        return None
    return StorageError(
        f"{path} cannot be written: {reason}. Check that the profile folder is writable "
        "and the disk has room."
    )


def first_storage_error(found: Iterable[BaseException]) -> StorageError | None:
    """The first of ``found`` that is the disk's refusal, as a StorageError."""
    for exc in found:
        if (error := storage_error(exc)) is not None:
            return error
    return None
