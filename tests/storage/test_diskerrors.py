"""The disk's refusals become StorageErrors with plain words, told apart by errno and
SQLite's result code (real ones here), never by their text; anything else is not one."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from p2pbackup.errors import StorageError
from p2pbackup.storage.diskerrors import first_storage_error, storage_error


def _sqlite_error(path, *sql: str, uri: str = "") -> sqlite3.Error:
    db = sqlite3.connect(f"file:{path}{uri}", uri=True)
    try:
        for statement in sql:
            db.execute(statement)
        db.commit()
    except sqlite3.Error as exc:
        return exc
    finally:
        db.close()
    raise AssertionError("sqlite did not refuse")


def test_a_full_or_read_only_database_is_a_storage_error(tmp_path):
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x BLOB)")
    readonly = _sqlite_error(path, "INSERT INTO t VALUES (1)", uri="?mode=ro")
    assert "read-only" in storage_error(readonly).message
    full = _sqlite_error(path, "PRAGMA max_page_count = 2", "INSERT INTO t VALUES (zeroblob(9e4))")
    assert full.sqlite_errorcode & 0xFF == 13
    assert storage_error(full).message.startswith(
        "The profile's database cannot be written: the disk is full."
    )
    assert storage_error(sqlite3.ProgrammingError("a bug")) is None


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "the disk is read-only"),
     (errno.EACCES, "permission denied")],
)  # fmt: skip
def test_an_os_error_of_the_disk_names_its_file(code, words):
    error = storage_error(OSError(code, "whatever the C library says", "/home/me/x"))
    assert isinstance(error, StorageError) and error.exit_code == 5
    assert error.message == f"The disk refused /home/me/x: {words}."


def test_other_errors_are_bugs():
    assert storage_error(TypeError("x")) is None
    assert storage_error(OSError(errno.EBADF, "bad file descriptor")) is None
    found = [ValueError("x"), OSError(errno.EROFS, "ro")]
    assert first_storage_error(found).message == "The disk refused: the disk is read-only."
