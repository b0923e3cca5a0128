"""What the backup did lately: backups, restores, checks and repairs, and warnings.

Two sources, as the daemon gives them (docs/format.md, "Control socket"):

- jobs (a person's, and the upkeep the daemon runs by itself: retention, audit, replace):
  the ``jobs`` answer (the summaries of this daemon's life, the last 50 ended) and,
  live, ``JobStarted``/``JobProgress``/``JobFinished``. A failed job's summary carries its
  error's ``kind``, so ``failure_words`` decides by class, never by the message.
- news that belongs to no job: upkeep's ``AuditDone``, ``RepairDone``, ``SafetyChanged``,
  ``FriendUnseen``, ``QuotaNearlyFull``, ``UpkeepNeeds``, and ``HeadRolledBack``. These
  are kept from the moment the app started watching (the daemon's log keeps the rest).

The pure part (``entry_of_job``, ``entry_of_event``) turns dicts into ``Entry`` rows and
is tested without Qt widgets; ``ActivityModel`` is the table the Activity tab shows.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QCoreApplication,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
)

from p2pbackup.core.sizes import format_size
from p2pbackup.gui.bridge import DaemonState, Request, Watch
from p2pbackup.gui.models.table import RowsModel

MAX_ROWS = 500  # news beyond this is in the log
# the upkeep the daemon runs by itself (retention, audit, replace) is shown as well: a person
# sees why the backup shrank, a friend was checked, or pieces were stored elsewhere
SHOWN_JOBS = ("backup", "restore", "verify", "forget", "retention", "audit", "replace")
SEVERITY_ROLE = Qt.ItemDataRole.UserRole + 1  # Severity
Index = QModelIndex | QPersistentModelIndex


def _tr(text: str) -> str:
    return QCoreApplication.translate("Activity", text)


class Severity(enum.Enum):
    RUNNING = "running"
    DONE = "done"
    WARNING = "warning"
    FAILED = "failed"


@dataclass(frozen=True)
class Entry:
    when: float  # seconds since the epoch
    what: str  # "Backup", "Restore", "Check", "Repair", "Warning", ...
    text: str  # what happened, in plain words
    severity: Severity
    job: int | None = None  # the daemon's job id, for a job's row
    name: str = ""  # the job's name ("backup"), for a job's row


class Column(enum.IntEnum):
    WHEN = 0
    WHAT = 1
    TEXT = 2


def job_word(name: str) -> str:
    words = {"backup": _tr("Backup"), "restore": _tr("Restore"), "verify": _tr("Check"),
             "forget": _tr("Clean-up"), "retention": _tr("Tidy up old backups"),
             "audit": _tr("Check a friend"), "replace": _tr("Store again")}  # fmt: skip
    return words.get(name, name)


def failure_words(error: dict | str | None) -> str:
    """A failure as a person can act on it. Our errors are written for the user already;
    a bug (``InternalError``) is not the user's to read, so it points to the log."""
    if isinstance(error, dict):
        if error.get("kind") == "InternalError":
            return _tr("p2pbackup ran into a problem of its own. Open the log for the "
                       "details, and please report it.")  # fmt: skip
        if error.get("kind") == "JobCancelled":
            return _tr("Stopped before it finished.")
        error = error.get("message")
    return str(error) if error else _tr("It failed without saying why; the log may know.")


def _moment(iso: object) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if isinstance(iso, str) else None
    except ValueError:
        return None


def _outcome(name: str, state: str, error: dict | str | None, progress: dict | None) -> tuple:
    """(text, severity) of a job in ``state``; the row's What column names the job."""
    if state in ("queued", "running"):
        text = _tr("Waiting for another job to end.") if state == "queued" else _tr("Running…")
        return text + _progress_words(progress), Severity.RUNNING
    if state == "finished":
        return _tr("Finished."), Severity.DONE
    if state == "cancelled":
        return _tr("Stopped before it finished."), Severity.WARNING
    return _tr("Failed: %1").replace("%1", failure_words(error)), Severity.FAILED


def _progress_words(progress: dict | None) -> str:
    p = progress or {}
    total, done = p.get("total_bytes") or 0, p.get("done_bytes") or 0
    if not total:
        return ""
    return " " + _tr("%1 of %2").replace("%1", format_size(done)).replace(
        "%2", format_size(total))


