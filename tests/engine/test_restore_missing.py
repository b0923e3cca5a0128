"""A restore that brings back only what is missing leaves every file and link already on
disk alone, older ones too, and says which (the app's third choice for existing files)."""

from __future__ import annotations

import os

import pytest
import trio

from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import read_head
from p2pbackup.engine.restore import Restorer, load_manifest

pytestmark = pytest.mark.trio
THEN = 1_700_000_000 * 10**9
HOUR = 3600 * 10**9


async def _restore(grid, dest, **rule):
    fetcher = Fetcher(grid.keys, grid.stores, grid.events.append, trio.CapacityLimiter(2))
    _, body = await read_head(grid.keys, grid.stores)
    manifest, _ = await load_manifest(fetcher, next(iter(body.tips)))
    return await Restorer(fetcher).restore(manifest, str(dest), **rule)


async def test_only_missing_files_come_back_and_older_ones_on_disk_stay(grid, tmp_path):
    src = tmp_path / "Docs"
    src.mkdir()
    for name in ("gone.txt", "older.txt", "same.txt"):
        (src / name).write_bytes(f"snapshot {name}\n".encode())
        os.utime(src / name, ns=(THEN, THEN))
    os.symlink("same.txt", src / "link")
    await grid.backup(src)
    out = tmp_path / "out"
    await _restore(grid, out)
    restored = out / "Docs"
    os.unlink(restored / "gone.txt")
    (restored / "older.txt").write_bytes(b"an older copy\n")  # keep_newer would replace it
    os.utime(restored / "older.txt", ns=(THEN - HOUR, THEN - HOUR))
    os.unlink(restored / "link")
    os.symlink("elsewhere", restored / "link")

    report = await _restore(grid, out, keep_newer=True, only_missing=True)
    assert report.files == 1 and report.kept_newer == []
    assert sorted(report.kept_existing) == ["Docs/link", "Docs/older.txt", "Docs/same.txt"]
    assert (restored / "gone.txt").read_bytes() == b"snapshot gone.txt\n"
    assert os.stat(restored / "gone.txt").st_mtime_ns == THEN
    assert (restored / "older.txt").read_bytes() == b"an older copy\n"
    assert os.stat(restored / "older.txt").st_mtime_ns == THEN - HOUR
    assert os.readlink(restored / "link") == "elsewhere"
