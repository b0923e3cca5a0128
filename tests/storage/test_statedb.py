"""The local backup state: fixed vectors, and it survives a reopen."""

from __future__ import annotations

import pytest

from p2pbackup.core.manifest import ChainStep, Entry, EntryType
from p2pbackup.core.refs import BlobRef, RecordDescriptor, StorageKind
from p2pbackup.errors import ConfigError, FormatError
from p2pbackup.storage.statedb import FileState, StateDB, StoredRecord, decode_chain, encode_chain

CHAIN = (
    ChainStep(StorageKind.FULL, b"\x01" * 32, BlobRef(b"\x02" * 32, 0, 300)),
    ChainStep(StorageKind.DELTA, b"\x03" * 32, BlobRef(b"\x04" * 32, 128, 7)),
)


def test_chain_vector():
    data = encode_chain(CHAIN)
    assert data.hex() == (
        "0102" + "01" + "01" * 32 + "02" * 32 + "00" + "ac02"
        + "02" + "03" * 32 + "04" * 32 + "8001" + "07"
    )  # fmt: skip
    assert decode_chain(data) == CHAIN


@pytest.mark.parametrize("damage", [b"\x02\x00", b"\x01\x01\x09" + b"\x00" * 66, b"\x01\x01"])
def test_a_damaged_chain_is_a_format_error(damage):
    with pytest.raises(FormatError):
        decode_chain(damage)


def test_state_survives_a_reopen(tmp_path):
    path = str(tmp_path / "state.sqlite")
    db = StateDB(path)
    entry = Entry("Docs/a", EntryType.FILE, 0o644, 5, 307, "", b"\x03" * 32, CHAIN)
    descriptor = RecordDescriptor(b"\x02" * 32, 2, 4, 400, tuple(bytes([i]) * 32 for i in range(4)))
    db.file_done("Docs/a", FileState(307, 5, 9, entry), b"sig", b"revlog")
    db.record_stored(b"\x02" * 32, StoredRecord(descriptor, {0: "aa", 1: "bb", 2: "cc", 3: "aa"}))
    db.add_challenges(b"\x02" * 32, 1, [(b"n" * 16, b"a" * 32)])
    db.close()
    db = StateDB(path)
    assert dict(db.files()) == {"Docs/a": FileState(307, 5, 9, entry)}
    assert dict(db.records())[b"\x02" * 32].placement == {0: "aa", 1: "bb", 2: "cc", 3: "aa"}
    assert db.signature("Docs/a") == b"sig" and db.revlog("Docs/a") == b"revlog"
    assert db.take_challenge(b"\x02" * 32, 1) == (b"n" * 16, b"a" * 32)
    assert db.take_challenge(b"\x02" * 32, 1) is None  # spent
    db.forget_files(["Docs/a"])
    assert dict(db.files()) == {} and db.signature("Docs/a") is None
    db.close()


def test_a_state_from_a_newer_version_is_refused(tmp_path):
    path = str(tmp_path / "state.sqlite")
    StateDB(path).close()
    import sqlite3

    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version=99")
    raw.close()
    with pytest.raises(ConfigError, match="newer"):
        StateDB(path)


NAME = "Docs/bad\udcffname.txt"  # the name b"bad\xffname.txt", as os.fsdecode gives it


def test_a_name_that_is_not_utf8_is_kept_by_its_bytes(tmp_path):
    path = str(tmp_path / "state.sqlite")
    db = StateDB(path)
    entry = Entry(NAME, EntryType.FILE, 0o644, 5, 307, "", b"\x03" * 32, CHAIN)
    db.file_done(NAME, FileState(307, 5, 9, entry), b"sig", b"revlog")
    db.put_revlog("Docs/\udcc3", b"other")
    db.flush()
    db.close()
    import sqlite3

    raw = sqlite3.connect(path)
    assert raw.execute("SELECT path FROM files").fetchall() == [(b"Docs/bad\xffname.txt",)]
    raw.close()
    db = StateDB(path)
    assert dict(db.files(["Docs"])) == {NAME: FileState(307, 5, 9, entry)}
    assert db.signature(NAME) == b"sig" and db.revlog("Docs/\udcc3") == b"other"
    db.forget_files([NAME])
    assert dict(db.files()) == {} and db.revlog(NAME) is None
    db.close()


_SCHEMA_1 = """
CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, mode INTEGER NOT NULL, rev_id BLOB NOT NULL, chain BLOB NOT NULL);
CREATE TABLE signatures (path TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE revlogs (path TEXT PRIMARY KEY, data BLOB NOT NULL);
PRAGMA user_version=1;
"""


def test_a_version_1_state_with_text_paths_is_read_and_upgraded(tmp_path):
    import sqlite3

    path = str(tmp_path / "state.sqlite")
    raw = sqlite3.connect(path)
    raw.executescript(_SCHEMA_1)
    for name in ("Docs/é.txt", "Docs/a", "Docs0/b", "Other/c"):
        raw.execute("INSERT INTO files VALUES (?, 3, 5, 9, 420, ?, ?)",
                    (name, b"\x01" * 32, encode_chain(CHAIN[:1])))  # fmt: skip
    raw.execute("INSERT INTO signatures VALUES ('Docs/é.txt', x'01')")
    raw.commit()
    raw.close()
    db = StateDB(path)
    assert sorted(dict(db.files(["Docs"]))) == ["Docs/a", "Docs/é.txt"]
    assert db.signature("Docs/é.txt") == b"\x01"
    db.file_done("Docs/a", dict(db.files(["Docs"]))["Docs/a"], None, None)  # replaces, no twin
    db.flush()
    assert len(dict(db.files())) == 4
    db.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
    assert raw.execute("SELECT count(*) FROM files WHERE typeof(path) != 'blob'").fetchone() == (0,)
    raw.close()