def entry_of_job(summary: dict) -> Entry | None:
    """A row for one summary of the ``jobs`` answer; None for jobs nobody needs to see
    (status, ls, settings...)."""
    name, ident = summary.get("name"), summary.get("id")
    if name not in SHOWN_JOBS or not isinstance(ident, int):
        return None
    state = str(summary.get("state") or "")
    when = (_moment(summary.get("ended")) or _moment(summary.get("started"))
            or _moment(summary.get("queued")) or time.time())  # fmt: skip
    text, severity = _outcome(name, state, summary.get("error"), summary.get("progress"))
    return Entry(when, job_word(name), text, severity, ident, name)


def entry_of_event(event: dict, now: float | None = None) -> Entry | None:
    """A row for one event that is news by itself; None for the rest (a job's own events
    go through ``ActivityModel.feed``, presence is on the Friends tab)."""
    now = time.time() if now is None else now
    kind = event.get("type")
    name = str(event.get("name") or "")
    if kind == "AuditDone":
        lost = int(event.get("missing") or 0) + int(event.get("damaged") or 0)
        if lost:
            return Entry(now, _tr("Check"), _tr(
                "%1 had lost or damaged %2 pieces of your backup; they are being stored "
                "again.").replace("%1", name).replace("%2", str(lost)), Severity.WARNING)
        return Entry(now, _tr("Check"), _tr("%1 still holds your backup (%2 pieces checked).")
                     .replace("%1", name).replace("%2", str(event.get("proved") or 0)),
                     Severity.DONE)  # fmt: skip
    if kind == "RepairDone":
        text = _tr("Stored %1 pieces of your backup again (%2).").replace(
            "%1", str(event.get("shares") or 0)).replace("%2", str(event.get("why") or ""))
        return Entry(now, _tr("Repair"), text, Severity.DONE)
    if kind == "SafetyChanged":
        survives, promised = int(event.get("survives_losing") or 0), event.get("promised")
        text = (_tr("Your backup now survives losing 1 friend.") if survives == 1 else
                _tr("Your backup now survives losing %1 friends.").replace("%1", str(survives)))
        short = isinstance(promised, int) and survives < promised
        if short:
            text += " " + _tr("You asked for %1.").replace("%1", str(promised))
        return Entry(now, _tr("Safety"), text, Severity.WARNING if short else Severity.DONE)
    if kind == "FriendUnseen":
        days = int(float(event.get("days") or 0))
        return Entry(now, _tr("Warning"), _tr(
            "%1 has not been online for %2 days. If this goes on, their part of your backup "
            "is stored with other friends.").replace("%1", name).replace("%2", str(days)),
            Severity.WARNING)  # fmt: skip
    if kind == "QuotaNearlyFull":
        used, quota = format_size(int(event.get("used") or 0)), format_size(
            int(event.get("quota") or 0))
        text = (_tr("The space %1 gives you is nearly full: %2 of %3.")
                if event.get("whose") == "theirs"
                else _tr("The space you give %1 is nearly full: %2 of %3."))  # fmt: skip
        return Entry(now, _tr("Warning"), text.replace("%1", name).replace("%2", used)
                     .replace("%3", quota), Severity.WARNING)  # fmt: skip
    if kind == "UpkeepNeeds":
        text = " ".join(str(event.get(k) or "") for k in ("problem", "advice")).strip()
        return Entry(now, _tr("Warning"), text, Severity.WARNING)
    if kind == "HeadRolledBack":
        return Entry(now, _tr("Warning"), _tr(
            "%1 gave an older copy of your backup list than before; what it lost is stored "
            "again.").replace("%1", str(event.get("friend") or "")), Severity.WARNING)
    return None


