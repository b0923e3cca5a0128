"""``verify`` through the real CLI: its exit status says safe (0), at risk (4) or lost (3),
and it counts each friend's good, damaged and missing shares, naming a wiped pool."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from p2pbackup.cli.backups import _verify_text, verify_exit_code
from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.errors import IntegrityError, PeerError
from tests.daemon.test_cycle import make_tree

FRIENDS = ("alice", "bob", "carol")


def verify(grid: LocalGrid, *args: str) -> tuple[int, str]:
    process = grid.command("laptop", "verify", *args)
    out, _ = process.communicate(timeout=300)
    return process.returncode, out


@pytest.mark.slow
def test_verify_exits_non_zero_when_at_risk_or_lost_and_names_a_wiped_friend(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        made = grid.init_all(["laptop", *FRIENDS])
        grid.cli("laptop", "schedule", "off")
        grid.start("laptop", *FRIENDS)
        grid.pair("laptop", *FRIENDS)
        grid.cli("laptop", "folders", "add", make_tree(tmp_path))
        grid.cli("laptop", "backup")
        code, out = verify(grid, "--json")
        clean = json.loads(out)
        assert code == 0 and clean["at_risk"] == clean["lost"] == 0
        assert all(c["missing"] == c["damaged"] == 0 for c in clean["friends"].values())

        pool = os.path.join(grid.home("bob"), "pool", made["laptop"]["owner_id"])
        shutil.rmtree(pool)  # bob's disk is wiped: every share he kept for me is gone
        code, out = verify(grid, "--json")
        hurt = json.loads(out)
        assert code == PeerError.exit_code == 4  # at risk: still restorable
        assert hurt["lost"] == 0 and hurt["at_risk"] > 0
        assert hurt["emptied"] == ["bob"]
        bob = hurt["friends"]["bob"]
        assert bob["good"] == 0 and bob["missing"] == clean["friends"]["bob"]["good"] > 0
        code, text = verify(grid)  # the same, for people
        assert code == 4 and "bob" in text and "holds none of your shares" in text
        assert f"{bob['missing']} missing" in text

        for name in ("alice", "carol"):
            shutil.rmtree(os.path.join(grid.home(name), "pool", made["laptop"]["owner_id"]))
        code, out = verify(grid, "--json")
        gone = json.loads(out)
        assert code == IntegrityError.exit_code == 3 and gone["lost"] == clean["records"]
        assert gone["emptied"] == sorted(FRIENDS)
        # The exit codes are in the help, where a script's author looks.
        process = grid.command("laptop", "verify", "--help")
        out, _ = process.communicate(timeout=60)
        assert "Exit status" in out and "at risk" in out


def test_the_exit_status_and_the_text_follow_the_report():
    data = {
        "records": 10, "unreachable": [], "repaired": 0, "unproven": 0,
        "friends": {
            "alice": {"good": 10, "damaged": 0, "missing": 0, "unproven": 0},
            "bob": {"good": 0, "damaged": 0, "missing": 7, "unproven": 0},
        },
        "emptied": ["bob"], "at_risk": 0, "lost": 0, "lost_files": [],
        "friends_that_could_disappear": 1, "head_rolled_back": [], "damaged_snapshots": [],
    }  # fmt: skip
    assert verify_exit_code(data) == 0
    assert verify_exit_code({**data, "at_risk": 2}) == 4
    assert verify_exit_code({**data, "at_risk": 2, "lost": 1}) == 3
    text = _verify_text({**data, "lost": 1, "lost_files": ["Documents/bad\udcffname.txt"]})
    assert "bob              0 good, 0 damaged, 7 missing  <- holds none of your shares" in text
    assert "lost: Documents/bad\\xffname.txt" in text
