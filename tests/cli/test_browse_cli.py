"""ls, find and log through the real CLI and a running daemon: the CLI fetches every page
of a listing itself, and walks folders page by page with --recursive."""

from __future__ import annotations

import pytest

from p2pbackup.cli.localgrid import LocalGrid
from tests.daemon.test_cycle import edit, make_tree


@pytest.fixture
def grid(paired):
    return paired


def _text(grid: LocalGrid, *args: str) -> str:
    process = grid.command("laptop", *args)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


def test_ls_pages_find_and_log_through_the_daemon(grid, tmp_path):
    folder = make_tree(tmp_path)  # Documents/notes: 32 entries
    grid.cli("laptop", "folders", "add", folder)
    first = grid.cli("laptop", "backup")["snapshot"]
    edit(folder)
    second = grid.cli("laptop", "backup")["snapshot"]

    # Pages of 7: every entry of the folder once, in order (5 pages).
    notes = grid.cli("laptop", "ls", "latest", "Documents/notes", "--limit", "7")
    assert notes["snapshot"] == second and notes["total"] == 31 == len(notes["entries"])
    names = [e["name"] for e in notes["entries"]]
    assert names == sorted(set(names)) and "small-3.txt" not in names  # edit() removed it
    top = grid.cli("laptop", "ls", "latest", "--limit", "1")
    assert [(e["path"], e["children"]) for e in top["entries"]] == [("Documents", 4)]
    # --recursive walks every folder, in path order, two entries a page.
    every = grid.cli("laptop", "ls", "latest", "-R", "--limit", "2")
    paths = [e["path"] for e in every["entries"]]
    assert len(paths) == 36 and paths == sorted(paths) and "Documents/notes/todo.txt" in paths
    text = _text(grid, "ls", "latest", "Documents")
    assert "31 items" in text and "Documents/todo-link -> notes/todo.txt" in text

    found = grid.cli("laptop", "find", "SMALL-2*", first, "--limit", "3")
    assert found["snapshot"] == first and found["total"] == 11
    assert [e["name"] for e in found["entries"]] == ["small-2.txt", *(
        f"small-{i}.txt" for i in range(20, 30))]  # fmt: skip
    assert "nothing" in _text(grid, "find", "no-such-name").lower()

    log = grid.cli("laptop", "log", f"{folder}/photo.raw")
    assert [(v["snapshot"], v["stored"]) for v in log["versions"]] == [
        (first, "full"), (second, "delta")]  # fmt: skip
    assert "delta" in _text(grid, "log", "Documents/photo.raw")
