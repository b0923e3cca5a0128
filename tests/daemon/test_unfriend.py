"""``unfriend`` sticks: the head keeps a tombstone, so neither the next job, a device
recovered from the phrase, nor a device that still knew the friend brings them back;
what they held is placed again on the others; what we kept for them is deleted."""

from __future__ import annotations

import os

import pytest

from p2pbackup.cli.demo import same_tree
from p2pbackup.core import erasure
from p2pbackup.daemon.grid import connected
from p2pbackup.storage.store import ShareKey
from tests.daemon.conftest import pair, started
from tests.daemon.test_cycle import make_tree

pytestmark = pytest.mark.trio


async def _dave_stores_a_share_with(nodes, name: str) -> int:
    """dave, a friend, keeps a share of his own on ``name``'s node: its size."""
    dave = nodes.nodes["dave"]
    _, shares = erasure.encode(b"\x07" * 32, os.urandom(50_000), 1, 2)
    async with connected(dave) as grid:
        await grid.online[nodes.nodes[name].keys.owner_id.hex()].put(
            ShareKey(b"\x07" * 32, 0), shares[0]
        )
    return len(shares[0])


def _friends(node) -> set[str]:
    return {f.name for f in node.catalog.friends()}


async def test_unfriend_sticks_on_every_device_and_nothing_is_lost(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", folders=[folder]) as nodes:
        laptop = nodes.nodes["laptop"]
        dave_id = nodes.nodes["dave"].keys.owner_id
        await nodes.run("laptop", "backup")
        kept_for_dave = await _dave_stores_a_share_with(nodes, "laptop")
        assert laptop.pool.used(dave_id) == kept_for_dave
        # A second device, recovered from the phrase before the unfriend, knows dave too.
        desktop = await nodes.start("desktop", secret=nodes.profiles["laptop"].secret())
        await pair(nodes.nodes["alice"], desktop)
        await nodes.run("desktop", "snapshots")
        assert "dave" in _friends(desktop)

        done = await nodes.run("laptop", "unfriend", friend="dave")
        assert done["published"] and done["freed_bytes"] == kept_for_dave
        # Every record had one of its four shares on dave: all placed again on the others.
        assert done["records_checked"] >= 2 and done["replaced"] == done["records_checked"]
        assert done["not_replaced"] == done["at_risk"] == done["lost"] == 0
        assert laptop.pool.used(dave_id) == 0
        pool = nodes.profiles["laptop"].path("pool")
        assert not os.path.exists(os.path.join(pool, dave_id.hex()))
        assert "dave" not in {f["name"] for f in await nodes.run("laptop", "friends")}

        # The next job on this device reads the head: dave stays gone.
        await nodes.run("laptop", "backup")
        assert _friends(laptop) == {"alice", "bob", "carol"}
        check = await nodes.run("laptop", "verify")
        assert check["at_risk"] == check["lost"] == 0 and "dave" not in check["friends"]
        assert set(check["friends"]) == {"alice", "bob", "carol"}
        # The desktop still had dave: its next job drops him; its backup does not revive him.
        await nodes.run("desktop", "snapshots")
        assert _friends(desktop) == {"alice", "bob", "carol"}
        await nodes.stop("desktop")
        await nodes.run("laptop", "snapshots")
        assert "dave" not in _friends(laptop)
        # A device recovered from the phrase now never adopts dave.
        await nodes.stop("laptop")
        new = await nodes.start("new-laptop", secret=nodes.profiles["laptop"].secret())
        await pair(nodes.nodes["alice"], new)
        target = tmp_path / "r"
        await nodes.run("new-laptop", "restore", selector="latest", to=str(target))
        assert same_tree(folder, str(target / "Documents"))
        assert _friends(new) == {"alice", "bob", "carol"}
        # Even with dave stopped, every record restores from the three that remain.
        await nodes.stop("dave")
        check = await nodes.run("new-laptop", "verify", read_data=True)
        assert check["at_risk"] == check["lost"] == 0


async def test_unfriend_says_so_when_the_others_have_no_room(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", friends=("alice", "bob", "carol"),
                       folders=[folder]) as nodes:  # fmt: skip
        await nodes.run("laptop", "backup")
        owner = nodes.nodes["laptop"].keys.owner_id
        for name in ("alice", "bob"):  # full: no room for one more share
            node = nodes.nodes[name]
            node.catalog.set_quota(owner, node.pool.used(owner))
        done = await nodes.run("laptop", "unfriend", friend="carol")
        assert done["published"] and done["not_replaced"] == done["records_checked"] > 0
        assert done["lost"] == 0
        assert "carol" not in _friends(nodes.nodes["laptop"])
