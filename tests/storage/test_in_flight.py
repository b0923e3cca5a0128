"""state.sqlite's ``in_flight`` table: committed before shares leave, read back after a
restart, settled by the stored record; a version-2 database made before it gains it."""

from __future__ import annotations

import sqlite3

from p2pbackup.core import erasure
from p2pbackup.engine.state import BackupState, StoredRecord
from p2pbackup.storage.statedb import SCHEMA_VERSION, StateDB

RID = b"\x07" * 32


def test_shares_in_flight_survive_a_restart_and_settle_with_their_record(tmp_path):
    path = str(tmp_path / "state.sqlite")
    db = StateDB(path)
    BackupState(db).sending(RID, {0: "aa", 1: "bb", 2: "cc", 3: "dd"})
    db._db.close()  # killed: no close(), only what was committed
    state = BackupState(StateDB(path))
    assert state.in_flight() == {(RID, 0, "aa"), (RID, 1, "bb"), (RID, 2, "cc"), (RID, 3, "dd")}
    descriptor, _ = erasure.encode(RID, b"x" * 1000, 2, 4)
    # "bb" failed: its share went to "cc" instead. That one row stays, for prune.
    state.record_stored(RID, StoredRecord(descriptor, {0: "aa", 1: "cc", 2: "cc", 3: "dd"}))
    assert state.in_flight() == {(RID, 1, "bb")}
    state.landed([(RID, 1, "bb")])
    assert BackupState(StateDB(path)).in_flight() == set()


def test_a_version_2_database_without_the_table_gains_it(tmp_path):
    path = str(tmp_path / "state.sqlite")
    StateDB(path).close()
    raw = sqlite3.connect(path)
    raw.execute("DROP TABLE in_flight")  # as the first version-2 code left it
    raw.commit()
    raw.close()
    db = StateDB(path)
    assert db.in_flight() == set()
    db.sending(RID, {2: "aa"})
    assert db.in_flight() == {(RID, 2, "aa")}
    assert db._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
