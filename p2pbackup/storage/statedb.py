"""What the backup engine remembers between runs, in ``state.sqlite`` (WAL).

Every change is committed as soon as it is true on friends: a record once all
its shares landed, a file once every record of its chain did, the head once
published. So a backup killed at any moment resumes where it stopped and
sends nothing twice. Values are the core's own versioned encodings; the
layout is in docs/format.md ("Local state").

Paths are stored as the bytes of the file's name (a BLOB, not TEXT): a name
that is not valid UTF-8 reaches Python as a str with lone surrogates
(``surrogateescape``), which sqlite3 cannot bind as text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from p2pbackup.core.codec import Reader, Writer
from p2pbackup.core.head import HeadBody
from p2pbackup.core.manifest import ChainStep, Entry, EntryType
from p2pbackup.core.refs import BlobRef, RecordDescriptor, StorageKind
from p2pbackup.errors import ConfigError, FormatError
from p2pbackup.storage.diskerrors import database_refused

SCHEMA_VERSION = 2  # 2: paths are BLOBs (the name's bytes); 1 had TEXT paths
CHAIN_VERSION = 1
FLUSH_FILES = 2000  # queued file rows committed at once at the latest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY,      -- snapshot path, "<folder label>/relative/path", as bytes
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    rev_id BLOB NOT NULL,       -- empty for an empty file
    chain BLOB NOT NULL         -- how to rebuild it (encode_chain)
);
CREATE TABLE IF NOT EXISTS signatures (path BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS revlogs (path BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    record_id BLOB PRIMARY KEY,
    descriptor BLOB NOT NULL,   -- RecordDescriptor.to_bytes()
    placement TEXT NOT NULL     -- JSON {share index: friend owner id (hex)}
);
CREATE TABLE IF NOT EXISTS manifests (
    snapshot_id BLOB PRIMARY KEY,
    data BLOB NOT NULL          -- Manifest.to_bytes(); immutable, so a cache
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS challenges (  -- proofs of possession not spent yet
    record_id BLOB NOT NULL,
    idx INTEGER NOT NULL,
    nonce BLOB NOT NULL,
    answer BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS challenges_share ON challenges (record_id, idx);
CREATE TABLE IF NOT EXISTS garbage (  -- records to remove from friends that were away
    record_id BLOB PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS in_flight (  -- shares sent that no stored record's placement holds
    record_id BLOB NOT NULL,
    idx INTEGER NOT NULL,
    friend TEXT NOT NULL,       -- friend owner id (hex), as in records.placement
    PRIMARY KEY (record_id, idx, friend)
);
"""
_PATH_TABLES = ("files", "signatures", "revlogs")


def _key(path: str) -> bytes:
    """A snapshot path as the bytes of the name it came from (the files tables' key)."""
    return path.encode("utf-8", "surrogateescape")


