"""Retention by itself: upkeep's policy keeps exactly the snapshots it names, per device
and folder set, and prune frees the rest at friends; the daemon applies it after each
scheduled backup that succeeds (virtual time: trio's MockClock)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import trio
import trio.testing

from p2pbackup.daemon.retention import Retention
from p2pbackup.daemon.scheduler import Scheduler
from p2pbackup.engine import headstore
from p2pbackup.errors import PeerError
from tests.daemon.conftest import make_profile, pair, run_on_mock_clock, started
from tests.daemon.test_devices import _folder

HOUR = 3600


class _Clock:
    """The time a snapshot is dated: set by the test (headstore reads ``time.time_ns``)."""

    now = 0.0

    @classmethod
    def time_ns(cls) -> int:
        return int(cls.now * 1e9)


def _at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.fixture
def dated(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")  # buckets are read in the snapshot's local time
    time.tzset()
    monkeypatch.setattr(headstore, "time", _Clock)
    yield _Clock
    monkeypatch.undo()
    time.tzset()


async def _backup_at(nodes, device: str, when: float) -> str:
    _Clock.now = when
    return (await nodes.run(device, "backup", always_snapshot=True))["snapshot"]


@pytest.mark.trio
async def test_retention_keeps_exactly_what_the_policy_names_per_device(tmp_path, dated):
    docs = _folder(tmp_path, "Documents", "first version\n")
    keep = {"keep_hourly": 2, "keep_daily": 2, "keep_weekly": 0, "keep_monthly": 0}
    async with started(tmp_path / "nodes", friends=("alice", "bob", "carol"),
                       folders=[docs], upkeep=keep) as nodes:  # fmt: skip
        times = [_at(1, 10), _at(1, 10, 30), _at(2, 9), _at(3, 8), _at(3, 8, 20), _at(3, 9, 10)]
        laptop = [await _backup_at(nodes, "laptop", when) for when in times]
        music = _folder(tmp_path, "Music", "la la la\n")
        desktop_node = await nodes.start(
            "desktop", secret=nodes.profiles["laptop"].secret(), folders=[music], upkeep=keep
        )
        await pair(nodes.nodes["alice"], desktop_node)
        # The desktop's are the newest hour and day of all: counted with the laptop's,
        # they would push the laptop's 8:20 out of its two hours.
        desktop = [await _backup_at(nodes, "desktop", when) for when in (_at(1, 11), _at(3, 10))]

        done = await nodes.run("laptop", "retention")
        # hourly 2: 9:10 and 8:20 on day 3; daily 2: day 3 (9:10) and day 2 (9:00).
        assert done["forgotten"] == [laptop[0], laptop[1], laptop[3]]  # oldest first
        assert {k["id"]: k["why"] for k in done["kept"]} == {
            laptop[5]: ["hourly 1", "daily 1"], laptop[4]: ["hourly 2"], laptop[2]: ["daily 2"],
        }  # fmt: skip
        assert done["other_devices_kept"] == 2
        assert done["removed_records"] >= 3  # their manifests, gone from friends
        left = [s["id"] for s in await nodes.run("laptop", "snapshots")]
        assert sorted(left) == sorted([laptop[2], laptop[4], laptop[5], *desktop])

        # The desktop applies the same policy to its own: two hours, two days, both kept.
        mine = await nodes.run("desktop", "retention")
        assert mine["forgotten"] == [] and mine["other_devices_kept"] == 3
        # Every keep at 0: retention is off, and nothing is forgotten.
        off = {f"keep_{rule}": 0 for rule in ("hourly", "daily", "weekly", "monthly")}
        nodes.profiles["laptop"].update_settings(upkeep=off)
        assert await nodes.run("laptop", "retention") == {"off": True}
        assert len(await nodes.run("laptop", "snapshots")) == 5


class _Node:
    def __init__(self, profile) -> None:
        self.profile = profile
        self.catalog = type("Catalog", (), {"friends": staticmethod(lambda: [])})()


class _Daemon:
    """Backs up (failing while ``failures`` last) and runs retention, recording when."""

    def __init__(self, profile, failures: int = 0) -> None:
        self.node = _Node(profile)
        self.ran: list[tuple[str, float]] = []
        self.failures = failures
        self.retention = Retention(self, events=lambda event: None)

    async def run_job(self, name, params, events=None, *, source="client"):
        self.ran.append((name, trio.current_time()))
        if name == "backup" and self.failures:
            self.failures -= 1
            raise PeerError("No friend is online.")
        await trio.sleep(5)  # the job takes a while
        return {"forgotten": ["x"]} if name == "retention" else {}


def _run(daemon: _Daemon, seconds: float) -> list[tuple[str, float]]:
    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(Scheduler(daemon).run)
            nursery.start_soon(daemon.retention.run)
            await trio.sleep(seconds)
            nursery.cancel_scope.cancel()

    run_on_mock_clock(main)
    return daemon.ran


def test_the_daemon_applies_retention_after_each_backup_that_worked(tmp_path):
    profile = make_profile(tmp_path, "laptop", folders=[str(tmp_path)], schedule=1000)
    daemon = _Daemon(profile, failures=1)
    ran = _run(daemon, 2100)
    # A failed backup (at 0) is not followed by retention; each one that worked is.
    assert ran == [("backup", 0), ("backup", 30), ("retention", 35), ("backup", 1030),
                   ("retention", 1035), ("backup", 2030), ("retention", 2035)]  # fmt: skip
    state = daemon.retention.state()
    assert state["policy"] == {"hourly": 24, "daily": 7, "weekly": 4, "monthly": 12}
    assert state["forgotten"] == 1 and state["last_error"] is None and not state["running"]


def test_retention_off_runs_nothing_and_a_failure_is_kept_not_raised(tmp_path):
    profile = make_profile(tmp_path, "laptop", folders=[str(tmp_path)], schedule=1000,
                           upkeep={"keep_hourly": 0, "keep_daily": 0, "keep_weekly": 0,
                                   "keep_monthly": 0})  # fmt: skip
    assert [name for name, _ in _run(_Daemon(profile), 1500)] == ["backup", "backup"]

    class _Refused(_Daemon):
        async def run_job(self, name, params, events=None, *, source="client"):
            if name == "retention":
                raise PeerError("No friend is online.")
            return await super().run_job(name, params, events, source=source)

    profile.update_settings(upkeep={})
    daemon = _Refused(profile)
    _run(daemon, 500)
    assert daemon.retention.state()["last_error"] == "No friend is online."


def test_a_failing_look_at_quotas_is_logged_and_the_next_one_still_comes(tmp_path, caplog):
    profile = make_profile(tmp_path, "laptop")
    daemon = _Daemon(profile)
    looks = []

    def _broken(warn_at):
        looks.append(trio.current_time())
        raise TypeError("a bug")

    daemon.retention.quotas.check = _broken

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(daemon.retention.run)
            await trio.sleep(150)
            nursery.cancel_scope.cancel()

    run_on_mock_clock(main)
    assert looks == [0, 60, 120] and "quota warnings failed" in caplog.text
