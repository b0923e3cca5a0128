"""The settings commands are the daemon's settings jobs: the same answers with a daemon
(which then writes the profile alone) and without one; what they change, the next
command sees."""

from __future__ import annotations

from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.storage.profile import Profile
from tests.daemon.test_cycle import make_tree

RUN_STATE = ("daemon", "next_run", "last_error")  # what only a running daemon knows


def _answers(grid: LocalGrid, docs: str) -> list:
    commands = [("folders", "add", docs), ("limit", "2M"), ("pause",)]
    out = [grid.cli("laptop", *command) for command in commands]
    for answer in out:
        for key in RUN_STATE:
            answer.pop(key, None)
    failed = grid.command("laptop", "folders", "add", "/no/such/folder")
    return [*out, failed.communicate(timeout=60)[1], failed.returncode]


def test_the_same_answers_with_and_without_a_daemon(tmp_path):
    docs = make_tree(tmp_path)
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.init("laptop")
        alone = _answers(grid, docs)
        grid.cli("laptop", "folders", "remove", docs)
        grid.start("laptop")
        assert grid.cli("laptop", "resume")["daemon"] is True  # the daemon answered
        assert _answers(grid, docs) == alone
    assert alone[0]["folders"] == [docs] and alone[1] == {"bandwidth": 2 << 20}
    assert alone[2]["paused"] is True and alone[-2].strip() == (
        "p2pbackup: /no/such/folder is not a folder.") and alone[-1] == 2  # fmt: skip


def test_through_the_daemon_the_next_command_sees_each_change(paired, tmp_path):
    grid = paired
    docs = make_tree(tmp_path)
    added = grid.cli("laptop", "folders", "add", docs)
    assert added["folders"] == [docs]
    done = grid.cli("laptop", "backup")  # the daemon backs up the folder it was just given
    assert done["files"] > 30 and Profile(grid.home("laptop")).settings()["folders"] == [docs]

    assert grid.cli("laptop", "quota", "alice", "1G")["i_give"] == 1 << 30
    renamed = grid.cli("laptop", "rename", "bob", "Bobby")
    assert (renamed["old_name"], renamed["name"]) == ("bob", "Bobby")
    rows = {r["name"]: r for r in grid.cli("laptop", "friends")}
    assert set(rows) == {"alice", "Bobby", "carol"} and rows["alice"]["i_give"] == 1 << 30


def test_stop_stops_the_daemon_and_says_so_when_none_runs(tmp_path):
    with LocalGrid(str(tmp_path)) as grid:
        grid.init("laptop")
        grid.start("laptop")
        assert grid.cli("laptop", "stop") == {"stopping": True}
        daemon = grid._daemons.pop("laptop")
        assert daemon.wait(timeout=10) == 0  # a clean stop: the profile's lock let go
        again = grid.command("laptop", "stop")
        _, err = again.communicate(timeout=60)
        assert again.returncode == 2 and "No daemon runs on this profile" in err
