"""Small files are restored in batches by a thread; a file that cannot be written there is
listed with its reason, and every other file is restored."""

from __future__ import annotations

import errno
import os

import pytest
import trio

from p2pbackup.cli.demo import same_tree
from p2pbackup.engine import restore
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import read_head
from p2pbackup.engine.restore import load_manifest
from p2pbackup.storage.restoredfiles import PARTIAL

pytestmark = pytest.mark.trio


def _small_tree(root, count: int) -> None:
    for i in range(count):
        folder = root / f"d{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:03d}").write_bytes(bytes([i]) * i)


async def test_a_tree_larger_than_a_batch_comes_back_whole(grid, tmp_path, monkeypatch):
    monkeypatch.setattr(restore, "BATCH_FILES", 4)
    monkeypatch.setattr(restore, "BATCH_BYTES", 300)
    batches: list[int] = []
    real = restore.write_batch

    def counted(files):
        batches.append(len(files))
        return real(files)

    monkeypatch.setattr(restore, "write_batch", counted)
    src = tmp_path / "docs"
    _small_tree(src, 40)
    await grid.backup(src)
    await grid.restore_all(tmp_path / "out")
    assert same_tree(str(src), str(tmp_path / "out" / "snap0" / "docs"))
    assert sum(batches) == 40 and len(batches) >= 10  # 4 files or 300 bytes at most each
    assert max(batches) <= 4


async def _restore_latest(grid, dest) -> restore.RestoreReport:
    fetcher = Fetcher(grid.keys, grid.stores, grid.events.append, trio.CapacityLimiter(2))
    _, body = await read_head(grid.keys, grid.stores)
    ref = max(body.tips, key=lambda r: r.created_at_ns)
    manifest, _ = await load_manifest(fetcher, ref)
    return await restore.Restorer(fetcher).restore(manifest, str(dest), keep_newer=False)


async def test_files_that_cannot_be_written_are_listed_and_the_rest_restored(
    grid, tmp_path, monkeypatch
):
    src = tmp_path / "docs"
    _small_tree(src, 10)
    await grid.backup(src)
    out = tmp_path / "out"
    (out / "docs" / "d1" / "f004").mkdir(parents=True)  # a folder where the file must go
    (out / "docs" / "d2").write_bytes(b"a file where a folder must go")
    real_open = os.open

    def _read_only(path, *args, **kwargs):  # d0 is on a read-only disk
        if f"{os.sep}d0{os.sep}" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", _read_only)
    report = await _restore_latest(grid, out)
    failed = dict(report.errors)
    assert failed["docs/d1/f004"] == "Is a directory"
    assert {f"docs/d0/f{i:03d}" for i in (0, 3, 6, 9)} <= set(failed)
    assert {f"docs/d2/f{i:03d}" for i in (2, 5, 8)} <= set(failed)
    assert all(failed[f"docs/d0/f{i:03d}"] == "Read-only file system" for i in (0, 3, 6, 9))
    assert report.files == 2  # d1's f001 and f007: every file that could be written
    for i in (1, 7):
        assert (out / "docs" / "d1" / f"f{i:03d}").read_bytes() == bytes([i]) * i
    leftovers = [n for _, _, ns in os.walk(out) for n in ns if n.endswith(PARTIAL)]
    assert leftovers == []
