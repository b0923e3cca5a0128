"""Settings jobs through a running daemon: what one changes the next job sees, bad input
changes nothing, unfriend keeps the daemon's own accounting right, shutdown stops it."""

from __future__ import annotations

import contextlib
import math
import os

import pytest
import trio

from p2pbackup.core import erasure
from p2pbackup.daemon import control
from p2pbackup.daemon.daemon import run_daemon
from p2pbackup.daemon.grid import connected
from p2pbackup.engine import events as ev
from p2pbackup.errors import ConfigError
from p2pbackup.storage.store import ShareKey
from tests.daemon.conftest import LOOPBACK, Nodes, make_profile, pair
from tests.daemon.test_cycle import make_tree

pytestmark = pytest.mark.trio


@contextlib.asynccontextmanager
async def _running(profile):
    """The profile's real daemon, as ``p2pbackup daemon`` runs it; its control address."""
    async with trio.open_nursery() as nursery:
        await nursery.start(run_daemon, profile, LOOPBACK)
        yield control.address(profile.home)
        nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _owner_daemon(root, friends=("alice", "bob"), **settings):
    """The laptop's real daemon, paired with friends' nodes; (nodes, the daemon's node,
    ask: a job through its control socket)."""
    async with trio.open_nursery() as nursery:
        nodes = Nodes(root, nursery)
        profile = make_profile(root, "laptop", schedule=0, **settings)
        laptop = await nursery.start(run_daemon, profile, LOOPBACK)

        async def ask(job, **params):
            return await control.call(control.address(profile.home), job, params, ev.ignore)

        for name in friends:
            await pair(laptop, await nodes.start(name))
        yield nodes, laptop, ask
        await nodes.close()
        nursery.cancel_scope.cancel()


async def test_each_setting_changed_through_the_daemon_is_seen_by_the_next_job(tmp_path):
    profile = make_profile(tmp_path, "laptop", schedule=0)
    folder = make_tree(tmp_path)
    async with _running(profile) as where:
        seen: list = []

        async def ask(job, **params):
            return await control.call(where, job, params, seen.append)

        assert (await ask("folders", add=folder))["folders"] == [folder]
        assert (await ask("excludes", add="*.raw"))["excludes"] == ["*.raw"]
        assert (await ask("bandwidth", limit="2M"))["bandwidth"] == 2 << 20
        schedule = await ask("schedule", interval=1800)
        assert schedule["interval"] == 1800 and schedule["daemon"] is True
        assert schedule["next_run"] is not None  # the daemon's scheduler took it at once
        assert (await ask("pause"))["paused"] is True
        assert (await ask("status"))["schedule"]["next_run"] is None  # paused: none due
        everything = await ask("settings")
        assert everything["folders"] == [folder] and everything["excludes"] == ["*.raw"]
        assert everything["bandwidth"] == 2 << 20 and everything["schedule"]["paused"]
        assert (await ask("resume"))["paused"] is False
        assert (await ask("folders", remove=folder))["folders"] == []
        assert {e.setting for e in seen if isinstance(e, ev.SettingsChanged)} == {
            "folders", "excludes", "bandwidth", "schedule"}  # fmt: skip
    # The daemon wrote them to the profile: a daemon started next reads the same.
    settings = profile.settings()
    assert settings["excludes"] == ["*.raw"] and settings["bandwidth"] == 2 << 20
    assert settings["schedule"] == 1800 and settings["paused"] is False


def _bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


BAD = [
    ("folders", {"add": "relative/path"}, "full path"),
    ("folders", {"add": "/no/such/folder"}, "is not a folder"),
    ("folders", {"remove": "/not/backed/up"}, "is not backed up"),
    ("folders", {"add": "/tmp", "remove": "/tmp"}, "not both"),
    ("folders", {"path": "/tmp"}, "Bad parameters for folders"),
    ("excludes", {"add": ""}, "as text"),
    ("excludes", {"remove": "*.never"}, "is not excluded"),
    ("schedule", {"interval": -60}, "positive number"),
    ("schedule", {"interval": math.inf}, "positive number"),
    ("schedule", {"interval": "1h"}, "number of seconds"),
    ("bandwidth", {"limit": "12Q"}, "size"),
    ("bandwidth", {"limit": -1}, "cannot be negative"),
    ("quota", {"friend": "nobody", "size": "1G"}, "No friend matches 'nobody'"),
    ("quota", {"friend": "alice", "size": "lots"}, "size"),
    ("rename", {"friend": "alice", "name": "bob"}, "Another friend is called 'bob'"),
    ("rename", {"friend": "alice", "name": "a\nb"}, "printable"),
    ("rename", {"friend": "zed", "name": "x"}, "No friend matches 'zed'"),
    ("unfriend", {"friend": "nobody"}, "No friend matches"),
    ("unfriend", {"friend": "alice", "dry_run": "yes"}, "true or false"),
    ("shutdown", {"now": True}, "Bad parameters for shutdown"),
    ("confirm_phrase", {"words": {"1": "abandon"}}, "at least 3 words"),
    ("create_identity", {}, "already exists"),
]


