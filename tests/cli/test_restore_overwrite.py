"""``restore --to DIR`` follows the rule of ``--in-place`` (issue 9, item 8): a file in DIR
that is newer than the snapshot's is kept unless --force, and the output says so."""

from __future__ import annotations

import os

import pytest

HOUR = 3600 * 10**9


@pytest.fixture
def grid(paired):
    return paired


def _write(path, data: bytes, mtime_ns: int | None = None) -> None:
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.mark.slow
def test_restore_to_a_folder_keeps_what_the_user_changed_there(grid, tmp_path):
    folder = tmp_path / "Docs"
    folder.mkdir()
    then = 1_700_000_000 * 10**9
    for name in ("edited.txt", "older.txt", "same.txt"):
        _write(folder / name, f"snapshot {name}\n".encode(), then)
    os.symlink("same.txt", folder / "link")
    grid.cli("laptop", "folders", "add", str(folder))
    grid.cli("laptop", "backup")
    target = tmp_path / "out"
    first = grid.cli("laptop", "restore", "latest", "--to", str(target))
    assert first["files"] == 3 and first["kept_newer"] == []

    restored = target / "Docs"
    _write(restored / "edited.txt", b"the user's work\n", then + HOUR)  # newer: kept
    _write(restored / "older.txt", b"an older copy\n", then - HOUR)  # older: restored
    os.unlink(restored / "link")
    os.symlink("elsewhere", restored / "link")  # a link the user made since: newer, kept

    process = grid.command("laptop", "restore", "latest", "--to", str(target))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "kept (newer on disk; --force overwrites): Docs/edited.txt" in out
    assert (restored / "edited.txt").read_bytes() == b"the user's work\n"
    assert (restored / "older.txt").read_bytes() == b"snapshot older.txt\n"
    assert os.readlink(restored / "link") == "elsewhere"
    again = grid.cli("laptop", "restore", "latest", "--to", str(target))
    assert again["kept_newer"] == ["Docs/edited.txt", "Docs/link"]
    assert again["files"] == 0  # same.txt and older.txt already are the snapshot's

    forced = grid.cli("laptop", "restore", "latest", "--to", str(target), "--force")
    assert forced["kept_newer"] == [] and forced["files"] == 3
    assert (restored / "edited.txt").read_bytes() == b"snapshot edited.txt\n"
    assert os.stat(restored / "edited.txt").st_mtime_ns == then
    assert os.readlink(restored / "link") == "same.txt"
