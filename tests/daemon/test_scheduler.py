"""The scheduler backs up every interval, retries with backoff while friends are away,
and holds off while paused (virtual time: trio's MockClock)."""

from __future__ import annotations

import errno

import pytest
import trio
import trio.testing

from p2pbackup.daemon.scheduler import FIRST_RETRY, Scheduler
from p2pbackup.errors import PeerError
from tests.daemon.conftest import make_profile


class FakeDaemon:
    def __init__(self, profile, failures: int = 0) -> None:
        self.node = type("Node", (), {"profile": profile})()
        self.runs: list[float] = []
        self.failures = failures

    async def run_job(self, name, params, events=None, *, source="client"):
        assert name == "backup"
        self.runs.append(trio.current_time())
        if self.failures:
            self.failures -= 1
            raise PeerError("No friend is online.")
        return {}


def _run(profile, failures, script):
    daemon = FakeDaemon(profile, failures)

    async def main():
        scheduler = Scheduler(daemon)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scheduler.run)
            await script(scheduler)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return daemon.runs


def test_every_interval_with_backoff_while_friends_are_away(tmp_path):
    profile = make_profile(tmp_path, "laptop", folders=[str(tmp_path)], schedule=1000)

    async def script(scheduler):
        await trio.sleep(2500)

    runs = _run(profile, 2, script)
    # At once (never backed up), then 30 s and 60 s later while failing, then every 1000 s.
    assert runs == pytest.approx([0, FIRST_RETRY, 3 * FIRST_RETRY, 3 * FIRST_RETRY + 1000,
                                  3 * FIRST_RETRY + 2000])  # fmt: skip


def test_paused_means_no_backups_until_resumed(tmp_path):
    profile = make_profile(tmp_path, "laptop", folders=[str(tmp_path)], schedule=100,
                           paused=True)  # fmt: skip

    async def script(scheduler):
        await trio.sleep(1000)
        assert scheduler.status()["paused"] and scheduler.status()["next_run"] is None
        profile.update_settings(paused=False)  # as the resume job does
        scheduler.changed()
        await trio.sleep(150)

    assert _run(profile, 0, script) == pytest.approx([1000, 1100])


def test_no_folders_or_an_interval_of_zero_means_manual_only(tmp_path):
    profile = make_profile(tmp_path, "laptop", schedule=100)

    async def script(scheduler):
        await trio.sleep(500)
        profile.update_settings(schedule=0)
        scheduler.changed(reschedule=True)
        profile.update_settings(folders=[str(tmp_path)])
        scheduler.changed()
        await trio.sleep(500)

    assert _run(profile, 0, script) == []


class _FailingDaemon(FakeDaemon):
    def __init__(self, profile, errors: list[Exception]) -> None:
        super().__init__(profile)
        self.errors = errors

    async def run_job(self, name, params, events=None, *, source="client"):
        self.runs.append(trio.current_time())
        if self.errors:
            raise self.errors.pop(0)
        return {}


def test_a_full_disk_or_a_bug_in_a_scheduled_backup_does_not_stop_the_daemon(tmp_path):
    profile = make_profile(tmp_path, "laptop", folders=[str(tmp_path)], schedule=100)
    full = OSError(errno.ENOSPC, "No space left on device", "/p/state.sqlite")
    daemon = _FailingDaemon(profile, [full, TypeError("a bug")])
    seen = []

    async def main():
        scheduler = Scheduler(daemon)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scheduler.run)
            await trio.sleep(50)  # between runs: each run's outcome
            for _ in range(3):
                seen.append(scheduler.last_error)
                await trio.sleep(100)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert daemon.runs == pytest.approx([0, 100, 200, 300])  # every interval, on and on
    assert seen == ["The disk refused /p/state.sqlite: the disk is full.",
                    "internal error, see the log", None]  # fmt: skip