class ActivityModel(RowsModel):
    """The rows, newest first. ``set_jobs`` takes the ``jobs`` answer; ``feed`` takes each
    event of the watch (public: the tests feed dicts)."""

    COLUMNS = len(Column)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._jobs: dict[int, Entry] = {}
        self._news: list[Entry] = []
        self._rows: list[Entry] = []
        self._home = ""
        self._soon: QTimer | None = None

    def follow(self, home: str, watch: Watch) -> None:
        """Keep up with the daemon of ``home``: every event of its watch, and its ``jobs``
        answer when it is found and after a job ends (a summary has the error's kind)."""
        self._home = home
        self._soon = QTimer(self, singleShot=True, interval=300, timeout=self._ask_jobs)
        watch.event.connect(self.feed)
        watch.watching.connect(lambda _watching: self._ask_jobs())
        watch.state_changed.connect(self._daemon)

    def _ask_jobs(self) -> None:
        request = Request(self._home, "jobs", parent=self)
        request.result.connect(lambda jobs: self.set_jobs(jobs if isinstance(jobs, list) else []))
        request.start()

    def _daemon(self, state: DaemonState) -> None:
        if state is DaemonState.NOT_RUNNING and self._jobs:
            self.daemon_gone()

    def entries(self) -> list[Entry]:
        return list(self._rows)

    def set_jobs(self, summaries: list[dict]) -> None:
        """The daemon's ``jobs`` answer: the jobs it knows, replacing those it told before
        (ids count from 1 again when a daemon starts: the old daemon's rows are dropped
        where the new one's take their ids)."""
        for summary in summaries:
            if isinstance(summary, dict) and (entry := entry_of_job(summary)) is not None:
                self._jobs[entry.job] = entry
        self._rebuild()

    def add(self, entry: Entry | None) -> None:
        """One row of news told at its own time (``entry_of_event``)."""
        if entry is not None:
            self._news.append(entry)
            del self._news[:-MAX_ROWS]
            self._rebuild()

    def daemon_gone(self) -> None:
        """The daemon stopped: its jobs' rows become history (the next daemon counts ids
        from 1 again), and what was still running is said to have stopped with it."""
        for entry in self._jobs.values():
            if entry.severity is Severity.RUNNING:
                entry = replace(entry, when=time.time(), severity=Severity.FAILED,
                                text=_tr("Stopped when the backup service stopped."))
            self._news.append(replace(entry, job=None))
        self._jobs.clear()
        del self._news[:-MAX_ROWS]
        self._rebuild()

    def feed(self, event: dict, job: object = None) -> None:
        kind, ident = event.get("type"), event.get("job")
        if kind in ("JobStarted", "JobFinished") and event.get("name") in SHOWN_JOBS \
                and isinstance(ident, int):  # fmt: skip
            name = str(event["name"])
            state = "running" if kind == "JobStarted" else str(event.get("state") or "")
            text, severity = _outcome(name, state, event.get("error") or None, None)
            self._jobs[ident] = Entry(time.time(), job_word(name), text, severity, ident, name)
            self._rebuild()
            if kind == "JobFinished" and self._soon is not None:
                self._soon.start()  # its summary words a failure by its kind
        elif kind == "JobProgress" and ident in self._jobs:
            old = self._jobs[ident]
            if old.severity is Severity.RUNNING:
                text, _ = _outcome(old.name, "running", None, event)
                if text != old.text:
                    self._jobs[ident] = new = replace(old, text=text)
                    if old in self._rows:  # (not when 500 newer rows pushed it out)
                        row = self._rows.index(old)
                        self._rows[row] = new
                        self.dataChanged.emit(self.index(row, Column.TEXT),
                                              self.index(row, Column.TEXT))  # fmt: skip
        else:
            self.add(entry_of_event(event))

    def _rebuild(self) -> None:
        rows = sorted([*self._jobs.values(), *self._news], key=lambda e: -e.when)[:MAX_ROWS]
        if rows != self._rows:
            self.beginResetModel()
            self._rows = rows
            self.endResetModel()

    def header(self, section: int) -> str:
        return {Column.WHEN: self.tr("When"), Column.WHAT: self.tr("What"),
                Column.TEXT: self.tr("What happened")}[Column(section)]  # fmt: skip

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        entry, column = self._rows[index.row()], Column(index.column())
        if role == SEVERITY_ROLE:
            return entry.severity
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole,
                    Qt.ItemDataRole.ToolTipRole):  # fmt: skip
            if column is Column.WHEN:
                return clock(entry.when)
            return entry.what if column is Column.WHAT else entry.text
        return None


def clock(moment: float, now: float | None = None) -> str:
    """``14:05`` today, ``Mon 3 Dec 14:05`` before."""
    at = datetime.fromtimestamp(moment)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    return at.strftime("%H:%M") if at.date() == today else at.strftime("%a %d %b %H:%M")