def _path(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class FileState:
    """A regular file as the last backup saw it (unchanged if these still match)."""

    size: int
    mtime_ns: int
    inode: int
    entry: Entry


@dataclass(frozen=True, slots=True)
class StoredRecord:
    descriptor: RecordDescriptor
    placement: dict[int, str]  # share index -> friend key


def encode_chain(chain: tuple[ChainStep, ...]) -> bytes:
    w = Writer().u8(CHAIN_VERSION).varint(len(chain))
    for step in chain:
        w.u8(step.kind).raw(step.rev_id)
        step.blob.write_to(w)
    return w.getvalue()


def decode_chain(data: bytes, ids: dict[bytes, bytes] | None = None) -> tuple[ChainStep, ...]:
    """The chain ``encode_chain`` wrote. ``ids`` shares one bytes object per record id
    across many chains (a pack serves thousands of files)."""
    r = Reader(data, "file chain")
    if (version := r.u8("chain version")) != CHAIN_VERSION:
        raise r.fail(f"chain version {version} is not {CHAIN_VERSION}")
    steps = []
    for _ in range(r.varint("chain length", 1 << 20)):
        code = r.u8("chain step kind")
        # A lookup, not the enum's call: 100,000 chains are decoded per backup of a home folder.
        if (kind := StorageKind._value2member_map_.get(code)) is None:
            raise r.fail(f"chain step kind {code} is unknown")
        rev_id, blob = r.raw(32, "chain step revision"), BlobRef.read_from(r, ids)
        steps.append(ChainStep(kind, rev_id, blob))
    r.end()
    return tuple(steps)


class StateDB:
    def __init__(self, path: str) -> None:
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL keeps it consistent on a crash
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(f"{path} was made by a newer p2pbackup; upgrade to use it.")
            if version == 1:
                self._upgrade_from_1()
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._files: list[tuple] = []
            self._signatures: list[tuple[bytes, bytes]] = []
            self._revlogs: list[tuple[bytes, bytes]] = []
        except sqlite3.DatabaseError as exc:
            # A read-only or full disk is not a damaged file: moving it away would lose it.
            if (refused := database_refused(exc, path)) is not None:
                raise refused from exc
            raise ConfigError(
                f"{path} cannot be opened ({exc}); move it away to rebuild it."
            ) from exc

    def _upgrade_from_1(self) -> None:
        """Version 1 kept paths as TEXT: the same names, as their UTF-8 bytes. The tables
        keep their declared TEXT type; a BLOB value stays a BLOB in them and compares as one."""
        with self._db:
            self._db.execute("BEGIN")
            for table in _PATH_TABLES:
                self._db.execute(
                    f"UPDATE {table} SET path = CAST(path AS BLOB) WHERE typeof(path) = 'text'"
                )
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.flush()
        self._db.close()

    # Reading -------------------------------------------------------------------------------

    def files(self, labels: Sequence[str] | None = None) -> Iterator[tuple[str, FileState]]:
        """The file rows of the folders with these snapshot labels (all rows for None)."""
        if labels is not None and not labels:
            return
        self.flush()
        query, args = "SELECT path, size, mtime_ns, inode, mode, rev_id, chain FROM files", []
        if labels is not None:
            # A folder's paths are "label" and "label/...": those sort in ["label/", "label0")
            # ('0' follows '/'), so each label is one range of the primary key.
            query += " WHERE " + " OR ".join(["path = ? OR (path >= ? AND path < ?)"] * len(labels))
            for label in labels:
                args += [_key(label), _key(label + "/"), _key(label + "0")]
        rows = self._db.execute(query, args)
        ids: dict[bytes, bytes] = {}
        for key, size, mtime_ns, inode, mode, rev_id, chain in rows:
            path = _path(key)
            entry = Entry(
                path, EntryType.FILE, mode, mtime_ns, size, "", bytes(rev_id),
                decode_chain(chain, ids),
            )  # fmt: skip
            yield path, FileState(size, mtime_ns, inode, entry)

    def records(self) -> Iterator[tuple[bytes, StoredRecord]]:
        for rid, descriptor, placement in self._db.execute("SELECT * FROM records"):
            placed = {int(i): f for i, f in json.loads(placement).items()}
            yield bytes(rid), StoredRecord(RecordDescriptor.from_bytes(descriptor), placed)

    def _one(self, sql: str, key: object) -> bytes | None:
        row = self._db.execute(sql, (key,)).fetchone()
        return bytes(row[0]) if row else None

    def signature(self, path: str) -> bytes | None:
        self.flush()
        return self._one("SELECT data FROM signatures WHERE path = ?", _key(path))

    def revlog(self, path: str) -> bytes | None:
        self.flush()
        return self._one("SELECT data FROM revlogs WHERE path = ?", _key(path))

    def manifest(self, snapshot_id: bytes) -> bytes | None:
        return self._one("SELECT data FROM manifests WHERE snapshot_id = ?", snapshot_id)

    def meta(self, key: str) -> bytes | None:
        return self._one("SELECT value FROM meta WHERE key = ?", key)

    def head(self) -> tuple[int, HeadBody | None, bytes | None]:
        """The last published head: sequence number, body, and its newest snapshot id."""
        seq = self.meta("head_seq")
        body = self.meta("head")
        try:
            parsed = HeadBody.from_bytes(body) if body else None
        except FormatError:
            parsed = None  # only a cache of what friends hold: read it from them again
        return (int(seq) if seq else 0), parsed, self.meta("last_snapshot")

    def friend_heads(self) -> dict[str, int]:
        """The highest head sequence number each friend was seen holding or accepting."""
        data = self.meta("friend_heads")
        try:
            seen = json.loads(data) if data else {}
        except ValueError:
            return {}  # a cache: rebuilt from what friends hold now
        if not isinstance(seen, dict):
            return {}
        return {str(k): v for k, v in seen.items() if isinstance(v, int)}

    # Writing: each call is one transaction ---------------------------------------------------

    def put_friend_heads(self, seen: dict[str, int]) -> None:
        value = json.dumps(seen, sort_keys=True).encode()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("friend_heads", value))

    def rollbacks(self) -> dict[str, tuple[int, int]]:
        """Friends found holding an older head, not yet checked by a backup or a repair."""
        data = self.meta("rollbacks")
        try:
            found = json.loads(data) if data else {}
            return {str(f): (int(seen), int(known)) for f, (seen, known) in found.items()}
        except (ValueError, TypeError, AttributeError):
            return {}

    def put_rollbacks(self, found: dict[str, tuple[int, int]]) -> None:
        value = json.dumps({f: list(v) for f, v in found.items()}, sort_keys=True).encode()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("rollbacks", value))

    def extras(self) -> dict[tuple[bytes, int], tuple[str, str]]:
        """Share copies made while the friend that held them was unseen (engine/replace.py):
        {(record id, index): (friend holding the copy, friend it stands in for)}."""
        data = self.meta("extras")
        try:
            rows = json.loads(data) if data else []
            return {(bytes.fromhex(r), int(i)): (str(h), str(f)) for r, i, h, f in rows}
        except (ValueError, TypeError):
            return {}  # only costs space: the copies stay placed, none is dropped

    def put_extras(self, extras: dict[tuple[bytes, int], tuple[str, str]]) -> None:
        rows = sorted([r.hex(), i, h, f] for (r, i), (h, f) in extras.items())
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                         ("extras", json.dumps(rows).encode()))  # fmt: skip

    def file_done(
        self, path: str, state: FileState, signature: bytes | None, revlog: bytes | None
    ) -> None:
        """Queued, and committed with the next record (or ``flush``): a transaction per small
        file would cost more than backing it up. A crash loses at most the files done since
        the last record, which the next run reads again."""
        e, key = state.entry, _key(path)
        self._files.append((key, state.size, state.mtime_ns, state.inode, e.mode, e.rev_id,
                            encode_chain(e.chain)))  # fmt: skip
        if signature is not None:
            self._signatures.append((key, signature))
        if revlog is not None:
            self._revlogs.append((key, revlog))
        if len(self._files) >= FLUSH_FILES:
            self.flush()

    def _write_pending(self) -> None:
        if self._files:
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 self._files)  # fmt: skip
            self._db.executemany("INSERT OR REPLACE INTO signatures VALUES (?, ?)",
                                 self._signatures)  # fmt: skip
            self._db.executemany("INSERT OR REPLACE INTO revlogs VALUES (?, ?)", self._revlogs)
            self._files, self._signatures, self._revlogs = [], [], []

    def flush(self) -> None:
        if not self._files:
            return
        with self._db:
            self._db.execute("BEGIN")
            self._write_pending()

    def record_stored(self, record_id: bytes, record: StoredRecord) -> None:
        placement = json.dumps({str(i): f for i, f in sorted(record.placement.items())})
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                (record_id, record.descriptor.to_bytes(), placement),
            )
            # The shares where the record is placed are accounted for; others sent stay.
            self._db.executemany(
                "DELETE FROM in_flight WHERE record_id = ? AND idx = ? AND friend = ?",
                [(record_id, i, f) for i, f in record.placement.items()],
            )
            self._write_pending()

    def add_challenges(
        self, record_id: bytes, index: int, pairs: list[tuple[bytes, bytes]]
    ) -> None:
        self._db.executemany(
            "INSERT INTO challenges VALUES (?, ?, ?, ?)",
            [(record_id, index, nonce, answer) for nonce, answer in pairs],
        )

    def garbage(self) -> set[bytes]:
        return {bytes(r) for (r,) in self._db.execute("SELECT record_id FROM garbage")}

    def set_garbage(self, record_ids: set[bytes]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM garbage")
            self._db.executemany("INSERT INTO garbage VALUES (?)", [(r,) for r in record_ids])

    def in_flight(self) -> set[tuple[bytes, int, str]]:
        return {(bytes(r), i, f) for r, i, f in self._db.execute("SELECT * FROM in_flight")}

    def sending(self, record_id: bytes, placement: dict[int, str]) -> None:
        """Committed before the first byte of these shares leaves (prune's note of them)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO in_flight VALUES (?, ?, ?)",
                [(record_id, i, f) for i, f in sorted(placement.items())],
            )

    def landed(self, shares: list[tuple[bytes, int, str]]) -> None:
        """These shares are accounted for: part of a stored record, or removed."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "DELETE FROM in_flight WHERE record_id = ? AND idx = ? AND friend = ?", shares
            )

    def take_challenge(self, record_id: bytes, index: int) -> tuple[bytes, bytes] | None:
        """An unspent (nonce, answer) pair for the share, spent by taking it."""
        with self._db:
            self._db.execute("BEGIN")
            row = self._db.execute(
                "SELECT rowid, nonce, answer FROM challenges WHERE record_id = ? AND idx = ? "
                "LIMIT 1",
                (record_id, index),
            ).fetchone()
            if row is None:
                return None
            self._db.execute("DELETE FROM challenges WHERE rowid = ?", (row[0],))
        return bytes(row[1]), bytes(row[2])

    def forget_records(self, record_ids: list[bytes]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "DELETE FROM challenges WHERE record_id = ?", [(r,) for r in record_ids]
            )
            self._db.executemany(
                "DELETE FROM records WHERE record_id = ?", [(r,) for r in record_ids]
            )

    def forget_files(self, paths: list[str]) -> None:
        """The next backup reads these files again (their records were pruned)."""
        self.flush()
        with self._db:
            self._db.execute("BEGIN")
            keys = [(_key(p),) for p in paths]
            for table in _PATH_TABLES:
                self._db.executemany(f"DELETE FROM {table} WHERE path = ?", keys)

    def put_revlog(self, path: str, revlog: bytes) -> None:
        self.flush()
        self._db.execute("INSERT OR REPLACE INTO revlogs VALUES (?, ?)", (_key(path), revlog))

    def put_manifest(self, snapshot_id: bytes, data: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO manifests VALUES (?, ?)", (snapshot_id, data))

    def published(self, seq: int, body: bytes, last_snapshot: bytes | None) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._write_pending()
            rows = [("head_seq", str(seq).encode()), ("head", body)]
            if last_snapshot is not None:
                rows.append(("last_snapshot", last_snapshot))
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)
