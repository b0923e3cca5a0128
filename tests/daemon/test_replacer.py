"""Re-placement with nobody asking: the daemon's Replacer on trio's mock clock, over a grid
of friends in this process (engine/replace.py does the work, the real one).

A friend unseen past the grace period has its shares made again on the others, and
verify then finds every record safe again; when it is back its extras go; a quota
lowered moves what no longer fits; with no room, the owner is told what to do."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from p2pbackup.daemon.replacer import RETRY, Replacer, replace_round
from p2pbackup.daemon.upkeep import DAY
from p2pbackup.daemon.watch import Bus
from p2pbackup.engine import events as ev
from p2pbackup.engine.verify import Verifier
from p2pbackup.storage.memorystore import MemoryShareStore
from p2pbackup.storage.store import ShareKey, Usage
from tests.daemon.conftest import make_profile, run_on_mock_clock
from tests.daemon.test_cycle import make_tree
from tests.engine.conftest import Grid

NAMES = ("alice", "bob", "carol", "dave")
KEYS = {name: f"{i + 1:02x}" * 32 for i, name in enumerate(NAMES)}  # owner ids, as hex


class FakeFriends:
    """daemon/friends.py as the Replacer sees it: presence and usage of the grid's stores."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.seen = {key: time.time() for key in grid.stores}

    def presence(self) -> list[dict]:
        rows, now = [], time.time()
        for name, key in KEYS.items():
            store = self.grid.stores[key]
            if store.online:
                self.seen[key] = now
            when = datetime.fromtimestamp(self.seen[key]).astimezone().isoformat()
            rows.append({"name": name, "owner_id": key, "online": store.online,
                         "last_seen": when})  # fmt: skip
        return rows

    def usage(self) -> dict[bytes, Usage | None]:
        return {
            bytes.fromhex(key): Usage(s._used, s.quota) if s.online else None
            for key, s in self.grid.stores.items()
        }

    async def settled(self, timeout: float) -> None:
        pass


class FakeDaemon:
    """What the Replacer uses of the daemon; its one job is the real ``replace_round``."""

    def __init__(self, grid: Grid, profile) -> None:
        self.grid = grid
        self.node = SimpleNamespace(profile=profile)
        self.bus = Bus()
        self.friends = FakeFriends(grid)
        self.events: list[ev.Event] = []
        self.runs: list[tuple[float, dict]] = []

    def publish(self, event: ev.Event) -> None:
        self.events.append(event)
        self.bus.publish(event)

    async def run_job(self, name, params, events=None, *, source="client"):
        assert (name, source) == ("replace", "upkeep")
        began = trio.current_time()
        online = {k: s for k, s in self.grid.stores.items() if s.online}
        usage = {k: await s.stat() for k, s in online.items()}
        names = {key: name for name, key in KEYS.items()}
        gone = set(params["gone"]) - set(online)
        result = await replace_round(online, usage, self.grid.state, self.publish,
                                     trio.CapacityLimiter(2), gone, names)  # fmt: skip
        self.runs.append((began, result))
        return result

    def went(self, *names: str, online: bool = False) -> None:
        """Friends go away or come back, told as daemon/friends.py tells it."""
        for name in names:
            self.grid.stores[KEYS[name]].online = online
            key = bytes.fromhex(KEYS[name])
            self.publish(ev.FriendOnline(name, key, "direct", 1.0) if online
                         else ev.FriendOffline(name, key, None))  # fmt: skip

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture(params=["memory", "sqlite"])
def grid(request, tmp_path):
    made = Grid(db_path=str(tmp_path / "state.sqlite") if request.param == "sqlite" else None)
    made.stores = {key: MemoryShareStore(name, 1 << 30, made.keys.owner_id)
                   for name, key in KEYS.items()}  # fmt: skip
    yield made
    made.close()


async def _settle(replacer: Replacer) -> None:
    """Until a run the Replacer started on news is over."""
    await trio.sleep(1)
    while replacer.running:
        await trio.sleep(1)


async def _safety(grid: Grid) -> tuple[int | None, int, int]:
    """What ``verify`` says of every record: friends that could disappear, at risk, lost."""
    online = {k: s for k, s in grid.stores.items() if s.online}
    verifier = Verifier(online, grid.state, ev.ignore, trio.CapacityLimiter(2))
    report = await verifier.verify([r.descriptor for r in grid.state.records.values()], False)
    worst = min((h.safe_losses for h in report.records.values()), default=None)
    return worst, len(report.at_risk()), sum(h.lost for h in report.records.values())


