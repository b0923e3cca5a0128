"""The file index is loaded per folder, on demand: a job that forgets to load it is told."""

from __future__ import annotations

import hashlib

import pytest

from p2pbackup.core.manifest import ChainStep, Entry, EntryType
from p2pbackup.core.refs import BlobRef, StorageKind
from p2pbackup.engine.state import BackupState
from p2pbackup.storage.statedb import FileState, StateDB

PATHS = ["Docs", "Docs/a", "Docs/sub/é.txt", "Docs-2/a", "Docsx/a", "Pics/p.jpg", "notes.txt"]


def _state(tmp_path) -> BackupState:
    db = StateDB(str(tmp_path / "state.sqlite"))
    for path in PATHS:
        rev = hashlib.sha256(path.encode()).digest()
        chain = (ChainStep(StorageKind.FULL, rev, BlobRef(b"\x07" * 32, 0, 10)),)
        entry = Entry(path, EntryType.FILE, 0o644, 1, 10, "", rev, chain)
        db.file_done(path, FileState(10, 1, 2, entry), None, None)
    db.flush()
    return BackupState(db)


def test_only_the_folders_asked_for_are_loaded_then_more_then_all(tmp_path):
    state = _state(tmp_path)
    with pytest.raises(RuntimeError, match="not loaded"):
        state.files  # noqa: B018
    state.load_files(["Docs", "notes.txt"])  # a folder, and a single file backed up as a root
    assert sorted(state.files) == ["Docs", "Docs/a", "Docs/sub/é.txt", "notes.txt"]
    assert {chain[0].rev_id for chain in state.contents.values()} == {
        state.files[p].entry.rev_id for p in state.files
    }
    state.load_files(["Pics"])
    assert sorted(state.files) == ["Docs", "Docs/a", "Docs/sub/é.txt", "Pics/p.jpg", "notes.txt"]
    state.load_files()
    assert sorted(state.files) == sorted(PATHS)
    assert len(state.contents) == len(PATHS)
    state.load_files(["Docs"])  # everything is loaded already: nothing changes
    assert sorted(state.files) == sorted(PATHS)


def test_no_folder_loads_nothing_but_counts_as_loaded(tmp_path):
    state = _state(tmp_path)
    state.load_files([])
    assert state.files == {} and state.contents == {}
