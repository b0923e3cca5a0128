"""Users see how each friend is reached: "direct", "through ... relay", or "unreachable
since ..." (friends), and the path of each friend online (status)."""

from __future__ import annotations

import pytest

from p2pbackup.cli.backups import _status_text
from tests.daemon.conftest import started


@pytest.mark.trio
async def test_friends_and_status_say_how_each_friend_is_reached(tmp_path):
    async with started(tmp_path, friends=("alice", "bob")) as nodes:
        rows = {r["name"]: r for r in await nodes.run("laptop", "friends")}
        assert rows["alice"]["path"] == "direct" and rows["alice"]["reached"] == "direct"
        status = await nodes.run("laptop", "status")
        assert status["paths"] == {"alice": "direct", "bob": "direct"}
        await nodes.stop("bob")
        rows = {r["name"]: r for r in await nodes.run("laptop", "friends")}
        assert rows["bob"]["path"] is None
        assert rows["bob"]["reached"].startswith("unreachable since ")


def test_status_text_names_the_path_and_the_rendezvous_standing():
    data = {
        "friends_online": ["alice", "bob"], "friends": 2, "paths": {"alice": "direct",
        "bob": "relay"}, "folders": [], "last_backup": None, "snapshots": 0,
        "protected_files": 0, "protected_bytes": 0, "friends_that_could_disappear": None,
        "schedule": None, "rendezvous": {"point": "/ip4/192.0.2.10/tcp/4001/p2p/x",
        "registered": True, "reserved": False, "since": None,
        "last_error": "The relay refused a reservation: it has no free slot."},
    }  # fmt: skip
    text = _status_text(data)
    assert "(alice: direct, bob: through the relay)" in text
    assert "rendezvous       not reachable through it: The relay refused a reservation" in text
