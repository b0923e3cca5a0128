"""Retention by itself: after each scheduled backup that succeeds, the daemon applies
upkeep's policy (daemon/upkeep.py: keep 24 hourly, 7 daily, 4 weekly and 12 monthly by
default) as ``forget --prune`` does, then repacks under upkeep's CPU and bandwidth
budget, and prune frees the space at friends.

The policy applies to this device's snapshots alone, each folder set on its own
(``retention.keep_per_group``): another device of the same owner applies its own,
and a snapshot of one device never counts toward another's keeps
(docs/decisions.md, "Snapshots belong to a device and a folder set"). Every keep at 0
turns retention off. It runs as the job ``retention`` (watch and jobs show it),
behind the job lock, so a backup waits for it and it waits for a backup.

It also watches quotas (daemon/quotas.py) between backups.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import trio

from p2pbackup.core.retention import RetentionPolicy
from p2pbackup.daemon.forget import apply_policy
from p2pbackup.daemon.quotas import QuotaWatch
from p2pbackup.daemon.upkeep import UpkeepSettings
from p2pbackup.engine import events as ev
from p2pbackup.engine.failures import leaves
from p2pbackup.engine.repack import RepackBudget
from p2pbackup.errors import P2PBackupError
from p2pbackup.storage.diskerrors import first_storage_error

if TYPE_CHECKING:
    from p2pbackup.daemon.daemon import Daemon
    from p2pbackup.daemon.session import Session

log = logging.getLogger(__name__)

QUOTA_EVERY = 60.0  # seconds between looks at quotas: friends' STATs come about as often
REPACK_ROUND = 600.0  # seconds a repack starts files for: a backup waits no longer for it


def policy_of(upkeep: UpkeepSettings) -> RetentionPolicy | None:
    """The retention policy upkeep's settings name; None when every keep is 0 (off)."""
    keeps = (upkeep.keep_hourly, upkeep.keep_daily, upkeep.keep_weekly, upkeep.keep_monthly)
    if not any(keeps):
        return None
    return RetentionPolicy(0, *keeps)


def budget_of(upkeep: UpkeepSettings, settings: dict) -> RepackBudget:
    """The repack's budget: upkeep's share of a core, its rate or else the upload limit
    (a repack must not take more of the line than a backup may), and ten minutes a
    round (the next backup's round goes on where it stopped)."""
    rate = upkeep.repack_rate or int(settings.get("bandwidth", 0))
    return RepackBudget(cpu=upkeep.repack_cpu, rate=float(rate) if rate else None,
                        seconds=REPACK_ROUND)  # fmt: skip


async def apply(s: Session) -> dict:
    """The ``retention`` job: upkeep's policy on this device's snapshots, then repack and
    prune. Nothing when retention is off."""
    settings = s.settings()
    upkeep = UpkeepSettings.of(settings)
    policy = policy_of(upkeep)
    if policy is None:
        return {"off": True}
    s.require_friends("retention")
    result = await apply_policy(s, policy, prune=True, budget=budget_of(upkeep, settings))
    return {"off": False, **result}


class Retention:
    """The daemon's retention (``daemon.retention``): run after each backup the scheduler
    reports done (``backup_done``), and quota warnings between."""

    def __init__(self, daemon: Daemon, events: ev.EventSink) -> None:
        self._daemon = daemon
        self._profile = daemon.node.profile
        self._events = events
        self._due = trio.Event()
        self.quotas = QuotaWatch(daemon.node, events)
        self._running = False
        self._last: dict[str, Any] = {}

    def backup_done(self) -> None:
        """A scheduled backup succeeded: apply the policy once the lock is free."""
        self._due.set()

    def changed(self) -> None:
        """Upkeep's settings changed: quotas are looked at again now (a new threshold)."""
        self.quotas.check(UpkeepSettings.of(self._profile.settings()).quota_warn)

    def state(self) -> dict[str, Any]:
        upkeep = UpkeepSettings.of(self._profile.settings())
        policy = policy_of(upkeep)
        return {
            "policy": None if policy is None else {
                "hourly": policy.hourly, "daily": policy.daily, "weekly": policy.weekly,
                "monthly": policy.monthly,
            },
            "running": self._running,
            **self._last,
            "quotas_nearly_full": self.quotas.state(),
        }  # fmt: skip

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_quotas)
            while True:
                await self._due.wait()
                self._due = trio.Event()
                await self.apply_now()

    async def apply_now(self) -> dict | None:
        """One round, as a job of the daemon's table; its failure is kept, never raised:
        the node friends rely on goes on."""
        if policy_of(UpkeepSettings.of(self._profile.settings())) is None:
            return None
        self._running = True
        try:
            result = await self._daemon.run_job("retention", {}, source="upkeep")
        except P2PBackupError as exc:
            self._finished(error=exc.message)
            log.warning("retention: %s", exc.message)
            return None
        except Exception as exc:  # the disk, or a bug: neither may stop the node
            disk = first_storage_error(leaves(exc))
            self._finished(error=disk.message if disk else "internal error, see the log")
            log.error("retention failed", exc_info=exc)
            return None
        finally:
            self._running = False
        self._finished(result=result)
        return result

    def _finished(self, result: dict | None = None, error: str | None = None) -> None:
        now = datetime.now().astimezone().isoformat(timespec="seconds")
        last = {"last_run": now, "last_error": error}
        if result is not None:
            last |= {
                "forgotten": len(result.get("forgotten", ())),
                "kept": len(result.get("kept", ())),
                "repacked_revisions": result.get("repacked_revisions", 0),
                "removed_shares": result.get("removed_shares", 0),
                "repack": result.get("repack"),  # seconds, bytes_read, bytes_sent
            }
        self._last = {**self._last, **last}

    async def _watch_quotas(self) -> None:
        while True:
            try:
                self.quotas.check(UpkeepSettings.of(self._profile.settings()).quota_warn)
            except P2PBackupError as exc:  # settings unreadable, say: the next look may do
                log.warning("quota warnings: %s", exc.message)
            except Exception as exc:  # a bug: to the log, never stopping the node
                log.error("quota warnings failed", exc_info=exc)
            await trio.sleep(QUOTA_EVERY)
