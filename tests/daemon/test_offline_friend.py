"""A friend that is away (a laptop asleep) is the normal case: backups still land, say
who is away since when and what safety they have, and are spread again later."""

from __future__ import annotations

import pytest

from tests.daemon.conftest import started
from tests.daemon.test_cycle import edit, make_tree

pytestmark = pytest.mark.trio


async def test_a_backup_with_a_friend_away_lands_marked_and_is_spread_once_it_is_back(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", friends=("alice", "bob"), folders=[folder]) as nodes:
        first = await nodes.run("laptop", "backup")
        assert first["survives_losing"] == 1 and first["offline"] == []
        await nodes.stop("bob")
        edit(folder)
        status = await nodes.run("laptop", "status")
        (away,) = status["offline"]
        assert away["name"] == "bob" and away["last_seen"]  # seen by the first backup
        assert status["backup_now_survives"] == 0
        second = await nodes.run("laptop", "backup")  # lands on alice alone, and says so
        assert second["friends"] == ["alice"] and second["survives_losing"] == 0
        assert [f["name"] for f in second["offline"]] == ["bob"]
        assert (await nodes.run("laptop", "status"))["friends_that_could_disappear"] == 0
        await nodes.start("bob")
        repaired = await nodes.run("laptop", "verify", repair=True)
        assert repaired["repaired"] > 0, repaired
        status = await nodes.run("laptop", "status")
        assert status["offline"] == [] and status["friends_that_could_disappear"] == 1
