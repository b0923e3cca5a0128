"""Backs up on a schedule: every interval, unless paused; waits for friends.

Settings live in the profile (``schedule``: interval in seconds, 0 for never;
``paused``), so they survive restarts; the CLI or the tray change them through
the daemon's settings jobs (daemon/settings.py), which call ``changed``. A backup
that finds no friend online, or fails for want of them, is retried with
backoff (30 s doubling to 30 min) instead of waiting a whole interval.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import trio

from p2pbackup.daemon.settings import DEFAULT_INTERVAL
from p2pbackup.engine.failures import leaves
from p2pbackup.errors import P2PBackupError, PeerError
from p2pbackup.storage.diskerrors import first_storage_error

if TYPE_CHECKING:
    from p2pbackup.daemon.daemon import Daemon

log = logging.getLogger(__name__)

FIRST_RETRY = 30.0
MAX_RETRY = 1800.0


class Scheduler:
    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._profile = daemon.node.profile
        self._wake = trio.Event()
        self._retry = FIRST_RETRY
        self._due = 0.0  # trio time of the next backup
        self.last_error: str | None = None

    def _settings(self) -> tuple[float, bool]:
        settings = self._profile.settings()
        interval = float(settings.get("schedule", DEFAULT_INTERVAL))
        return interval, bool(settings.get("paused", False))

    def changed(self, reschedule: bool = False) -> None:
        """The settings changed: look again now; with ``reschedule``, the interval did, so
        the next backup is due that long after the last one."""
        if reschedule:
            self._due = self._due_after_last(self._settings()[0])
        self._wake.set()

    def status(self) -> dict[str, Any]:
        interval, paused = self._settings()
        return {
            "interval": interval,
            "paused": paused,
            "next_run": None if paused or not interval else self.next_run,
            "last_error": self.last_error,
        }

    @property
    def next_run(self) -> float:
        """The next backup, as a Unix time."""
        return time.time() + max(0.0, self._due - trio.current_time())

    def _due_after_last(self, interval: float) -> float:
        last = self._profile.settings().get("last_backup") or 0
        return trio.current_time() + max(0.0, last + interval - time.time())

    async def run(self) -> None:
        self._due = self._due_after_last(self._settings()[0])
        while True:
            interval, paused = self._settings()
            if paused or not interval or not self._profile.settings().get("folders"):
                await self._sleep(None)
                continue
            wait = self._due - trio.current_time()
            if wait > 0:
                await self._sleep(wait)
                continue
            self._due = trio.current_time() + await self._backup(interval)

    async def _sleep(self, seconds: float | None) -> None:
        with trio.move_on_after(seconds if seconds is not None else float("inf")):
            await self._wake.wait()
        self._wake = trio.Event()

    async def _backup(self, interval: float) -> float:
        """Run one backup; how long to wait before the next one."""
        try:
            await self._daemon.run_job("backup", {}, source="schedule")  # events: to the bus
        except PeerError as exc:
            self.last_error = exc.message
            log.warning("scheduled backup: %s; retrying in %.0f s", exc.message, self._retry)
            wait, self._retry = self._retry, min(self._retry * 2, MAX_RETRY)
            return min(wait, interval)
        except P2PBackupError as exc:
            self.last_error = exc.message
            log.warning("scheduled backup failed: %s", exc.message)
            return interval
        except Exception as exc:  # the disk, or a bug: neither may stop the node friends use
            disk = first_storage_error(leaves(exc))
            self.last_error = disk.message if disk else "internal error, see the log"
            log.error("scheduled backup failed: %s", self.last_error, exc_info=exc)
            return interval
        self.last_error = None
        self._retry = FIRST_RETRY
        retention = getattr(self._daemon, "retention", None)
        if retention is not None:  # upkeep's policy, applied after each backup that worked
            retention.backup_done()
        return interval
