"""Two devices of one owner through the CLI, every node its own OS process: the second
is recovered from the phrase; `latest` and `forget` go by the device."""

from __future__ import annotations

import pytest

from p2pbackup.cli.localgrid import LocalGrid

FRIENDS = ("alice", "bob", "carol")


def _folder(root, name: str) -> str:
    top = root / name
    top.mkdir(parents=True)
    (top / f"{name.lower()}.txt").write_text(f"{name}\n")
    return str(top)


def _two_backups(grid, name: str, folder: str) -> list[str]:
    """Two snapshots: the file changes in between (an unchanged tree makes none)."""
    first = grid.cli(name, "backup")["snapshot"]
    with open(f"{folder}/{folder.rsplit('/', 1)[-1].lower()}.txt", "a") as f:
        f.write("more\n")
    return [first, grid.cli(name, "backup")["snapshot"]]


@pytest.mark.slow
def test_a_recovered_second_device_keeps_its_own_latest_and_retention(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        made = grid.init_all(["laptop", *FRIENDS])
        grid.start("laptop", *FRIENDS)  # one node per profile: the daemon makes every invite
        grid.pair("laptop", *FRIENDS)
        docs = _folder(tmp_path, "Documents")
        grid.cli("laptop", "folders", "add", docs)
        laptop = _two_backups(grid, "laptop", docs)
        grid.init("desktop", recover_phrase=made["laptop"]["recovery_phrase"])
        grid.pair("alice", "desktop")
        music = _folder(tmp_path, "Music")
        grid.cli("desktop", "folders", "add", music)
        desktop = _two_backups(grid, "desktop", music)

        snaps = grid.cli("laptop", "snapshots")
        assert [(s["id"], s["device"]) for s in snaps] == [
            *((sid, "laptop") for sid in laptop), *((sid, "desktop") for sid in desktop)]
        assert grid.cli("desktop", "ls", "latest")["snapshot"] == desktop[-1]
        assert grid.cli("laptop", "ls", "latest")["snapshot"] == laptop[-1]
        assert grid.cli("desktop", "ls", "latest@laptop")["snapshot"] == laptop[-1]
        plan = grid.cli("laptop", "forget", "--keep-last", "1", "--dry-run")
        assert plan["forgotten"] == [laptop[0]] and plan["other_devices_kept"] == 2
        done = grid.cli("desktop", "forget", "--keep-last", "1", "--prune")
        assert done["forgotten"] == [desktop[0]]
        assert [s["id"] for s in grid.cli("laptop", "snapshots")] == [*laptop, desktop[1]]
        grid.cli("laptop", "restore", laptop[0], "--to", str(tmp_path / "r"))
        assert (tmp_path / "r" / "Documents" / "documents.txt").read_text() == "Documents\n"
        text = grid.command("desktop", "snapshots").communicate(timeout=120)[0]
        assert "laptop" in text and "desktop" in text
