"""Every friend's pool goes back in time, with real daemons and the real CLI: each friend's
pool folder is restored from a copy taken after snapshot 1 while the owner has snapshot 3."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from p2pbackup.cli.demo import same_tree
from p2pbackup.cli.localgrid import GridError, LocalGrid
from tests.daemon.test_cycle import edit, make_tree

FRIENDS = ("alice", "bob", "carol")


@pytest.fixture
def grid(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.made = grid.init_all(["laptop", *FRIENDS])
        grid.cli("laptop", "schedule", "off")
        grid.start(*FRIENDS)
        yield grid


def restart_on_same_port(grid: LocalGrid, name: str, address: str) -> None:
    """Start ``name``'s daemon again where its friends remember it (mDNS is off here)."""
    port = address.split("/tcp/")[1].split("/")[0]
    process = grid.command(name, "daemon", "--listen", f"/ip4/127.0.0.1/tcp/{port}")
    line = process.stdout.readline()
    if "running" not in line:
        process.kill()
        raise GridError(f"{name}: no daemon: {process.stderr.read().strip()}")
    grid._daemons[name] = process


def pools(grid: LocalGrid) -> dict[str, str]:
    owner = grid.made["laptop"]["owner_id"]
    return {name: os.path.join(grid.home(name), "pool", owner) for name in FRIENDS}


@pytest.mark.slow
def test_every_friend_rolled_back_is_named_and_nothing_is_lost(grid, tmp_path):
    grid.start("laptop")
    grid.pair("laptop", *FRIENDS)
    addresses = {name: grid.address(name) for name in FRIENDS}
    folder = make_tree(tmp_path)
    grid.cli("laptop", "folders", "add", folder)
    first = grid.cli("laptop", "backup")
    shutil.copytree(folder, tmp_path / "expected-1" / "Documents", symlinks=True)
    for name, pool in pools(grid).items():
        shutil.copytree(pool, tmp_path / "copies" / name)
    edit(folder)
    grid.cli("laptop", "backup")
    with open(os.path.join(folder, "notes", "small-7.txt"), "a") as f:
        f.write("and again\n")
    edit(folder)
    grid.cli("laptop", "backup")

    for name, pool in pools(grid).items():  # every friend's disk, back to snapshot 1
        grid.stop(name)
        shutil.rmtree(pool)
        shutil.copytree(tmp_path / "copies" / name, pool)
        restart_on_same_port(grid, name, addresses[name])

    deadline = time.monotonic() + 30  # the daemon reconnects to each, with back-off
    while len(grid.cli("laptop", "status")["friends_online"]) < len(FRIENDS):
        assert time.monotonic() < deadline, "the friends never came back online"
        time.sleep(0.5)
    status = grid.cli("laptop", "status", "--check")  # the daemon looks at friends now
    assert {r["friend"]: (r["seen"], r["known"]) for r in status["head_rolled_back"]} == {
        name: (1, 3) for name in FRIENDS
    }
    assert status["friends_that_could_disappear"] is None  # local placement is not trusted
    # A device recovered from the phrase lists what it can, marks the rest, and restores
    # snapshot 1, every share of which is intact.
    grid.init("phone", recover_phrase=grid.made["laptop"]["recovery_phrase"])
    grid.pair("alice", "phone")
    listed = grid.cli("phone", "snapshots", "--sizes")  # fetches manifests: finds the damage
    assert listed[0]["id"] == first["snapshot"] and len(listed) == 3
    assert [bool(s.get("damaged")) for s in listed] == [False, True, True]
    grid.cli("phone", "restore", first["snapshot"][:12], "--to", str(tmp_path / "p1"))
    process = grid.command("phone", "restore", listed[1]["id"][:12], "--to", str(tmp_path / "x"))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3 and "is damaged" in err  # not "no such snapshot"
    assert same_tree(str(tmp_path / "expected-1"), str(tmp_path / "p1"))

    # verify --repair stores again what files on disk rebuild exactly (the lost manifests
    # from this device's copies too), and names the files whose versions are gone.
    code, check = verify(grid, "--repair")
    assert code == 3 and check["repaired"] > 0 and check["lost"] > 0
    assert {r["friend"] for r in check["head_rolled_back"]} == set(FRIENDS)
    assert {"Documents/photo.raw", "Documents/notes/todo.txt"} <= set(check["lost_files"])
    assert grid.cli("laptop", "status", "--check")["head_rolled_back"] == []  # checked now

    again = grid.cli("laptop", "backup")
    assert again["records_stored"] > 0  # the files whose records were lost, stored anew
    grid.cli("laptop", "restore", "latest", "--to", str(tmp_path / "r"))
    assert same_tree(folder, str(tmp_path / "r" / "Documents"))
    listed = grid.cli("phone", "snapshots", "--sizes")
    assert len(listed) == 4 and not any(s.get("damaged") for s in listed)
    grid.cli("phone", "restore", "latest@laptop", "--to", str(tmp_path / "p4"))
    assert same_tree(folder, str(tmp_path / "p4" / "Documents"))
    grid.cli("phone", "restore", first["snapshot"][:12], "--to", str(tmp_path / "p1b"))
    assert same_tree(str(tmp_path / "expected-1"), str(tmp_path / "p1b"))


def verify(grid: LocalGrid, *args: str) -> tuple[int, dict]:
    process = grid.command("laptop", "verify", *args, "--json")
    out, _ = process.communicate(timeout=300)
    return process.returncode, json.loads(out.strip().splitlines()[-1])