def _copies(grid: Grid) -> Counter[ShareKey]:
    """How many friends online hold each share."""
    return Counter(key for s in grid.stores.values() if s.online for key in s._shares)


def test_friends_unseen_8_days_are_replaced_and_dropped_again_when_back(grid, tmp_path):
    daemon = FakeDaemon(grid, make_profile(tmp_path, "laptop"))
    folder = make_tree(tmp_path)

    async def main():
        await grid.backup(folder)
        before = {key: s._used for key, s in grid.stores.items()}
        records = len(grid.state.records)
        replacer = Replacer(daemon, daemon.publish)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(replacer.run)
            await replacer.ready.wait()
            daemon.went("bob", "carol")
            # 2 of 4 shares left, on 2 friends: one friend more gone would lose data
            assert await _safety(grid) == (0, records, 0)
            await trio.sleep(6.9 * DAY)
            assert daemon.runs == []  # within the grace period (7 days): nothing moves
            await trio.sleep(1.1 * DAY)
            await _settle(replacer)
            assert replacer.last_error is None
            ((at, result),) = daemon.runs
            assert at == pytest.approx(7 * DAY, abs=60)  # the grace period, from last seen
            assert result["placed_again"] == records and not result["unplaced"]
            # verify, not repair: every record survives losing one more friend again
            assert await _safety(grid) == (1, 0, 0)
            assert daemon.of(ev.RepairDone)[0].shares == result["shares_stored"] == 2 * records
            assert [e.survives_losing for e in daemon.of(ev.SafetyChanged)] == [1]
            assert not daemon.of(ev.UpkeepNeeds)
            # once a day per friend while it lasts, from the first day on
            warned = daemon.of(ev.FriendUnseen)
            assert sorted(w.name for w in warned) == ["bob"] * 8 + ["carol"] * 8
            assert sorted({round(w.days) for w in warned}) == [1, 2, 3, 4, 5, 6, 7, 8]
            assert [(u["name"], round(u["days"])) for u in replacer.unseen()] == [
                ("bob", 8), ("carol", 8)]  # fmt: skip
            assert replacer.state()["extras"] == 2 * records
            assert replacer.state()["unseen"] == "2 of 4 friends unseen for 8 days"

            # Both are back with everything: the extras go, nothing is held twice.
            daemon.went("bob", "carol", online=True)
            await _settle(replacer)
            assert len(daemon.runs) == 2 and daemon.runs[1][1]["extras_dropped"] == 2 * records
            assert grid.state.extras == {}
            assert set(_copies(grid).values()) == {1}
            assert {key: s._used for key, s in grid.stores.items()} == before
            assert all(set(r.placement.values()) == set(KEYS.values())
                       for r in grid.state.records.values())  # fmt: skip
            assert await _safety(grid) == (2, 0, 0)
            assert replacer.unseen() == []
            await trio.sleep(2 * DAY)  # nothing more to do, nothing more said
            assert len(daemon.runs) == 2 and len(daemon.of(ev.FriendUnseen)) == 16
            nursery.cancel_scope.cancel()

    run_on_mock_clock(main)


def test_a_friend_back_without_its_shares_keeps_the_extras(grid, tmp_path):
    daemon = FakeDaemon(grid, make_profile(tmp_path, "laptop"))
    bob = grid.stores[KEYS["bob"]]

    async def main():
        await grid.backup(make_tree(tmp_path))
        replacer = Replacer(daemon, daemon.publish)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(replacer.run)
            await replacer.ready.wait()
            daemon.went("bob", "carol")
            await trio.sleep(8 * DAY)
            await _settle(replacer)
            bob._shares.clear()  # its disk was wiped meanwhile
            bob._used = 0
            daemon.went("bob", online=True)
            await _settle(replacer)
            assert daemon.runs[-1][1]["extras_dropped"] == 0
            assert {f for _, f in grid.state.extras.values()} == {KEYS["carol"]}  # still away
            assert set(_copies(grid).values()) == {1}
            assert await _safety(grid) == (1, 0, 0)  # the copies made are the copies now
            nursery.cancel_scope.cancel()

    run_on_mock_clock(main)


