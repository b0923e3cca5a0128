"""``unfriend`` through the CLI and a running daemon, every node its own OS process:
it sticks on the next command and on a device recovered from the phrase, what the
friend held is safe on the others, and what we kept for them is gone."""

from __future__ import annotations

import os

import pytest

from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.storage.profile import Profile
from tests.daemon.test_cycle import make_tree

FRIENDS = ("alice", "bob", "carol", "dave")


def _names(rows: list) -> set[str]:
    return {r["name"] for r in rows}


@pytest.mark.slow
def test_unfriend_through_the_daemon_sticks_everywhere(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        made = grid.init_all(["laptop", *FRIENDS])
        grid.cli("laptop", "schedule", "off")
        grid.cli("dave", "schedule", "off")
        grid.start("laptop", *FRIENDS)
        grid.pair("laptop", *FRIENDS)
        grid.pair("alice", "dave")
        # dave backs up too (one share each on laptop and alice), so laptop keeps some of his.
        Profile(grid.home("dave")).update_settings(k=1, n=2)
        grid.cli("dave", "folders", "add", make_tree(tmp_path / "dave"))
        grid.cli("dave", "backup")
        daves = {r["name"]: r for r in grid.cli("laptop", "friends")}["dave"]
        assert daves["i_store_for_them"] > 0
        grid.cli("laptop", "folders", "add", make_tree(tmp_path / "laptop"))
        grid.cli("laptop", "backup")

        done = grid.cli("laptop", "unfriend", "dave")
        assert done["freed_bytes"] == daves["i_store_for_them"] and done["published"]
        assert done["not_replaced"] == done["at_risk"] == done["lost"] == 0
        assert not os.path.exists(os.path.join(grid.home("laptop"), "pool", daves["owner_id"]))
        grid.cli("laptop", "snapshots")  # the next command reads the head
        assert _names(grid.cli("laptop", "friends")) == {"alice", "bob", "carol"}
        check = grid.cli("laptop", "verify")
        assert check["at_risk"] == check["lost"] == 0 and set(check["friends"]) == {
            "alice", "bob", "carol"}  # fmt: skip

        grid.init("desktop", recover_phrase=made["laptop"]["recovery_phrase"])
        grid.pair("alice", "desktop")
        grid.cli("desktop", "snapshots")  # learns the others from the head
        assert _names(grid.cli("desktop", "friends")) == {"alice", "bob", "carol"}
