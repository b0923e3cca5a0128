"""Re-placement with nobody asking, between real daemon processes on 127.0.0.1: a friend's
daemon is killed, the grace period (a few seconds here) goes by, and the owner's daemon
makes every record safe again by itself; when the friend is back, the extras go."""

from __future__ import annotations

import json
import queue
import signal
import time

import pytest

from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.storage.profile import Profile
from tests.cli.test_jobs_cli import _lines
from tests.daemon.test_cycle import make_tree

FRIENDS = ("alice", "bob", "carol")
GRACE = 3.0  # seconds a friend may be unseen before its shares are placed again


def _until(seen: queue.Queue, wanted, timeout: float) -> list[dict]:
    """The events ``watch`` printed until one ``wanted`` holds for, within ``timeout`` s."""
    deadline, got = time.monotonic() + timeout, []
    while True:
        message = json.loads(seen.get(timeout=max(0.1, deadline - time.monotonic())))
        event = message.get("event")
        if event is not None:
            got.append(event)
            if wanted(event):
                return got


def _replaced(event: dict) -> bool:
    return event["type"] == "JobFinished" and event["name"] == "replace"


@pytest.mark.slow
def test_a_friend_killed_is_made_up_for_by_itself_and_its_extras_go_when_back(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.init_all(["laptop", *FRIENDS])
        grid.cli("laptop", "schedule", "off")
        # As the 'upkeep' job would set it, before the daemon starts.
        Profile(grid.home("laptop")).update_settings(upkeep={"grace": GRACE})
        grid.start("laptop", *FRIENDS)
        grid.pair("laptop", *FRIENDS)
        grid.cli("laptop", "folders", "add", make_tree(tmp_path))
        grid.cli("laptop", "backup")
        assert grid.cli("laptop", "verify")["friends_that_could_disappear"] == 1

        watch = grid.command("laptop", "watch", "--json")
        seen = _lines(watch)
        seen.get(timeout=10)  # watching
        grid.stop("bob", kill=True)
        events = _until(seen, _replaced, timeout=60)  # the grace counts from when last seen
        kinds = [e["type"] for e in events]
        assert {"FriendOffline", "FriendUnseen", "RepairDone", "SafetyChanged"} <= set(kinds)
        assert events[-1]["state"] == "finished"
        assert [e["name"] for e in events if e["type"] == "FriendUnseen"] == ["bob"]

        # Nobody asked for a repair: verify finds every record safe again without Bob.
        checked = grid.cli("laptop", "verify")
        assert "bob" not in checked["friends"]  # away: only the friends online count
        assert checked["friends_that_could_disappear"] == 1 and checked["at_risk"] == 0
        status = grid.cli("laptop", "status")
        assert [u["name"] for u in status["unseen"]] == ["bob"]
        assert status["unseen"][0]["placed_again"] is True

        # Bob is back with all he held: the copies made meanwhile are dropped.
        grid.start("bob")
        events = _until(seen, _replaced, timeout=60)
        assert events[-1]["state"] == "finished"
        back = grid.cli("laptop", "verify")
        assert back["friends_that_could_disappear"] == 1 and back["at_risk"] == 0
        held = {name: counts["good"] for name, counts in back["friends"].items()}
        assert sum(held.values()) == 4 * back["records"] and held["bob"] > 0  # none twice
        assert grid.cli("laptop", "status")["unseen"] == []
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=15) == 0


@pytest.mark.slow
def test_a_quota_lowered_below_what_a_friend_holds_moves_what_no_longer_fits(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.init_all(["laptop", *FRIENDS])
        grid.cli("laptop", "schedule", "off")
        grid.start("laptop", *FRIENDS)
        grid.pair("laptop", *FRIENDS)
        grid.cli("laptop", "folders", "add", make_tree(tmp_path))
        grid.cli("laptop", "backup")
        watch = grid.command("laptop", "watch", "--json")
        seen = _lines(watch)
        seen.get(timeout=10)  # watching
        held = grid.cli("alice", "quota", "laptop", "1G")["i_store_for_them"]
        lowered = grid.cli("alice", "quota", "laptop", str(held // 2))  # as alice decides
        assert lowered["over_quota"]
        # The laptop hears it at its next stat of alice, and moves what no longer fits.
        events = _until(seen, _replaced, timeout=60)
        assert events[-1]["state"] == "finished"
        assert any(e["type"] == "RepairDone" and e["why"] == "quota lowered" for e in events)
        now = grid.cli("alice", "quota", "laptop", str(held // 2))
        assert not now["over_quota"] and now["i_store_for_them"] <= held // 2
        checked = grid.cli("laptop", "verify")
        assert checked["friends_that_could_disappear"] == 1 and checked["at_risk"] == 0
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=15) == 0
