"""The local catalog (SQLite, WAL): friends and quotas for now.

Each friendship has two numbers: what I store for them (``i_give``, which my
storage service enforces) and what they store for me (``they_give``, which
placement plans with).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from p2pbackup.errors import ConfigError

SCHEMA_VERSION = 2  # 2 added friends_seen (a version 1 catalog gains it when opened)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS friends (
    owner_id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    node_ids TEXT NOT NULL,        -- JSON list of peer ids seen for this owner
    addresses TEXT NOT NULL,       -- JSON list of multiaddrs last known
    certificate BLOB NOT NULL,     -- the device certificate they paired with
    i_give INTEGER NOT NULL,
    they_give INTEGER NOT NULL,
    added_at INTEGER NOT NULL
);
-- Friends I unfriended: the head carries each as a tombstone, so no device adds them back.
CREATE TABLE IF NOT EXISTS removed_friends (
    owner_id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    removed_at INTEGER NOT NULL   -- unix seconds
);
-- When each friend's node last answered: "bob unreachable since ..." needs it.
CREATE TABLE IF NOT EXISTS friends_seen (
    owner_id BLOB PRIMARY KEY,
    seen_at INTEGER NOT NULL      -- unix seconds
);
"""


@dataclass(frozen=True)
class Friend:
    owner_id: bytes
    name: str
    node_ids: tuple[str, ...]
    addresses: tuple[str, ...]
    certificate: bytes
    i_give: int
    they_give: int
    added_at: int


class Catalog:
    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigError("This profile was made by a newer p2pbackup; upgrade to use it.")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")  # autocommit otherwise (isolation_level=None)
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def add_friend(
        self, owner_id: bytes, name: str, node_id: str, addresses: list[str],
        certificate: bytes, i_give: int, they_give: int,
    ) -> None:  # fmt: skip
        known = self.friend(owner_id)
        node_ids = sorted({node_id, *(known.node_ids if known else ())})
        # Pairing again after an unfriend: the new friendship must be newer than the
        # tombstone, or the head would keep them removed.
        removed = self.removed_at(owner_id)
        added_at = known.added_at if known else max(int(time.time()), (removed or 0) + 1)
        with self._transaction():
            self._db.execute("DELETE FROM removed_friends WHERE owner_id = ?", (owner_id,))
            self._db.execute(
                "INSERT OR REPLACE INTO friends VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (owner_id, name, json.dumps(node_ids), json.dumps(addresses), certificate,
                 i_give, they_give, added_at),
            )  # fmt: skip

    def add_known_friend(
        self, owner_id: bytes, name: str, node_ids: list[str], addresses: list[str],
        added_at: int | None = None,
    ) -> None:  # fmt: skip
        """A friend learnt from my own head (a recovered device): no certificate or quota yet;
        pairing again, or their node answering, fills those in. ``added_at`` is the head
        entry's time, so a later unfriend on another device still outranks it."""
        self._db.execute(
            "INSERT OR IGNORE INTO friends VALUES (?, ?, ?, ?, ?, 0, 0, ?)",
            (owner_id, name, json.dumps(sorted(node_ids)), json.dumps(addresses), b"",
             int(time.time()) if added_at is None else added_at),
        )  # fmt: skip

    def _row(self, row: tuple) -> Friend:
        owner_id, name, node_ids, addresses, certificate, i_give, they_give, added_at = row
        return Friend(bytes(owner_id), name, tuple(json.loads(node_ids)),
                      tuple(json.loads(addresses)), bytes(certificate), i_give, they_give,
                      added_at)  # fmt: skip

    def friend(self, owner_id: bytes) -> Friend | None:
        row = self._db.execute("SELECT * FROM friends WHERE owner_id = ?", (owner_id,)).fetchone()
        return self._row(row) if row else None

    def friends(self) -> list[Friend]:
        return [self._row(r) for r in self._db.execute("SELECT * FROM friends ORDER BY name")]

    def find(self, text: str) -> Friend:
        """A friend by name, or by a prefix of their owner id or node id."""
        text = text.strip()
        matches = [
            f for f in self.friends()
            if f.name == text or f.owner_id.hex().startswith(text.lower())
            or any(n.startswith(text) for n in f.node_ids)
        ]  # fmt: skip
        if len(matches) != 1:
            names = ", ".join(f.name for f in self.friends()) or "none yet"
            what = "No friend" if not matches else "More than one friend"
            raise ConfigError(f"{what} matches {text!r}. Your friends: {names}.")
        return matches[0]

    def set_quota(self, owner_id: bytes, i_give: int) -> None:
        self._db.execute("UPDATE friends SET i_give = ? WHERE owner_id = ?", (i_give, owner_id))

    def rename_friend(self, owner_id: bytes, name: str) -> None:
        """The name this device shows for a friend (pairing again takes their card's)."""
        self._db.execute("UPDATE friends SET name = ? WHERE owner_id = ?", (name, owner_id))

    def set_addresses(self, owner_id: bytes, addresses: list[str]) -> None:
        self._db.execute(
            "UPDATE friends SET addresses = ? WHERE owner_id = ?",
            (json.dumps(addresses), owner_id),
        )

    def remove_friend(self, owner_id: bytes, removed_at: int | None = None) -> None:
        """Unfriend: the friend goes, a tombstone stays (at ``removed_at``, default now)."""
        known = self.friend(owner_id)
        with self._transaction():
            self._db.execute("DELETE FROM friends WHERE owner_id = ?", (owner_id,))
            if known is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO removed_friends VALUES (?, ?, ?)",
                    (owner_id, known.name,
                     int(time.time()) if removed_at is None else removed_at),
                )  # fmt: skip

    def removed_friends(self) -> list[tuple[bytes, str, int]]:
        """Tombstones: (owner id, name, removed at)."""
        rows = self._db.execute("SELECT owner_id, name, removed_at FROM removed_friends")
        return [(bytes(owner_id), name, removed_at) for owner_id, name, removed_at in rows]

    def removed_at(self, owner_id: bytes) -> int | None:
        row = self._db.execute(
            "SELECT removed_at FROM removed_friends WHERE owner_id = ?", (owner_id,)
        ).fetchone()
        return row[0] if row else None

    def saw(self, owner_id: bytes, when: int | None = None) -> None:
        """The friend's node answered just now (or at ``when``)."""
        self._db.execute(
            "INSERT OR REPLACE INTO friends_seen VALUES (?, ?)",
            (owner_id, int(time.time()) if when is None else when),
        )

    def last_seen(self, owner_id: bytes) -> int | None:
        """When the friend's node last answered, in unix seconds; None: never."""
        row = self._db.execute(
            "SELECT seen_at FROM friends_seen WHERE owner_id = ?", (owner_id,)
        ).fetchone()
        return row[0] if row else None

    def quota_for(self, owner_id: bytes) -> int | None:
        """What I give this owner, or None when they are not a friend."""
        row = self._db.execute(
            "SELECT i_give FROM friends WHERE owner_id = ?", (owner_id,)
        ).fetchone()
        return row[0] if row else None
