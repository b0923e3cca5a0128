"""Every job the daemon runs, from any client and from the scheduler, in one table.

A job gets an id (counting from 1 for the daemon's life), a state, its times,
its last progress and its result or error. The table publishes ``JobQueued``,
``JobStarted``, ``JobProgress`` (at most every ``PROGRESS_EVERY`` s) and
``JobFinished`` on the daemon's bus, with each job's own events, and stops a
job on ``cancel``: its cancel scope covers the wait for the job lock too, so a
queued job is cancelled as well as a running one.

Whether a job waits for the lock is the daemon's business; it calls ``started``
when the job really begins.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from p2pbackup import errors
from p2pbackup.daemon.times import iso_time
from p2pbackup.engine import events as ev
from p2pbackup.engine.failures import leaves
from p2pbackup.storage.diskerrors import first_storage_error

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.5  # seconds between JobProgress events of one job
KEEP_FINISHED = 50  # finished jobs still listed
# Results kept after the client had them (status shows them): not every page of an ls.
KEEP_RESULTS = frozenset({"backup", "restore", "verify", "forget"})


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


Publish = Callable[[ev.Event, "int | None"], None]


class Meter:
    """A job's events folded into the progress a window draws, with totals."""

    def __init__(self, job: int) -> None:
        self.progress = ev.JobProgress(job, "")
        self._began: float | None = None  # when the first byte was done: the rate's start

    def feed(self, event: ev.Event) -> bool:
        """Whether ``event`` moved the progress."""
        p = self.progress
        if isinstance(event, ev.ScanProgress):
            p = replace(p, phase="sending" if event.done else "scanning",
                        scanned_files=event.files, scanned_bytes=event.bytes,
                        total_files=event.changed_files,
                        total_bytes=event.changed_bytes)  # fmt: skip
        elif isinstance(event, ev.FileDone):
            p = replace(p, phase=p.phase or "sending", done_files=p.done_files + 1,
                        done_bytes=p.done_bytes + event.size)  # fmt: skip
        elif isinstance(event, ev.RestoreProgress):
            p = replace(p, phase="restoring", total_files=event.files_total,
                        total_bytes=event.bytes_total, done_files=event.files,
                        done_bytes=event.bytes)  # fmt: skip
        elif isinstance(event, ev.Progress):
            p = replace(p, phase=event.what, total_files=event.total, done_files=event.done)
        else:
            return False
        self.progress = replace(p, seconds_left=self._left(p))
        return True

    def _left(self, p: ev.JobProgress) -> float | None:
        """Bytes still to do at the rate so far; unknown while the scan still adds to them."""
        now = time.monotonic()
        if self._began is None and (p.done_bytes or p.done_files):
            self._began = now
        if p.phase == "scanning" or self._began is None:
            return None
        done, total = (p.done_bytes, p.total_bytes) if p.total_bytes else (p.done_files,
                                                                         p.total_files)  # fmt: skip
        if done >= total:
            return 0.0
        elapsed = now - self._began
        if not done or elapsed < 1.0:
            return None
        return round((total - done) * elapsed / done, 1)


@dataclass(eq=False)
class Job:
    id: int
    name: str
    source: str  # "client", "schedule", "daemon"
    queued_at: float = field(default_factory=time.time)
    state: JobState = JobState.QUEUED
    started_at: float | None = None
    ended_at: float | None = None
    result: Any = None
    error: dict | None = None  # {"message", "kind", "exit_code"}
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    client: Publish = lambda event, job: None  # the client that asked, if any
    meter: Meter = field(init=False)
    _told: float = 0.0  # when its progress was last published

    def __post_init__(self) -> None:
        self.meter = Meter(self.id)

    @property
    def active(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)

    def summary(self) -> dict:
        """The job as the control socket lists it (``jobs``, ``status``)."""
        progress = None
        if self.meter.progress.phase:  # a JobProgress without its type and job id
            progress = ev.to_dict(self.meter.progress)
            del progress["type"], progress["job"]
        out = {
            "id": self.id, "name": self.name, "source": self.source, "state": str(self.state),
            "queued": iso_time(self.queued_at), "started": iso_time(self.started_at),
            "ended": iso_time(self.ended_at), "progress": progress,
        }  # fmt: skip
        if self.error is not None:
            out["error"] = self.error
        return out


