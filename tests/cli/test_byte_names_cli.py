"""A file name that is not UTF-8, through the real CLI and real nodes (issue 9, item 6):
backed up, listed escaped, restored byte for byte, with a daemon and without one."""

from __future__ import annotations

import base64
import json
import os

import pytest

from p2pbackup.cli.localgrid import LocalGrid
from tests.engine.test_byte_names import make_byte_tree, tree_of

BAD = b"Docs/bad\xffname.txt"


@pytest.fixture
def grid(paired):
    return paired


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _run(grid, *args) -> bytes:
    process = grid.command("laptop", *args)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out.encode("utf-8")  # the grid reads text: it was strict UTF-8 to get here


@pytest.mark.slow
@pytest.mark.parametrize("daemon", [True, False], ids=["daemon", "no-daemon"])
def test_a_name_that_is_not_utf8_through_the_cli(grid, tmp_path, daemon):
    if not daemon:
        grid.stop("laptop")  # each command runs the node in its own process
    folder = make_byte_tree(os.fsencode(tmp_path))
    grid.cli("laptop", "folders", "add", os.fsdecode(folder))
    backup = grid.cli("laptop", "backup")
    assert backup["skipped"] == [] and backup["files"] == 4
    grid.cli("laptop", "restore", "latest", "--to", str(tmp_path / "all"))
    assert tree_of(os.fsencode(tmp_path / "all" / "Docs")) == tree_of(folder)

    # --json: strict JSON (no lone surrogate), each name exact through its _b64 twin
    listing = json.loads(_run(grid, "ls", "latest", "-R", "--json"))
    assert all(isinstance(s.encode("utf-8"), bytes) for s in _strings(listing))  # raises if not
    exact = {
        base64.b64decode(e["path_b64"]) if "path_b64" in e else e["path"].encode()
        for e in listing["entries"]
    }
    assert BAD in exact and b"Docs/dir\xfe/inner\x80.bin" in exact and b"Docs/ok.txt" in exact
    (link,) = [e for e in listing["entries"] if e["type"] == "symlink"]
    assert base64.b64decode(link["target_b64"]) == b"bad\xffname.txt"
    # text: escaped, one line per name
    text = _run(grid, "ls", "latest", "--recursive").decode()
    assert "Docs/bad\\xffname.txt" in text and "-> bad\\xffname.txt" in text

    # one file, named by its bytes on the command line
    grid.cli("laptop", "restore", "latest", os.fsdecode(BAD), "--to", str(tmp_path / "one"))
    with open(os.path.join(os.fsencode(tmp_path), b"one", BAD), "rb") as f:
        assert f.read() == b"bytes of a bad name\n"
    assert os.listdir(os.fsencode(tmp_path / "one" / "Docs")) == [b"bad\xffname.txt"]


def test_a_folder_whose_name_is_not_utf8_is_listed_escaped(tmp_path):
    folder = os.path.join(os.fsencode(tmp_path), b"M\xfcsic")  # Latin-1, as an old disk has it
    os.mkdir(folder)
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.init("laptop")
        added = grid.cli("laptop", "folders", "add", os.fsdecode(folder))
        assert [base64.b64decode(b) for b in added["folders_b64"]] == [folder]
        assert added["folders"] == [os.fsdecode(folder).replace("\udcfc", "\\xfc")]
        assert _run(grid, "folders").decode().strip().endswith("/M\\xfcsic")
        assert "/M\\xfcsic" in _run(grid, "status").decode()
