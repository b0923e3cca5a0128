"""Every friend's pool folder goes back in time under running nodes: the jobs name it,
`snapshots` lists what it can, and verify --repair stores again what files rebuild."""

from __future__ import annotations

import os
import shutil

import pytest

from p2pbackup.cli.demo import same_tree
from p2pbackup.engine import events as ev
from tests.daemon.conftest import pair, started
from tests.daemon.test_cycle import make_tree

pytestmark = pytest.mark.trio
FRIENDS = ("alice", "bob", "carol")


async def test_a_rollback_is_named_by_the_jobs_and_repaired_from_the_files(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", friends=FRIENDS, folders=[folder]) as nodes:
        first = await nodes.run("laptop", "backup")
        shutil.copytree(folder, tmp_path / "expected-1" / "Documents", symlinks=True)
        owner = nodes.nodes["laptop"].keys.owner_id.hex()
        pools = {name: os.path.join(nodes.profiles[name].path("pool"), owner) for name in FRIENDS}
        for name, pool in pools.items():
            shutil.copytree(pool, tmp_path / "copies" / name)
        (tmp_path / "Documents" / "notes" / "small-7.txt").write_text("changed once\n")
        await nodes.run("laptop", "backup")
        (tmp_path / "Documents" / "notes" / "small-7.txt").write_text("changed twice\n")
        await nodes.run("laptop", "backup")
        for name, pool in pools.items():
            shutil.rmtree(pool)
            shutil.copytree(tmp_path / "copies" / name, pool)

        seen: list[ev.Event] = []
        status = await nodes.run("laptop", "status", seen.append)
        assert {r["friend"] for r in status["head_rolled_back"]} == set(FRIENDS)
        assert {(e.seen, e.known) for e in seen if isinstance(e, ev.HeadRolledBack)} == {(1, 3)}

        # A device recovered from the phrase: snapshots 2 and 3 are listed as damaged (their
        # manifests are gone from friends), snapshot 1 restores.
        secret = nodes.profiles["laptop"].secret()
        phone = await nodes.start("phone", secret=secret)
        await pair(nodes.nodes["alice"], phone)
        listed = await nodes.run("phone", "snapshots")  # the head's list: nothing fetched
        assert len(listed) == 3 and [s["files"] for s in listed] == [None, None, None]
        listed = await nodes.run("phone", "snapshots", sizes=True)
        assert [bool(s.get("damaged")) for s in listed] == [False, True, True]
        await nodes.run("phone", "restore", selector=first["snapshot"], to=str(tmp_path / "p1"))
        assert same_tree(str(tmp_path / "expected-1"), str(tmp_path / "p1"))

        check = await nodes.run("laptop", "verify", repair=True)
        assert check["repaired"] > 0 and {r["friend"] for r in check["head_rolled_back"]} == set(
            FRIENDS
        )
        # small-7's second version is gone from disk for good; the rest is whole again.
        assert check["lost_files"] == ["Documents/notes/small-7.txt"]
        assert (await nodes.run("laptop", "status"))["head_rolled_back"] == []
        listed = await nodes.run("phone", "snapshots", sizes=True)
        assert len(listed) == 3 and not any(s.get("damaged") for s in listed)
        await nodes.run("phone", "restore", selector="latest", to=str(tmp_path / "p3"))
        assert same_tree(folder, str(tmp_path / "p3" / "Documents"))
