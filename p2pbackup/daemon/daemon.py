"""The daemon: one long-running node per profile.

It serves friends (the storage service), answers the control socket (the CLI
and the tray app send it jobs), and runs the scheduler. Jobs that touch the
backup state run one at a time; invites and the friend list do not wait for
them.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from p2pbackup import runtime
from p2pbackup.daemon import browse, control, jobs
from p2pbackup.daemon.friends import Friends, log_events
from p2pbackup.daemon.node import Node, running_node
from p2pbackup.daemon.pairing import NODE_JOBS, run_node_job
from p2pbackup.daemon.rendezvous import PointLink
from p2pbackup.daemon.scheduler import Scheduler
from p2pbackup.daemon.session import session
from p2pbackup.daemon.settings import SETTINGS_JOBS, run_settings_job
from p2pbackup.engine import events as ev
from p2pbackup.engine.failures import one_error
from p2pbackup.storage.profile import Profile

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.jobs_lock = trio.Lock()
        self.scheduler = Scheduler(self)
        # TODO(lead): events=self.publish once the daemon has one event bus (CONTROL)
        self.friends = node.friends = Friends(node, events=log_events)
        self.point = PointLink(node)  # registration and relay slot at the rendezvous point

    async def run_job(self, name: str, params: dict, events: ev.EventSink) -> Any:
        with one_error():  # a failure inside a task group is still one error for the client
            return await self._run_job(name, params, events)

    async def _run_job(self, name: str, params: dict, events: ev.EventSink) -> Any:
        if name in SETTINGS_JOBS:  # what a settings window changes: daemon/settings.py
            return await run_settings_job(self, name, params, events)
        if name in NODE_JOBS:
            return await run_node_job(self.node, name, params, events)
        if (copy := await browse.from_copy(self.node.profile, name, params)) is not None:
            return copy  # a page of a snapshot this device holds: no friend, no job lock
        async with self.jobs_lock:
            result = await self._session_job(name, params, events)
            runtime.release_memory()  # the job's buffers go back to the system, not the next job
        if name == "status":
            result["schedule"] = self.scheduler.status()
            result["rendezvous"] = self.point.state()  # registered, relay slot, since, error
        return result

    async def _session_job(self, name: str, params: dict, events: ev.EventSink) -> Any:
        async with session(self.node, events) as s:
            return await jobs.run(s, name, params)


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
        profile, listen, rendezvous, serve_rendezvous, public_relay=public_relay
    ) as node:
        daemon = Daemon(node)
        async with trio.open_nursery() as nursery:
            daemon.cancel_scope = nursery.cancel_scope  # the shutdown job stops the daemon
            await nursery.start(daemon.friends.run)  # friends connected before any job
            await nursery.start(control.serve, control.address(profile.home), daemon.run_job)
            nursery.start_soon(daemon.scheduler.run)
            nursery.start_soon(daemon.point.run)  # kept up at the rendezvous point, if any
            task_status.started(node)