async def test_bad_input_gets_a_clear_error_and_changes_nothing(tmp_path):
    async with _owner_daemon(tmp_path, folders=[str(tmp_path)], excludes=["*.tmp"]) as (
        _, laptop, ask,
    ):  # fmt: skip
        before = (_bytes(laptop.profile.path("settings.json")), laptop.catalog.friends())
        for job, params, says in BAD:
            with pytest.raises(ConfigError) as raised:
                await ask(job, **params)
            assert says in raised.value.message, (job, params)
            after = (_bytes(laptop.profile.path("settings.json")), laptop.catalog.friends())
            assert after == before, (job, params)


async def test_a_quota_changed_through_the_daemon_is_what_the_friend_is_told(tmp_path):
    async with _owner_daemon(tmp_path) as (nodes, _, ask):
        done = await ask("quota", friend="alice", size="3M")
        assert done["i_give"] == 3 << 20 and done["name"] == "alice"
        # alice asks the laptop's node (STAT): its storage service answers from the catalog
        # the daemon changed, with nothing to restart.
        rows = {r["name"]: r for r in await nodes.run("alice", "friends")}
        assert rows["laptop"]["they_give"] == 3 << 20
        renamed = await ask("rename", friend="alice", name="Alice B.")
        assert renamed["old_name"] == "alice" and renamed["name"] == "Alice B."
        assert {r["name"] for r in await ask("friends")} == {"Alice B.", "bob"}
        assert (await ask("settings"))["friends"][0]["i_give"] == 3 << 20


async def _stores_a_share(friend, owner) -> int:
    """``friend`` keeps a share of their own on ``owner``'s node: its size."""
    _, shares = erasure.encode(b"\x07" * 32, os.urandom(50_000), 1, 2)
    async with connected(friend) as grid:
        await grid.online[owner.keys.owner_id.hex()].put(ShareKey(b"\x07" * 32, 0), shares[0])
    return len(shares[0])


async def test_unfriend_while_the_daemon_runs_leaves_its_accounting_right(tmp_path):
    folder = make_tree(tmp_path)
    async with _owner_daemon(tmp_path / "nodes", ("alice", "bob", "carol", "dave"),
                             folders=[folder]) as (nodes, laptop, ask):  # fmt: skip
        await ask("backup")
        dave, alice_id = nodes.nodes["dave"], nodes.nodes["alice"].keys.owner_id
        kept = await _stores_a_share(dave, laptop)
        alices = laptop.pool.used(alice_id)

        preview = await ask("unfriend", friend="dave", dry_run=True)
        assert preview["dry_run"] and preview["friends_left"] == 3
        # Four shares on four friends, k=2: without dave, three hold four shares.
        assert preview["latest_survives_losing"] == 1 and preview["latest_records_short"] == 0
        assert laptop.pool.used(dave.keys.owner_id) == kept  # a preview changes nothing
        assert laptop.catalog.quota_for(dave.keys.owner_id)

        done = await ask("unfriend", friend="dave")
        assert done["freed_bytes"] == kept and done["friends_left"] == 3
        # After the repair, still 1 (verify --repair's placement once kept only the shares
        # it placed again, and this said 0).
        assert done["latest_survives_losing"] == 1
        # What status tells without friends was worked out again (was 2, before dave left).
        assert (await ask("status", cached=True))["friends_that_could_disappear"] == 1
        # The daemon's own pool dropped him: its usage and what its service answers agree.
        assert laptop.pool.used(dave.keys.owner_id) == 0
        assert laptop.pool.used(alice_id) == alices
        assert laptop.catalog.quota_for(dave.keys.owner_id) is None
        assert not os.path.exists(os.path.join(laptop.profile.path("pool"),
                                               dave.keys.owner_id.hex()))  # fmt: skip
        assert {r["name"] for r in await ask("friends")} == {"alice", "bob", "carol"}
        # dave is a stranger now: the laptop's node no longer serves him.
        async with connected(dave) as grid:
            assert laptop.keys.owner_id.hex() not in grid.usage
        assert laptop.pool.used(dave.keys.owner_id) == 0


async def test_shutdown_stops_the_daemon_cleanly_after_answering(tmp_path):
    profile = make_profile(tmp_path, "laptop")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_daemon, profile, LOOPBACK)
            where = control.address(profile.home)
            assert await control.call(where, "shutdown", {}, ev.ignore) == {"stopping": True}
        # run_daemon returned by itself: the nursery above ended without being cancelled.
    with pytest.raises(control.NoDaemon):
        await control.call(where, "status", {}, ev.ignore)
    with profile.lock():  # released
        pass
