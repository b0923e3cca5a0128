"""``restore --to DIR`` keeps what is newer in DIR unless forced, as ``--in-place`` does
(issue 9, item 8); jobs on real nodes in one process."""

from __future__ import annotations

import os

import pytest

from tests.daemon.conftest import started

pytestmark = pytest.mark.trio
HOUR = 3600 * 10**9


async def test_restore_to_a_folder_keeps_newer_files_unless_forced(tmp_path):
    folder = tmp_path / "Docs"
    folder.mkdir()
    then = 1_700_000_000 * 10**9
    for name in ("edited.txt", "older.txt"):
        (folder / name).write_bytes(f"snapshot {name}\n".encode())
        os.utime(folder / name, ns=(then, then))
    async with started(tmp_path / "nodes", friends=("alice", "bob"), folders=[str(folder)]) as n:
        await n.run("laptop", "backup")
        out = tmp_path / "out"
        await n.run("laptop", "restore", to=str(out))
        (out / "Docs" / "edited.txt").write_bytes(b"the user's work\n")  # mtime: now, newer
        (out / "Docs" / "older.txt").write_bytes(b"an old copy\n")
        os.utime(out / "Docs" / "older.txt", ns=(then - HOUR, then - HOUR))
        report = await n.run("laptop", "restore", to=str(out))
        assert report["kept_newer"] == ["Docs/edited.txt"] and report["files"] == 1
        assert (out / "Docs" / "edited.txt").read_bytes() == b"the user's work\n"
        assert (out / "Docs" / "older.txt").read_bytes() == b"snapshot older.txt\n"
        forced = await n.run("laptop", "restore", to=str(out), force=True)
        assert forced["kept_newer"] == []
        assert (out / "Docs" / "edited.txt").read_bytes() == b"snapshot edited.txt\n"
