"""What the daemon says about the backup, folded into what the tray and the Overview show.

The pure part (``tray_state``, ``warnings``, ``when``) reads the ``status`` job's answer
(daemon/jobs.py ``status``, docs/format.md) and is tested with plain dicts. ``StatusModel``
keeps the latest answers and asks again when the daemon's events say something changed,
or on a timer where the daemon has no ``watch``.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from p2pbackup.daemon.control import VERSION
from p2pbackup.gui.bridge import DaemonState, Request, Watch

DEBOUNCE_MS = 300  # events come in bursts: one refresh for a burst
POLL_MS = 10_000  # without watch: how often status is asked again
SLOW_POLL_MS = 60_000  # with watch: times ("2 minutes ago") still move
STALE_DAYS = 3  # no backup for this long needs attention
BUSY_JOBS = frozenset({"backup", "restore", "verify"})
# Events after which what the Overview or the Friends tab shows may have changed.
REFRESH_ON = frozenset({
    "JobFinished", "FriendOnline", "FriendOffline", "FriendUsage", "SettingsChanged",
    "HeadRolledBack", "EventsDropped",
})  # fmt: skip


def _tr(text: str) -> str:
    return QCoreApplication.translate("Status", text)


class TrayState(enum.Enum):
    """The tray icon's states; the value names the icon in resources/icons."""

    SAFE = "safe"
    BUSY = "busy"
    ATTENTION = "attention"
    OFFLINE = "offline"
    PAUSED = "paused"


@dataclass(frozen=True)
class Advice:
    text: str  # what is wrong, in plain words
    todo: str  # what to do about it


def tray_state(status: dict | None, busy: bool, running: bool) -> TrayState:
    """One look: the daemon down or anything to fix beats paused beats busy beats offline."""
    if not running or status is None:
        return TrayState.ATTENTION
    if status.get("friends") and not status.get("friends_online"):
        return TrayState.OFFLINE
    if (status.get("schedule") or {}).get("paused"):
        return TrayState.PAUSED
    if busy:
        return TrayState.BUSY
    if warnings(status):
        return TrayState.ATTENTION
    return TrayState.SAFE


