"""Errors as a job reports them: a bug is not the client's bad parameters, and friends
away are a PeerError naming them, not damage."""

from __future__ import annotations

import pytest

from p2pbackup.daemon import jobs, pairing
from p2pbackup.engine import events as ev
from p2pbackup.errors import ConfigError, PeerError
from tests.daemon.conftest import started
from tests.daemon.test_cycle import make_tree

pytestmark = pytest.mark.trio


async def test_a_type_error_inside_a_job_is_a_bug_not_bad_parameters(monkeypatch):
    async def buggy(s, selector: str = "latest") -> int:
        return len(None)  # a bug inside the job

    async def buggy_node_job(node, events, name: str = "") -> int:
        return len(None)

    monkeypatch.setitem(jobs.JOBS, "buggy", buggy)
    monkeypatch.setitem(pairing.NODE_JOBS, "buggy", buggy_node_job)
    with pytest.raises(ConfigError, match=r"Bad parameters for buggy: .*nonsense"):
        await jobs.run(None, "buggy", {"nonsense": 1})
    with pytest.raises(TypeError, match="NoneType"):  # reaches the log as the bug it is
        await jobs.run(None, "buggy", {"selector": "latest"})
    with pytest.raises(ConfigError, match="Bad parameters for buggy"):
        await pairing.run_node_job(None, "buggy", {"nonsense": 1}, ev.ignore)
    with pytest.raises(TypeError, match="NoneType"):
        await pairing.run_node_job(None, "buggy", {}, ev.ignore)
    with pytest.raises(ConfigError, match="'at' is not a date"):
        await jobs.run(None, "buggy", {"at": "yesterday-ish"})


async def test_a_restore_with_friends_away_is_a_peer_error_that_names_them(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", folders=[folder]) as nodes:
        await nodes.run("laptop", "backup")
        for name in ("bob", "carol", "dave"):
            await nodes.stop(name)
        with pytest.raises(PeerError) as caught:
            await nodes.run("laptop", "restore", to=str(tmp_path / "out"))
        assert "away (bob, carol, dave)" in caught.value.message