def error_of(exc: BaseException) -> errors.P2PBackupError:
    """What the user is told of a failure: its own words, the disk's, or "internal error"."""
    if isinstance(exc, errors.P2PBackupError):
        return exc
    found = [e for e in leaves(exc) if isinstance(e, errors.P2PBackupError)]
    if found:
        return found[0]
    return first_storage_error(leaves(exc)) or errors.InternalError("internal error, see the log")


def error_dict(exc: errors.P2PBackupError) -> dict:
    return {"message": exc.message, "kind": type(exc).__name__, "exit_code": exc.exit_code}


class JobTable:
    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self._next = 1
        self._jobs: OrderedDict[int, Job] = OrderedDict()
        self._finished: deque[int] = deque()
        self.last: dict[str, Job] = {}  # the last job of each name that ended

    def new(
        self, name: str, source: str = "client", client: Publish | None = None,
        accepted: Callable[[Job], None] | None = None,
    ) -> Job:  # fmt: skip
        """A job, queued; ``accepted`` hears it before any event of it (its client: its id)."""
        job = Job(self._next, name, source)
        if client is not None:
            job.client = client
        self._next += 1
        self._jobs[job.id] = job
        if accepted is not None:
            accepted(job)
        self._tell(job, ev.JobQueued(job.id, name, source))
        return job

    def get(self, job_id: object) -> Job:
        job = self._jobs.get(job_id) if type(job_id) is int else None
        if job is None:
            raise errors.ConfigError(
                f"There is no job {job_id!r} (see 'p2pbackup jobs'; finished jobs are "
                f"forgotten after the last {KEEP_FINISHED})."
            )
        return job

    def listing(self) -> list[dict]:
        return [job.summary() for job in self._jobs.values()]

    def active(self) -> list[Job]:
        return [job for job in self._jobs.values() if job.active]

    def cancel(self, job_id: object) -> Job:
        job = self.get(job_id)
        if job.active:
            log.info("job %d (%s) cancelled", job.id, job.name)
            job.scope.cancel()
        return job

    def events(self, job: Job) -> ev.EventSink:
        """The sink a job's work reports to: the bus, the client that asked, the meter."""

        def _sink(event: ev.Event) -> None:
            self._tell(job, event)
            if job.meter.feed(event):
                now = time.monotonic()
                if now - job._told >= PROGRESS_EVERY:
                    job._told = now
                    self._tell(job, job.meter.progress)

        return _sink

    def started(self, job: Job) -> None:
        if job.state is JobState.QUEUED:
            job.state, job.started_at = JobState.RUNNING, time.time()
            self._tell(job, ev.JobStarted(job.id, job.name))

    async def run(self, job: Job, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``work`` as ``job``; errors.JobCancelled if it was cancelled."""
        try:
            with job.scope:
                result = await work()
        except BaseException as exc:
            if isinstance(exc, Exception):
                self._end(job, JobState.FAILED, error=error_dict(error_of(exc)))
            else:  # the daemon stops (or Ctrl-C in a test): the job did not finish
                self._end(job, JobState.CANCELLED)
            raise
        if job.scope.cancelled_caught:
            self._end(job, JobState.CANCELLED)
            raise errors.JobCancelled(f"Job {job.id} ({job.name}) was cancelled.")
        self._end(job, JobState.FINISHED, result=result)
        return result

    def _end(self, job: Job, state: JobState, result: Any = None, error: dict | None = None):
        self.started(job)
        job.state, job.ended_at, job.error = state, time.time(), error
        job.result = result if job.name in KEEP_RESULTS else None
        if job.meter.progress.phase:
            self._tell(job, job.meter.progress)
        seconds = round(job.ended_at - (job.started_at or job.ended_at), 3)
        message = error["message"] if error else ""
        self._tell(job, ev.JobFinished(job.id, job.name, str(state), message, seconds))
        self.last[job.name] = job
        self._finished.append(job.id)
        while len(self._finished) > KEEP_FINISHED:
            self._jobs.pop(self._finished.popleft(), None)

    def _tell(self, job: Job, event: ev.Event) -> None:
        self._publish(event, job.id)
        job.client(event, job.id)
