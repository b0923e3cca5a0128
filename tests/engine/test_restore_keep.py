"""What a restore that keeps newer work leaves alone: files and links newer on disk, and
their times (issue 9, item 8)."""

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


async def _restore(grid, dest, keep_newer: bool):
    fetcher = Fetcher(grid.keys, grid.stores, grid.events.append, trio.CapacityLimiter(2))
    _, body = await read_head(grid.keys, grid.stores)
    manifest, _ = await load_manifest(fetcher, next(iter(body.tips)))
    return await Restorer(fetcher).restore(manifest, str(dest), keep_newer=keep_newer)


async def test_a_newer_link_or_file_is_kept_with_its_time(grid, tmp_path):
    src = tmp_path / "Docs"
    src.mkdir()
    (src / "a.txt").write_bytes(b"snapshot\n")
    os.utime(src / "a.txt", ns=(THEN, THEN))
    os.symlink("a.txt", src / "link")
    os.utime(src / "link", ns=(THEN, THEN), follow_symlinks=False)
    await grid.backup(src)
    out = tmp_path / "out"
    await _restore(grid, out, keep_newer=True)
    os.unlink(out / "Docs" / "link")
    os.symlink("mine", out / "Docs" / "link")  # made now: newer than the snapshot's link
    mine = os.lstat(out / "Docs" / "link").st_mtime_ns
    os.unlink(out / "Docs" / "a.txt")
    os.symlink("also mine", out / "Docs" / "a.txt")  # a link where the snapshot has a file
    report = await _restore(grid, out, keep_newer=True)
    assert sorted(report.kept_newer) == ["Docs/a.txt", "Docs/link"]
    assert os.readlink(out / "Docs" / "link") == "mine"
    assert os.lstat(out / "Docs" / "link").st_mtime_ns == mine  # not set back to THEN
    assert os.readlink(out / "Docs" / "a.txt") == "also mine"
    report = await _restore(grid, out, keep_newer=False)  # --force
    assert report.kept_newer == [] and os.readlink(out / "Docs" / "link") == "a.txt"
    assert (out / "Docs" / "a.txt").read_bytes() == b"snapshot\n"
