"""Users see how each friend is reached: "direct", "through ... relay", or "unreachable
since ..." (friends), and the path of each friend online (status)."""

from __future__ import annotations

import pytest

from p2pbackup.cli.backups import _status_text
from p2pbackup.net.host import NodeIdentity
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


@pytest.mark.trio
async def test_status_with_a_friend_never_seen_online(tmp_path):
    """status computed datetime.fromtimestamp(None) for a friend never seen: a TypeError
    that stopped the daemon at its first status check."""
    async with started(tmp_path, friends=("alice",)) as nodes:
        ghost = NodeIdentity.from_seed(b"g" * 32).peer_id.to_base58()
        catalog = nodes.nodes["laptop"].catalog
        catalog.add_friend(b"\x01" * 32, "ghost", ghost, ["/ip4/127.0.0.1/tcp/9"], b"", 1 << 20, 0)
        status = await nodes.run("laptop", "status")
        assert {"name": "ghost", "last_seen": None} in status["offline"]