def warnings(status: dict, now: float | None = None) -> list[Advice]:
    """What needs the person, each with what to do, most pressing first."""
    now = time.time() if now is None else now
    out: list[Advice] = []
    schedule = status.get("schedule") or {}
    if not status.get("friends"):
        out.append(Advice(_tr("No friend keeps your backup yet."),
                           _tr("Invite a friend, or accept a friend's invite.")))  # fmt: skip
    if not status.get("folders"):
        out.append(Advice(_tr("No folder is chosen for backup."),
                           _tr("Choose the folders to back up.")))  # fmt: skip
    if schedule.get("last_error"):
        out.append(Advice(
            _tr("The last backup failed: %1").replace("%1", schedule["last_error"]),
            _tr("Try Back up now; if it fails again, check that your friends are online."),
        ))  # fmt: skip
    for rolled in status.get("head_rolled_back") or []:
        out.append(Advice(
            _tr("%1 gave an older copy of your backup list than before.")
            .replace("%1", str(rolled.get("friend"))),
            _tr("Run a check of your backup (verify) to see what is safe."),
        ))  # fmt: skip
    if status.get("friends") and status.get("folders"):
        last = _parse(status.get("last_backup"))
        if last is None:
            out.append(Advice(_tr("Nothing is backed up yet."), _tr("Back up now.")))
        elif now - last.timestamp() > STALE_DAYS * 86400:
            out.append(Advice(_tr("No backup for %1 days.")
                               .replace("%1", str(int((now - last.timestamp()) // 86400))),
                               _tr("Back up now, and check that your friends are online.")))
    if status.get("phrase_confirmed") is False:  # absent: a daemon too old to say
        out.append(Advice(
            _tr("Your recovery phrase has not been checked. Without it, a lost computer "
                "means lost backups."),
            _tr("Check it against your copy: Backup ▸ Check my recovery phrase…"),
        ))  # fmt: skip
    if status.get("friends_that_could_disappear") == 0 and status.get("snapshots"):
        out.append(Advice(_tr("Your backup would not survive losing one more friend."),
                           _tr("Keep friends online, or invite another friend.")))  # fmt: skip
    return out


def _parse(iso: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(iso) if iso else None
    except ValueError:
        return None


def when(moment: float | None, now: float | None = None) -> str:
    """``5 minutes ago``, ``in 2 hours``, ``just now``: a time as a person says it."""
    if moment is None:
        return _tr("never")
    now = time.time() if now is None else now
    delta = moment - now
    span = abs(delta)
    if span < 60:
        return _tr("just now") if delta <= 0 else _tr("in a moment")
    for size, one, many in (
        (86400, _tr("1 day"), _tr("%1 days")),
        (3600, _tr("1 hour"), _tr("%1 hours")),
        (60, _tr("1 minute"), _tr("%1 minutes")),
    ):
        if span >= size:
            count = int(span // size)
            amount = one if count == 1 else many.replace("%1", str(count))
            return (_tr("%1 ago") if delta < 0 else _tr("in %1")).replace("%1", amount)
    return ""


def last_backup_time(status: dict) -> float | None:
    last = _parse(status.get("last_backup"))
    return last.timestamp() if last else None


class StatusModel(QObject):
    """The latest ``status`` and ``friends`` answers, the running jobs, and the daemon's
    state; ``changed`` after any of them moves."""

    changed = Signal()

    def __init__(self, home: str, watch: Watch, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.home, self.watch = home, watch
        self.status: dict | None = None
        self.friends: list[dict] = []
        self.jobs: dict[int, dict] = {}  # running jobs by id: name, and progress when told
        self.error: str = ""  # why the last refresh failed ("" when it did not)
        self._asking: set[str] = set()
        self._soon = QTimer(self, singleShot=True, interval=DEBOUNCE_MS, timeout=self.refresh)
        self._poll = QTimer(self, interval=POLL_MS, timeout=self.refresh)
        watch.state_changed.connect(self._daemon)
        watch.event.connect(self.feed)
        watch.watching.connect(self._watching)

    @property
    def running(self) -> bool:
        return self.watch.state is DaemonState.RUNNING

    @property
    def busy(self) -> bool:
        return any(job.get("name") in BUSY_JOBS and job.get("state") != "queued"
                   for job in self.jobs.values())  # fmt: skip

    def tray_state(self) -> TrayState:
        return tray_state(self.status, self.busy, self.running)

    def refresh(self) -> None:
        """Ask for status and friends again (a question already out is not asked twice)."""
        if not self.running:
            return
        # Version 2 answers a cached status at once, without asking friends (the tray's).
        self._ask("status", {"cached": True} if VERSION >= 2 else {}, self._status)
        self._ask("friends", {}, self._friends)

    def _ask(self, job: str, params: dict, done) -> None:
        if job in self._asking:
            return
        self._asking.add(job)
        request = Request(self.home, job, params, self)
        request.result.connect(done)
        request.failed.connect(lambda exc: self._failed(exc.message))
        request.finished.connect(lambda: self._asking.discard(job))
        request.start()

    def _status(self, result: object) -> None:
        if isinstance(result, dict):
            self.status, self.error = result, ""
            if isinstance(result.get("jobs"), list):  # version 2 lists the jobs it runs
                self.jobs = {
                    job["id"]: {"name": job.get("name"), "state": job.get("state"),
                                "progress": job.get("progress") or {}}
                    for job in result["jobs"]
                    if isinstance(job, dict) and isinstance(job.get("id"), int)
                }  # fmt: skip
            self.changed.emit()

    def friend_rows(self) -> list[dict]:
        """The ``friends`` answer, with when each was last seen and how it is reached from
        the daemon's presence (version 2's ``status``), where it tells."""
        presence = (self.status or {}).get("presence")
        if not isinstance(presence, list):
            return self.friends
        seen = {str(p.get("owner_id")): p for p in presence if isinstance(p, dict)}
        rows = []
        for row in self.friends:
            extra = seen.get(str(row.get("owner_id")), {})
            rows.append({**row, **{k: extra[k] for k in ("last_seen", "path") if k in extra}})
        return rows

    def _friends(self, result: object) -> None:
        if isinstance(result, list):
            self.friends = [row for row in result if isinstance(row, dict)]
            self.changed.emit()

    def _failed(self, message: str) -> None:
        self.error = message
        self.changed.emit()

    def _daemon(self, state: DaemonState) -> None:
        if state is DaemonState.RUNNING:
            self._poll.setInterval(SLOW_POLL_MS if self.watch.has_watch else POLL_MS)
            self._poll.start()
            self.refresh()
        else:
            self._poll.stop()
            self.jobs.clear()
        self.changed.emit()

    def _watching(self, watching: dict) -> None:
        for job in watching.get("jobs") or []:
            if isinstance(job, dict) and isinstance(job.get("id"), int):
                self.jobs[job["id"]] = {"name": job.get("name"), "state": job.get("state")}
        self.changed.emit()

    def feed(self, event: dict, job: object = None) -> None:
        """One event of the daemon's (public: the tests feed dicts)."""
        kind = event.get("type")
        ident = event.get("job")
        if kind == "JobStarted" and isinstance(ident, int):
            self.jobs[ident] = {"name": event.get("name"), "state": "running"}
            self.changed.emit()
        elif kind == "JobProgress" and ident in self.jobs:
            self.jobs[ident]["progress"] = event
            self.changed.emit()
        elif kind == "JobFinished" and isinstance(ident, int):
            self.jobs.pop(ident, None)
            self.changed.emit()
        if kind in REFRESH_ON:
            self._soon.start()

    def progress_text(self) -> str:
        """``Backing up: 40 %`` for the first busy job, "" when none is."""
        for job in self.jobs.values():
            if job.get("name") not in BUSY_JOBS:
                continue
            word = {"backup": _tr("Backing up"), "restore": _tr("Restoring"),
                    "verify": _tr("Checking")}[job["name"]]  # fmt: skip
            p = job.get("progress") or {}
            total, done = p.get("total_bytes") or 0, p.get("done_bytes") or 0
            if total:
                return _tr("%1: %2 %").replace("%1", word).replace(
                    "%2", str(min(100, int(100 * done / total))))
            return _tr("%1…").replace("%1", word)
        return ""
