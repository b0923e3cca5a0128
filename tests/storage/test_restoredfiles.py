"""Restored files in batches: whole or absent under their real names, no temporaries left."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from p2pbackup.storage import restoredfiles
from p2pbackup.storage.restoredfiles import RestoredFile, write_batch

MTIME = 1_600_000_000_123_456_789


def _names(root) -> list[str]:
    return sorted(os.listdir(root))


def test_a_batch_lands_with_its_bytes_modes_and_mtimes(tmp_path):
    files = [
        RestoredFile(str(tmp_path / "a"), b"alpha", 0o640, MTIME),
        RestoredFile(str(tmp_path / "empty"), b"", 0o600, MTIME + 1),
        RestoredFile(str(tmp_path / "run.sh"), b"#!/bin/sh\n", 0o755, MTIME + 2),
    ]
    write_batch(files)
    assert _names(tmp_path) == ["a", "empty", "run.sh"]
    for f in files:
        st = os.stat(f.target)
        assert Path(f.target).read_bytes() == f.data
        assert st.st_mode & 0o777 == f.mode
        assert st.st_mtime_ns == f.mtime_ns


def test_an_existing_file_is_replaced_whole(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_bytes(b"old contents, longer than the new ones")
    write_batch([RestoredFile(str(target), b"new", 0o644, MTIME)])
    assert target.read_bytes() == b"new"


@pytest.mark.skipif(not hasattr(os, "sync"), reason="one sync per batch where there is sync()")
def test_no_file_takes_its_real_name_before_the_batch_is_synced(tmp_path, monkeypatch):
    files = [RestoredFile(str(tmp_path / f"f{i}"), b"x" * i, 0o644, MTIME) for i in range(5)]
    seen_at_sync: list[list[str]] = []
    monkeypatch.setattr(os, "sync", lambda: seen_at_sync.append(_names(tmp_path)))
    write_batch(files)
    assert seen_at_sync == [[f"f{i}{restoredfiles.PARTIAL}" for i in range(5)]]
    assert _names(tmp_path) == [f"f{i}" for i in range(5)]


def test_a_file_that_cannot_be_written_is_named_and_the_others_are_placed(tmp_path):
    (tmp_path / "a-folder").mkdir()  # where the fourth file should go
    files = [
        RestoredFile(str(tmp_path / "first"), b"1", 0o644, MTIME),
        RestoredFile(str(tmp_path / "missing-folder" / "second"), b"2", 0o644, MTIME),
        RestoredFile(str(tmp_path / "third"), b"3", 0o644, MTIME),
        RestoredFile(str(tmp_path / "a-folder"), b"4", 0o644, MTIME),
    ]
    failed = write_batch(files)
    assert [(f.target, reason) for f, reason in failed] == [
        (files[1].target, "No such file or directory"),
        (files[3].target, "Is a directory"),
    ]
    assert _names(tmp_path) == ["a-folder", "first", "third"]  # no temporary left
    assert (tmp_path / "third").read_bytes() == b"3"


def test_a_full_disk_is_a_clear_error_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "kept.txt"
    target.write_bytes(b"what was here before")
    real_fdopen = os.fdopen

    class _Full:
        def __init__(self, fd, mode):
            self._file = real_fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._file.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", _Full)
    failed = write_batch([RestoredFile(str(target), b"new bytes", 0o644, MTIME)])
    assert [reason for _, reason in failed] == ["No space left on device"]
    assert _names(tmp_path) == ["kept.txt"]
    assert target.read_bytes() == b"what was here before"