def test_no_room_says_what_to_do_and_tries_again_later(grid, tmp_path):
    daemon = FakeDaemon(grid, make_profile(tmp_path, "laptop"))

    async def main():
        await grid.backup(make_tree(tmp_path))
        for name in ("alice", "dave"):
            store = grid.stores[KEYS[name]]
            store.quota = store._used  # full
        replacer = Replacer(daemon, daemon.publish)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(replacer.run)
            await replacer.ready.wait()
            daemon.went("bob", "carol")
            await trio.sleep(7 * DAY + 600)
            await _settle(replacer)
            ((_, result),) = daemon.runs
            assert result["unplaced"] == len(grid.state.records) and result["placed_again"] == 0
            needs = daemon.of(ev.UpkeepNeeds)
            assert len(needs) == 1 and "held by bob and carol" in needs[0].problem
            assert needs[0].advice.startswith("invite another friend, or ask ")
            assert set(result["short"]) == {"alice", "dave"}
            assert "alice for " in needs[0].advice and "dave for " in needs[0].advice
            assert replacer.state()["advice"] == needs[0].advice
            assert [u["placed_again"] for u in replacer.unseen()] == [False, False]
            assert (await _safety(grid))[0] == 0  # nothing half done, nothing claimed
            await trio.sleep(DAY)  # tried again every few hours; said again once a day
            await _settle(replacer)
            assert len(daemon.runs) == 1 + DAY // RETRY
            assert len(daemon.of(ev.UpkeepNeeds)) == 2
            # Alice and Dave give what was asked (their stat says so): placed at once.
            for name, size in result["short"].items():
                grid.stores[KEYS[name]].quota += size
            daemon.publish(ev.FriendUsage("dave", bytes.fromhex(KEYS["dave"]), 0, 0))
            await _settle(replacer)
            assert daemon.runs[-1][1]["placed_again"] == len(grid.state.records)
            assert [u["placed_again"] for u in replacer.unseen()] == [True, True]
            assert await _safety(grid) == (1, 0, 0)
            nursery.cancel_scope.cancel()

    run_on_mock_clock(main)


def test_a_lowered_quota_moves_what_no_longer_fits(grid, tmp_path):
    daemon = FakeDaemon(grid, make_profile(tmp_path, "laptop"))
    carol = grid.stores[KEYS["carol"]]

    async def main():
        await grid.backup(make_tree(tmp_path))
        replacer = Replacer(daemon, daemon.publish)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(replacer.run)
            await replacer.ready.wait()
            assert daemon.runs == []
            carol.quota = carol._used // 2  # as its owner lowers it; its stat shows it
            daemon.publish(ev.FriendUsage("carol", bytes.fromhex(KEYS["carol"]), carol._used,
                                          carol.quota))  # fmt: skip
            await _settle(replacer)
            (_, result), = daemon.runs  # fmt: skip
            assert result["moved_off"]["carol"] > 0 and not result["short"]
            assert carol._used <= carol.quota
            assert set(_copies(grid).values()) == {1} and grid.state.extras == {}
            assert await _safety(grid) == (1, 0, 0)
            nursery.cancel_scope.cancel()

    run_on_mock_clock(main)


def test_a_daemon_back_from_a_week_away_does_not_count_a_friend_asleep_as_gone(grid, tmp_path):
    """Every friend's last-seen time is old when the owner's laptop comes back: one that is
    asleep right then is missed by the daemon itself for an hour before it counts."""
    daemon = FakeDaemon(grid, make_profile(tmp_path, "laptop"))

    async def main():
        await grid.backup(make_tree(tmp_path))
        daemon.friends.seen = {key: time.time() - 8 * DAY for key in KEYS.values()}
        grid.stores[KEYS["bob"]].online = False  # asleep as the daemon starts
        replacer = Replacer(daemon, daemon.publish)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(replacer.run)
            await replacer.ready.wait()
            assert [u["name"] for u in replacer.unseen()] == ["bob"]  # true: said at once
            assert [w.name for w in daemon.of(ev.FriendUnseen)] == ["bob"]
            await trio.sleep(3500)
            assert daemon.runs == []
            await trio.sleep(200)
            await _settle(replacer)
            assert len(daemon.runs) == 1 and daemon.runs[0][1]["placed_again"] > 0
            nursery.cancel_scope.cancel()

    run_on_mock_clock(main)
