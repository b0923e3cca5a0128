"""``status`` from what the daemon keeps: answered at once, never behind the job lock.

The parts that need friends and the backup state (snapshots, protected size, how
many friends could disappear, heads gone back in time) are kept from the last
job that worked them out: the ``status`` job itself, and a check run after
every backup, verify, forget and unfriend. The rest is live: folders and the
last backup from the settings, the schedule, the jobs running or queued with
their progress, the last result of each kind of job, and friends online from
the daemon's presence (daemon/friends.py) when it keeps one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from p2pbackup.daemon.jobtable import KEEP_RESULTS
from p2pbackup.daemon.times import iso_time
from p2pbackup.daemon.upkeep import states as upkeep_states

if TYPE_CHECKING:
    from p2pbackup.daemon.daemon import Daemon

# Jobs after which the daemon checks safety again.
CHANGE_SAFETY = frozenset({"backup", "verify", "forget", "unfriend", "replace", "retention",
                           "audit"})  # an audit repairs what it finds


class Facts:
    """The last ``status`` worked out in a session, and when."""

    def __init__(self) -> None:
        self.kept: dict[str, Any] | None = None
        self.at: float | None = None

    def remember(self, status: dict) -> None:
        self.kept = {k: v for k, v in status.items() if k != "schedule"}
        self.at = time.time()


def _unknown(daemon: Daemon) -> dict[str, Any]:
    """Before any job has looked: what is known without friends."""
    return {
        "friends": len(daemon.node.catalog.friends()), "friends_online": [], "offline": [],
        "backup_now_survives": None, "snapshots": None, "protected_bytes": None,
        "protected_files": None, "friends_that_could_disappear": None, "head_rolled_back": [],
    }  # fmt: skip


def answer(daemon: Daemon) -> dict[str, Any]:
    facts: Facts = daemon.facts
    out = dict(facts.kept) if facts.kept is not None else _unknown(daemon)
    settings = daemon.node.profile.settings()
    out["folders"] = list(settings.get("folders", []))
    out["last_backup"] = iso_time(settings.get("last_backup"))
    out["phrase_confirmed"] = bool(settings.get("phrase_confirmed", False))  # the app reminds
    out["schedule"] = daemon.scheduler.status()
    out["checked_at"] = iso_time(facts.at)  # when the kept part was worked out (None: never)
    out["jobs"] = [job.summary() for job in daemon.jobs.active()]
    out["rendezvous"] = daemon.point.state()  # registered, relay slot, since, last error
    out["last_jobs"] = {
        name: {**job.summary(), "result": job.result}
        for name in sorted(KEEP_RESULTS)  # the jobs whose last result status shows
        if (job := daemon.jobs.last.get(name)) is not None
    }
    if (replacer := getattr(daemon, "replacer", None)) is not None:
        out["unseen"] = replacer.unseen()  # friends unseen a day or more (the grace, if less)
    out["upkeep"] = upkeep_states(daemon)  # audits, re-placement, retention: what each says
    presence = getattr(getattr(daemon, "friends", None), "presence", None)
    if callable(presence):
        _with_presence(out, presence())
    return out


def _with_presence(out: dict[str, Any], friends: list[dict]) -> None:
    """Friends online now, as the daemon's long-lived connections see them."""
    out["presence"] = friends
    out["friends"] = len(friends)
    out["friends_online"] = sorted(f["name"] for f in friends if f.get("online"))
    out["offline"] = [
        {"name": f["name"], "last_seen": f.get("last_seen")}
        for f in sorted(friends, key=lambda f: f["name"])
        if not f.get("online")
    ]
