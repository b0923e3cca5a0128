"""Backups through the CLI, every node and command its own OS process."""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import signal
import sqlite3
import time

import pytest

from p2pbackup.cli.demo import same_tree
from p2pbackup.cli.localgrid import LocalGrid
from tests.daemon.test_cycle import edit, make_tree

FRIENDS = ("alice", "bob", "carol")


@pytest.fixture
def grid(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.made = grid.init_all(["laptop", *FRIENDS])
        grid.cli("laptop", "schedule", "off")
        grid.start(*FRIENDS)
        yield grid


def test_full_cycle_through_the_daemon(grid, tmp_path):
    grid.start("laptop")
    grid.pair("laptop", *FRIENDS)
    folder = make_tree(tmp_path)
    grid.cli("laptop", "folders", "add", folder)
    first = grid.cli("laptop", "backup")
    shutil.copytree(folder, tmp_path / "expected-1" / "Documents", symlinks=True)
    edit(folder)
    second = grid.cli("laptop", "backup")
    assert second["changed"] == 2 and first["snapshot"] != second["snapshot"]
    again = grid.command("laptop", "backup").communicate(timeout=60)[0]  # nothing changed
    assert again.startswith(f"Nothing changed since snapshot {second['snapshot'][:12]}")
    grid.stop("bob")
    status = grid.cli("laptop", "status")  # bob is away: named, with when he was last seen
    assert [(f["name"], bool(f["last_seen"])) for f in status["offline"]] == [("bob", True)]
    snaps = grid.cli("laptop", "snapshots")
    assert [s["id"] for s in snaps] == [first["snapshot"], second["snapshot"]]
    assert {"id", "time", "files", "bytes", "device", "roots"} <= set(snaps[0])
    grid.cli("laptop", "restore", first["snapshot"][:7], "--to", str(tmp_path / "r1"))
    grid.cli("laptop", "restore", "latest", "--to", str(tmp_path / "r2"))
    assert same_tree(str(tmp_path / "expected-1"), str(tmp_path / "r1"))
    assert same_tree(folder, str(tmp_path / "r2" / "Documents"))
    # Options and paths mix, and a path on disk names the file in the snapshot.
    process = grid.command("laptop", "restore", "latest", "--to", str(tmp_path / "r3"),
                           os.path.join(folder, "notes", "todo.txt"), "Documents/photo.raw")
    out, err = process.communicate(timeout=60)  # fmt: skip
    assert process.returncode == 0, err
    assert out.startswith("Restored 2 files, ")
    assert sorted(p.name for p in (tmp_path / "r3" / "Documents").rglob("*.*")) == [
        "photo.raw", "todo.txt"
    ]
    outside = grid.command("laptop", "ls", "latest", str(tmp_path))
    _, err = outside.communicate(timeout=60)
    assert outside.returncode == 2 and "start with the folder's name" in err
    status = grid.cli("laptop", "status")
    assert status["friends_online"] == ["alice", "carol"] and status["snapshots"] == 2
    # Shell completion offers the daemon's snapshots and the friends' names.
    words = grid.command("laptop", "__complete", "snapshots").communicate(timeout=60)[0]
    assert words.split() == ["latest", "latest@laptop", first["snapshot"], second["snapshot"]]
    words = grid.command("laptop", "__complete", "friends").communicate(timeout=60)[0]
    assert words.split() == list(FRIENDS)
    # A quota lowered below what a friend already keeps here says what that means.
    lowered = grid.command("alice", "quota", "laptop", "1K").communicate(timeout=60)[0]
    assert "WARNING: you already keep" in lowered and "Nothing is deleted" in lowered
    # Every node logged, and no log holds a secret: the phrase, or the key it encodes.
    for name in ("laptop", *FRIENDS):
        logs = pathlib.Path(grid.home(name), "logs")
        text = "".join(p.read_text() for p in logs.iterdir())
        assert "control: backup" in text or name != "laptop"
        secret = pathlib.Path(grid.home(name), "secret.key").read_bytes().hex()
        assert grid.made[name]["recovery_phrase"] not in text and secret not in text
        # A wrong snapshot id is a one-line error and a non-zero exit.
    process = grid.command("laptop", "restore", "ffffffff", "--to", str(tmp_path / "x"))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and err.count("\n") == 1 and "ffffffff" in err


def _landed(home: str) -> int:
    db = sqlite3.connect(os.path.join(home, "state.sqlite"))
    try:
        return db.execute("SELECT count(*) FROM records").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        db.close()


def test_a_backup_killed_at_random_moments_resumes_without_resending(grid, tmp_path):
    grid.start("laptop")
    grid.pair("laptop", *FRIENDS)
    grid.stop("laptop")  # from now on the backup runs in the CLI process, which is killed
    folder = tmp_path / "Big"
    folder.mkdir()
    rng = random.Random(3)
    for i in range(8):  # each file is a record of its own
        (folder / f"part-{i}.bin").write_bytes(rng.randbytes(2_500_000))
    grid.cli("laptop", "folders", "add", str(folder))
    home = grid.home("laptop")
    kills = 0
    for _ in range(3):
        landed = _landed(home)
        process = grid.command("laptop", "backup", "--json")
        while _landed(home) <= landed and process.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.1))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=60)
    before = _landed(home)
    assert kills >= 1 and before >= 1
    # A run killed before publishing leaves no snapshot; whatever is listed is whole
    # (verify --read-data below checks every record of every listed snapshot).
    assert len(grid.cli("laptop", "snapshots")) <= 3
    final = grid.cli("laptop", "backup")
    # Every record it stored is new: what landed before the kills was not sent again.
    assert final["records_stored"] == _landed(home) - before
    grid.cli("laptop", "restore", "latest", "--to", str(tmp_path / "r"))
    assert same_tree(str(folder), str(tmp_path / "r" / "Big"))
    check = grid.cli("laptop", "verify", "--read-data")
    assert check["lost"] == 0 and check["at_risk"] == 0


def test_ctrl_c_on_a_backup_the_daemon_runs_says_it_goes_on(grid, tmp_path):
    grid.start("laptop")
    grid.pair("laptop", "alice", "bob")
    folder = tmp_path / "Documents"
    folder.mkdir()
    (folder / "big.bin").write_bytes(random.Random(3).randbytes(2_000_000))
    grid.cli("laptop", "folders", "add", str(folder))
    grid.cli("laptop", "limit", "100K")  # 4 MB of shares at 100 KB/s: it is still running
    backup = grid.command("laptop", "backup")
    logs = pathlib.Path(grid.home("laptop"), "logs")
    deadline = time.monotonic() + 60
    while "control: backup" not in "".join(p.read_text() for p in logs.iterdir()):
        assert time.monotonic() < deadline, "the daemon never got the backup"
        time.sleep(0.05)
    # Running, as the jobs list says: by then the client has its job id to name.
    while not any(j["name"] == "backup" and j["state"] == "running"
                  for j in grid.cli("laptop", "jobs")):  # fmt: skip
        assert time.monotonic() < deadline, "the backup never ran"
        time.sleep(0.05)
    backup.send_signal(signal.SIGINT)
    _, err = backup.communicate(timeout=60)
    assert backup.returncode == 130
    assert "Traceback" not in err
    assert "the daemon goes on with this backup" in err and "p2pbackup cancel " in err
    assert err.strip().splitlines()[-1] == "p2pbackup: interrupted"
