"""File names that are not UTF-8: backed up as their bytes, restored byte for byte, and
no name stops a backup (issue 9, item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from p2pbackup.engine import scanner
from p2pbackup.engine.events import FileSkipped
from p2pbackup.engine.state import BackupState
from p2pbackup.storage.statedb import StateDB
from tests.engine.conftest import Grid


def make_byte_tree(top: bytes) -> bytes:
    """A folder whose names are bytes no UTF-8 decoder accepts, and one legacy Latin-1 name."""
    folder = os.path.join(top, b"Docs")
    os.makedirs(os.path.join(folder, b"dir\xfe"))
    for name, data in (
        (b"bad\xffname.txt", b"bytes of a bad name\n"),
        (b"caf\xe9.txt", b"Latin-1\n"),  # valid Latin-1, not UTF-8
        (b"ok.txt", b"fine\n"),
        (b"dir\xfe/inner\x80.bin", os.urandom(70_000)),  # a file with a task of its own
    ):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    os.symlink(b"bad\xffname.txt", os.path.join(folder, b"link\xc3"))
    return folder


def tree_of(top: bytes) -> dict[bytes, bytes]:
    """Every name under ``top`` (as bytes) -> its bytes, or its link target."""
    found = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, top)
            if os.path.islink(path):
                found[relative] = b"-> " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    found[relative] = f.read()
            else:
                found[relative] = b"<dir>"
    return found


@pytest.mark.trio
@pytest.mark.parametrize("on_disk", [False, True], ids=["memory-state", "state.sqlite"])
async def test_names_that_are_not_utf8_are_backed_up_and_restored_byte_exact(tmp_path, on_disk):
    top = os.fsencode(tmp_path)
    folder = make_byte_tree(top)
    grid = Grid()
    if on_disk:
        grid.state = BackupState(StateDB(str(tmp_path / "state.sqlite")))
        grid.state.load_files()
    report = await grid.backup(os.fsdecode(folder))
    assert report.skipped == [] and report.files == 4
    assert "Docs/bad\udcffname.txt" in {e.path for e in report.manifest.entries}
    await grid.restore_all(tmp_path / "out")
    assert tree_of(os.path.join(top, b"out", b"snap0", b"Docs")) == tree_of(folder)
    if on_disk:  # the file index found each file again by its name's bytes, after a reopen
        grid.state = BackupState(StateDB(str(tmp_path / "state.sqlite")))
        grid.state.load_files()
    again = await grid.backup(os.fsdecode(folder))
    assert again.changed == 0 and again.skipped == []


@pytest.mark.trio
async def test_a_name_no_snapshot_can_hold_is_skipped_and_the_backup_goes_on(tmp_path, monkeypatch):
    # No Linux name is longer than 32 KiB; a small limit stands in for one that is.
    monkeypatch.setattr(scanner, "MAX_NAME_BYTES", 24)
    folder = tmp_path / "Docs"
    folder.mkdir()
    (folder / "short.txt").write_bytes(b"kept")
    (folder / ("long-\xe9-" + "x" * 20)).write_bytes(b"too long a name")
    grid = Grid()
    report = await grid.backup(folder)
    assert [e.path for e in report.manifest.entries] == ["Docs", "Docs/short.txt"]
    (skipped,) = [e for e in grid.events if isinstance(e, FileSkipped)]
    assert skipped.path.startswith("Docs/long-") and "longer than 24 bytes" in skipped.reason
    assert report.skipped == [skipped]


_ASCII_LOCALE_SCRIPT = textwrap.dedent(
    """
    import os, sys, trio
    assert sys.getfilesystemencoding() == "ascii", sys.getfilesystemencoding()
    from tests.engine.conftest import Grid

    async def main(top):
        os.makedirs(os.path.join(top, b"Caf\\xc3\\xa9"))
        with open(os.path.join(top, b"Caf\\xc3\\xa9", b"na\\xc3\\xafve\\xff.txt"), "wb") as f:
            f.write(b"data")
        with open(os.path.join(top, b"Caf\\xc3\\xa9", b"skip-\\xc3\\xa9.tmp"), "wb") as f:
            f.write(b"excluded")
        grid = Grid()
        folder = os.fsdecode(os.path.join(top, b"Caf\\xc3\\xa9"))
        report = await grid.backup(folder, excludes=[os.fsdecode(b"*\\xc3\\xa9.tmp")])
        print(sorted(e.path for e in report.manifest.entries))
        await grid.restore_all(__import__("pathlib").Path(os.fsdecode(top)) / "out")
        print(os.listdir(os.path.join(top, b"out", b"snap0", b"Caf\\xc3\\xa9")))

    trio.run(main, os.fsencode(sys.argv[1]))
    """
)


def test_names_keep_their_bytes_under_an_ascii_locale(tmp_path):
    """With LC_ALL=C and no UTF-8 mode Python decodes names as ASCII ("é" arrives as two
    escaped bytes); the snapshot still holds the UTF-8 name, an exclude pattern typed there
    still matches, and restore writes the name's bytes."""
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [sys.executable, "-c", _ASCII_LOCALE_SCRIPT, str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=60, cwd=os.getcwd(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    paths, restored = done.stdout.splitlines()
    assert paths == str(["Café", "Café/naïve\udcff.txt"])  # the snapshot's names
    assert restored == str([b"na\xc3\xafve\xff.txt"])
