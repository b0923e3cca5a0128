"""The daemon: one long-running node per profile.

It serves friends (the storage service), answers the control socket (the CLI
and the tray app: protocol 2, control.py), and runs the scheduler. Every job,
asked by a client or by the scheduler, is in one job table (jobtable.py) and
its events go to one bus (watch.py) that ``watch`` clients subscribe to, with
anything else the daemon has news of (``publish``). Jobs that touch the backup
state run one at a time (``jobs_lock``); invites, the friend list, settings,
pages of a local manifest and ``status`` (status.py) do not wait for them.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from p2pbackup import runtime
from p2pbackup.daemon import browse, control, jobs, status
from p2pbackup.daemon.auditor import Auditor
from p2pbackup.daemon.friends import Friends
from p2pbackup.daemon.jobtable import Job, JobTable
from p2pbackup.daemon.node import Node, running_node
from p2pbackup.daemon.pairing import NODE_JOBS, run_node_job
from p2pbackup.daemon.rendezvous import PointLink
from p2pbackup.daemon.replacer import Replacer
from p2pbackup.daemon.retention import Retention
from p2pbackup.daemon.scheduler import Scheduler
from p2pbackup.daemon.session import session
from p2pbackup.daemon.settings import SETTINGS_JOBS, run_settings_job
from p2pbackup.daemon.watch import WATCH_LIMIT, Bus, Outbox
from p2pbackup.engine import events as ev
from p2pbackup.engine.failures import one_error
from p2pbackup.errors import ConfigError, P2PBackupError
from p2pbackup.storage.profile import Profile

log = logging.getLogger(__name__)

FIRST_REGISTRATION_WAIT = 5.0  # seconds the daemon waits to be registered before "running"


class Daemon:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.jobs_lock = trio.Lock()
        self.bus = Bus()
        self.jobs = JobTable(self.bus.publish)
        self.facts = status.Facts()
        self.cancel_scope: trio.CancelScope | None = None  # the daemon's, to stop it
        self.scheduler = Scheduler(self)
        self.friends = node.friends = Friends(node, events=self.publish)
        self.point = PointLink(node, events=self.publish)  # registration and relay slot
        self.auditor = Auditor(self, events=self.publish)  # audits friends, repairs what they lack
        self.retention = Retention(self, events=self.publish)  # after backups; quota warnings
        self.replacer = Replacer(self, events=self.publish)  # friends unseen, back, quotas

    def publish(self, event: ev.Event) -> None:
        """News for every ``watch`` client (presence, warnings): the daemon's one bus."""
        self.bus.publish(event)

    async def request(self, name: str, params: dict, reply: Outbox) -> Any:
        """A control request. ``watch``, ``jobs``, ``cancel`` and ``status`` are answered by
        the daemon itself; anything else is a job, told to the client by its id first."""
        if name == "watch":
            reply.limit = WATCH_LIMIT
            reply.put({"watching": {"jobs": [job.summary() for job in self.jobs.active()]}})
            with self.bus.subscribed(reply):
                await reply.gone.wait()  # until the client hangs up
            return None
        if name == "jobs":
            return self.jobs.listing()
        if name == "cancel":
            return self.jobs.cancel(params.get("id")).summary()
        # status: kept state at once (the daemon works it out again after every job that
        # changes it, and friends online are live); checked first, as a job of its own, only
        # when asked to or never yet, and never behind a job holding the lock.
        if name == "status":
            cached, check = params.pop("cached", False), params.pop("check", False)
            known = self.facts.kept is not None
            if self.jobs_lock.locked() or cached or (known and not check):
                return status.answer(self)
        if name not in SETTINGS_JOBS and name not in NODE_JOBS and name not in jobs.JOBS:
            raise ConfigError(f"There is no job called {name[:64]!r}.")  # before it gets an id
        result = await self.run_job(name, params, reply=reply)
        return status.answer(self) if name == "status" else result

    async def run_job(
        self, name: str, params: dict, events: ev.EventSink = ev.ignore, *,
        source: str = "client", reply: Outbox | None = None,
    ) -> Any:  # fmt: skip
        """Run job ``name`` as a job of the table; its events go to the bus and to ``reply``
        (or ``events``). JobCancelled if a client cancels it."""

        def _client(event: ev.Event, job_id: int | None) -> None:
            if reply is not None:
                reply.event(event, job_id)
            else:
                events(event)

        def _accepted(job: Job) -> None:
            if reply is not None:
                reply.put({"job": job.summary()})  # its id, first

        job = self.jobs.new(name, source, _client, _accepted)
        sink = self.jobs.events(job)
        with one_error():  # a failure inside a task group is still one error for the client
            return await self.jobs.run(job, lambda: self._run_job(job, params, sink))

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled (or the shutdown job): friends, control socket, scheduler."""
        async with trio.open_nursery() as nursery:
            self.cancel_scope = nursery.cancel_scope  # the shutdown job stops the daemon
            await nursery.start(self.friends.run)  # friends connected before any job
            where = control.address(self.node.profile.home)
            await nursery.start(control.serve, where, self.request)
            nursery.start_soon(self.scheduler.run)
            nursery.start_soon(self.point.run)  # kept up at the rendezvous point, if any
            nursery.start_soon(self.first_check)
            nursery.start_soon(self.auditor.run)
            nursery.start_soon(self.retention.run)
            nursery.start_soon(self.replacer.run)
            # Findable at the point before "running": a friend's one-shot command started
            # right after must find it there. A point that does not answer delays no more.
            with trio.move_on_after(FIRST_REGISTRATION_WAIT):
                await self.point.tried.wait()
            task_status.started()

    async def first_check(self) -> None:
        """What status keeps, worked out once as the daemon starts (if it has friends)."""
        if not self.node.catalog.friends():
            return
        try:
            await self.run_job("status", {}, source="daemon")
        except P2PBackupError as exc:
            log.warning("the first status check failed: %s", exc.message)
        except Exception as exc:  # a bug here must not stop the node friends rely on
            log.error("the first status check failed", exc_info=exc)

    async def _run_job(self, job: Job, params: dict, events: ev.EventSink) -> Any:
        name = job.name
        if name in SETTINGS_JOBS:  # what a settings window changes: daemon/settings.py
            self.jobs.started(job)
            return await run_settings_job(self, name, params, events)
        if name in NODE_JOBS:
            self.jobs.started(job)
            return await run_node_job(self.node, name, params, events)
        if (copy := await browse.from_copy(self.node.profile, name, params)) is not None:
            return copy  # a page of a snapshot this device holds: no friend, no job lock
        async with self.jobs_lock:
            self.jobs.started(job)
            result = await self._session_job(name, params, events)
            runtime.release_memory()  # the job's buffers go back to the system, not the next job
        if name == "status":
            result["schedule"] = self.scheduler.status()
        return result

    async def _session_job(self, name: str, params: dict, events: ev.EventSink) -> Any:
        async with session(self.node, events) as s:
            result = await jobs.run(s, name, params)
            if name == "status":
                self.facts.remember(result)
            elif name in status.CHANGE_SAFETY:
                await self._check_again(s)
            return result

    async def _check_again(self, s) -> None:
        """Safety after a job that changed it, for status to tell without friends; a
        failure here is no failure of the job, which is done."""
        try:
            self.facts.remember(await jobs.status(s))
        except P2PBackupError as exc:
            log.warning("status after the job: %s", exc.message)
        except Exception as exc:  # a bug: to the log, and the job's own result still stands
            log.error("status after the job failed", exc_info=exc)


async def run_daemon(
    profile: Profile,
    listen: list[str] | None = None,
    rendezvous: str | None = None,
    serve_rendezvous: bool = False,
    *,
    public_relay: bool = False,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    async with running_node(
        profile, listen, rendezvous, serve_rendezvous, public_relay=public_relay, announce=True
    ) as node:
        daemon = Daemon(node)
        async with trio.open_nursery() as nursery:
            await nursery.start(daemon.serve)
            task_status.started(node)
