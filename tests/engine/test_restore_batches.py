"""Small files are restored in batches by a thread; errors there reach the user as one."""

from __future__ import annotations

import os

import pytest

from p2pbackup.cli.demo import same_tree
from p2pbackup.engine import restore
from p2pbackup.errors import StorageError
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
        real(files)

    monkeypatch.setattr(restore, "write_batch", counted)
    src = tmp_path / "docs"
    _small_tree(src, 40)
    await grid.backup(src)
    await grid.restore_all(tmp_path / "out")
    assert same_tree(str(src), str(tmp_path / "out" / "snap0" / "docs"))
    assert sum(batches) == 40 and len(batches) >= 10  # 4 files or 300 bytes at most each
    assert max(batches) <= 4


async def test_a_file_the_writer_cannot_place_fails_the_restore_with_its_name(grid, tmp_path):
    src = tmp_path / "docs"
    _small_tree(src, 10)
    await grid.backup(src)
    blocked = tmp_path / "out" / "snap0" / "docs" / "d1" / "f004"
    blocked.mkdir(parents=True)  # a folder where the file must go
    with pytest.raises(StorageError, match=r"Cannot write .*f004"):
        await grid.restore_all(tmp_path / "out")
    leftovers = [n for _, _, ns in os.walk(tmp_path / "out") for n in ns if n.endswith(PARTIAL)]
    assert leftovers == []
