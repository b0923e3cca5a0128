"""Whole nodes in one process: profiles on disk, real libp2p hosts on 127.0.0.1,
paired with real invite codes. The owner's jobs run against its friends' nodes."""

from __future__ import annotations

import math
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from p2pbackup.core.keys import new_secret
from p2pbackup.daemon import jobs
from p2pbackup.daemon.node import Node, running_node
from p2pbackup.daemon.pairing import NODE_JOBS, invite_friend, join_friend, run_node_job
from p2pbackup.daemon.session import session
from p2pbackup.daemon.settings import SETTINGS_JOBS, run_settings_job
from p2pbackup.engine import events as ev
from p2pbackup.engine.failures import one_error
from p2pbackup.storage.profile import Profile

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]


def make_profile(root, name: str, secret: bytes | None = None, **settings) -> Profile:
    profile = Profile(str(root / name))
    profile.create(secret or new_secret())
    profile.update_settings(name=name, **settings)
    return profile


async def pair(inviter: Node, joiner: Node, offer: int = 1 << 30) -> None:
    ready: list[str] = []

    def _sink(event: ev.Event) -> None:
        if isinstance(event, ev.InviteReady):
            ready.append(event.code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(invite_friend, inviter, _sink, offer, 1.0)
        while not ready:
            await trio.sleep(0.01)
        await join_friend(joiner, ev.ignore, ready[0], offer, inviter.addresses()[0])


class Nodes:
    """Running nodes by name, each in a task of its own, so any one can stop at any time."""

    def __init__(self, root, nursery: trio.Nursery) -> None:
        self.root = root
        self.profiles: dict[str, Profile] = {}
        self.nodes: dict[str, Node] = {}
        self._nursery = nursery
        self._stops: dict[str, trio.Event] = {}
        self._stopped: dict[str, trio.Event] = {}

    async def _serve(self, name: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        stop = self._stops[name] = trio.Event()
        stopped = self._stopped[name] = trio.Event()
        try:
            # A node started again listens where it did, as a real one does.
            listen = None if self.profiles[name].settings().get("listen") else LOOPBACK
            async with running_node(self.profiles[name], listen) as node:
                task_status.started(node)
                await stop.wait()
        finally:
            stopped.set()

    async def start(self, name: str, secret: bytes | None = None, **settings) -> Node:
        if name not in self.profiles:
            self.profiles[name] = make_profile(self.root, name, secret, **settings)
        self.nodes[name] = await self._nursery.start(self._serve, name)
        return self.nodes[name]

    async def stop(self, name: str) -> None:
        self.nodes.pop(name)
        self._stops.pop(name).set()
        await self._stopped.pop(name).wait()

    async def close(self) -> None:
        for name in list(self._stops):
            await self.stop(name)

    async def run(self, name: str, job: str, events: ev.EventSink = ev.ignore, **params):
        with one_error():  # as the CLI and the daemon report it: one error, not a group
            if job in NODE_JOBS:
                return await run_node_job(self.nodes[name], job, params, events)
            if job in SETTINGS_JOBS:
                return await run_settings_job(self.nodes[name], job, params, events)
            async with session(self.nodes[name], events) as s:
                return await jobs.run(s, job, params)


@asynccontextmanager
async def started(root, owner: str = "laptop", friends=("alice", "bob", "carol", "dave"),
                  **owner_settings):  # fmt: skip
    async with trio.open_nursery() as nursery:
        nodes = Nodes(root, nursery)
        try:
            await nodes.start(owner, **owner_settings)
            for name in friends:
                await nodes.start(name)
                await pair(nodes.nodes[owner], nodes.nodes[name])
            yield nodes
        finally:
            await nodes.close()


@pytest.fixture
async def grid(tmp_path):
    async with started(tmp_path) as nodes:
        yield nodes


def run_on_mock_clock(main) -> None:
    """Run ``main`` on trio's mock clock, which stands still while worker threads work.

    The clock jumps to the next deadline whenever every task waits; a task waiting for a
    thread counts as waiting, so a rebuild's threads would let simulated time run on (a
    day in a few real seconds, polled by ``_settle``'s sleeps, more the busier the
    machine) and a friend be warned about once more than the days the test counts."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    in_thread = trio.to_thread.run_sync
    working = 0

    async def clock_still(*args, **kwargs):
        nonlocal working
        working += 1
        clock.autojump_threshold = math.inf
        try:
            return await in_thread(*args, **kwargs)
        finally:
            working -= 1
            if not working:
                clock.autojump_threshold = 0

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trio.to_thread, "run_sync", clock_still)
        trio.run(main, clock=clock)
