"""My friends' nodes, kept connected for as long as the daemon runs.

Each friend in the catalog gets a task of its own: it locates the friend's
node (net.locate), keeps one share store to it (one connection, one
pipelined stream) and asks ``stat`` now and then. A friend that answers is
online; one that stops answering, or whose connection breaks, is offline at
once and tried again with a growing pause (1 s doubling to 60 s, back to 1 s
when it answers), sooner when mDNS hears it or a job wants it. Each change
is an event (``FriendOnline``, ``FriendOffline``, ``FriendUsage``).

Jobs borrow these stores (``borrowed``): friends that are away are left out
at no cost, and nobody dials anyone for a job. The catalog is the list of
friends: pairing and unfriending are seen at the next job, presence query or
heartbeat (``refresh``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import trio

from p2pbackup.daemon.grid import Grid, friend_key
from p2pbackup.daemon.node import Node
from p2pbackup.daemon.times import iso_time
from p2pbackup.engine import events as ev
from p2pbackup.errors import P2PBackupError
from p2pbackup.net import locate
from p2pbackup.net.client import RemoteShareStore
from p2pbackup.storage.catalog import Friend
from p2pbackup.storage.store import Usage

log = logging.getLogger(__name__)

# A stat every HEARTBEAT s, answered within BEAT_TIMEOUT s: a friend that vanishes without
# closing its connection (a laptop shut, a cable pulled) is offline within 14 s.
HEARTBEAT = 9.0
BEAT_TIMEOUT = 5.0
FIRST_CONTACT_TIMEOUT = 15.0  # locating, dialling (maybe through the relay), hello, stat
RETRY_FIRST, RETRY_MAX = 1.0, 60.0
MIN_GAP = 1.0  # between two tries, however often mDNS or jobs ask
NUDGE_AFTER = 5.0  # a job retries an offline friend at most this often
FIRST_TRY_WAIT = 5.0  # a job arriving as the daemon starts waits this long for first tries


def log_events(event: ev.Event) -> None:
    """A sink for presence news until the daemon has one bus for every event."""
    log.info("%s", ev.to_dict(event))


def _news():
    """A ``wait_until`` test that holds from the first news on: its first look is at
    what was heard before."""
    looks = iter((False,))
    return lambda _heard: next(looks, True)


@dataclass
class _Link:
    """One friend as the daemon keeps it."""

    friend: Friend
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    store: RemoteShareStore | None = None
    online: bool = False
    usage: Usage | None = None
    rtt_ms: float | None = None
    path: str | None = None
    since: float = field(default_factory=time.time)  # went online or offline (wall clock)
    last_try: float = -math.inf  # trio time of the last attempt to reach it
    tried: trio.Event = field(default_factory=trio.Event)  # its first attempt is over
    wake: trio.Event = field(default_factory=trio.Event)

    def woken(self) -> bool:
        if not self.wake.is_set():
            return False
        self.wake = trio.Event()
        return True


class Friends:
    def __init__(self, node: Node, events: ev.EventSink = ev.ignore) -> None:
        self.node = node
        self.events = events
        self._links: dict[str, _Link] = {}  # friend key (owner id hex) -> link
        self._nursery: trio.Nursery | None = None
        self._restat: trio.Event | None = None  # set when usage read after a job is in

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Keep every friend connected until cancelled (the daemon's life)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.refresh()
            if self.node.lan is not None:
                nursery.start_soon(self._hear_lan, self.node.lan)
            task_status.started()
            while True:  # the catalog may change behind the daemon's back (the CLI)
                await trio.sleep(HEARTBEAT)
                self.refresh()

    def refresh(self) -> None:
        """Friends paired since are connected; friends unfriended are let go."""
        if self._nursery is None:
            return
        current = {friend_key(f): f for f in self.node.catalog.friends()}
        for key in self._links.keys() - current.keys():
            self._links.pop(key).scope.cancel()
        for key, friend in current.items():
            if key in self._links:
                self._links[key].friend = friend  # renamed, moved
            else:
                self._links[key] = _Link(friend)
                self._nursery.start_soon(self._keep, self._links[key])

    def presence(self) -> list[dict]:
        self.refresh()
        rows = []
        for key, link in sorted(self._links.items(), key=lambda item: item[1].friend.name):
            rows.append({
                "name": link.friend.name,
                "owner_id": key,
                "online": link.online,
                "last_seen": iso_time(self.node.catalog.last_seen(link.friend.owner_id)),
                "rtt_ms": link.rtt_ms if link.online else None,
                "path": link.path if link.online else None,
                "since": iso_time(link.since),
            })  # fmt: skip
        return rows

    def usage(self) -> dict[bytes, Usage | None]:
        """What each friend last said it stores for me, and my quota there; None: offline."""
        self.refresh()
        return {
            link.friend.owner_id: link.usage if link.online else None
            for link in self._links.values()
        }

    async def settled(self, timeout: float) -> None:
        """Until every friend was tried once (online or not), ``timeout`` s at most."""
        with trio.move_on_after(timeout):
            for link in list(self._links.values()):
                await link.tried.wait()

    @asynccontextmanager
    async def borrowed(self) -> AsyncIterator[Grid]:
        """A job's grid: the friends online now, on the daemon's connections, which the job
        must not close. Friends away are tried again in the background, never waited for."""
        self.refresh()
        await self.settled(FIRST_TRY_WAIT)  # only as the daemon starts, or just paired
        now = trio.current_time()
        for link in self._links.values():
            if not link.online and now - link.last_try >= NUDGE_AFTER:
                link.wake.set()
        if self._restat is not None:  # what the last job stored, read back
            with trio.move_on_after(BEAT_TIMEOUT):
                await self._restat.wait()
        links = dict(self._links)
        grid = Grid(friends={key: link.friend for key, link in links.items()})
        for key, link in links.items():
            if link.online and link.store is not None and link.usage is not None:
                grid.stores[key], grid.usage[key] = link.store, link.usage
        try:
            yield grid
        finally:
            self.refresh()  # an unfriend is let go now
            if self._nursery is not None and self._restat is None:
                self._restat = trio.Event()
                self._nursery.start_soon(self._read_usage, self._restat)

    async def _read_usage(self, done: trio.Event) -> None:
        """After a job, what each online friend stores for me (the next job plans with it)."""
        try:
            async with trio.open_nursery() as nursery:
                for link in list(self._links.values()):
                    if link.online:
                        nursery.start_soon(self._stat_or_wake, link)
        finally:
            self._restat = None
            done.set()

    async def _stat_or_wake(self, link: _Link) -> None:
        if not await self._stat(link, BEAT_TIMEOUT):
            link.wake.set()  # the heartbeat decides whether it is away

    async def _keep(self, link: _Link) -> None:
        """One friend, for as long as it is a friend: reach it, watch it, try again."""
        with link.scope:
            while True:
                try:
                    async with AsyncExitStack() as stack:
                        await self._keep_on(link, stack)
                except Exception:  # a bug here must not stop the daemon serving the others
                    log.exception("keeping friend %s connected failed", link.friend.name)
                    if link.online:
                        self._went_offline(link)
                    link.store = None
                    link.tried.set()
                    await trio.sleep(RETRY_MAX)

    async def _keep_on(self, link: _Link, stack: AsyncExitStack) -> None:
        pause = RETRY_FIRST
        while True:
            await trio.sleep_until(link.last_try + MIN_GAP)  # never a tight loop
            link.last_try = trio.current_time()
            reached = await self._reach(link, stack)
            link.tried.set()
            if reached:
                pause = RETRY_FIRST
                await self._beat(link)
                self._went_offline(link)
            with trio.move_on_after(pause):
                await link.wake.wait()
            link.woken()
            pause = min(RETRY_MAX, pause * 2)

    async def _reach(self, link: _Link, stack: AsyncExitStack) -> bool:
        """Locate the friend's node and ask it ``stat``; whether it answered."""
        reach = self.node.reach()
        began, peer = trio.current_time(), None
        with trio.move_on_after(FIRST_CONTACT_TIMEOUT):
            peer = await locate.locate(reach, link.friend, self.node.catalog.set_addresses)
        if peer is None:
            return False
        if link.store is None:  # entered here, not in a deadline's scope: it lives on
            link.store = await stack.enter_async_context(
                locate.store_at(reach, peer, link.friend.name)
            )
            link.store.on_broken = lambda: link.wake.set()  # its current event
        link.store.move_to(peer)
        link.store.retry_now()
        try:
            with trio.fail_at(began + FIRST_CONTACT_TIMEOUT):
                await link.store.stat()  # the dial and the hello
        except (P2PBackupError, trio.TooSlowError) as exc:
            reason = exc.message if isinstance(exc, P2PBackupError) else "no answer in time"
            log.info("friend %s is away: %s", link.friend.name, reason)
            return False
        if not await self._stat(link, BEAT_TIMEOUT):  # timed on the open stream
            return False
        link.online, link.since = True, time.time()
        self.events(ev.FriendOnline(link.friend.name, link.friend.owner_id, link.path,
                                    link.rtt_ms))  # fmt: skip
        return True

    async def _beat(self, link: _Link) -> None:
        """Ask ``stat`` when nothing was heard from the friend for HEARTBEAT s, and at once
        when the connection broke; returns when the friend no longer answers."""
        store = link.store
        assert store is not None
        while True:
            with trio.move_on_at(store.last_heard + HEARTBEAT):
                await link.wake.wait()
            broke = link.woken()
            if not broke and trio.current_time() < store.last_heard + HEARTBEAT:
                continue  # a job's answers came meanwhile: alive, and no stat queued behind
            asked = trio.current_time()
            if not await self._stat(link, BEAT_TIMEOUT) and store.last_heard < asked:
                return

    async def _stat(self, link: _Link, timeout: float) -> bool:
        """One ``stat``: round trip, usage and last seen kept; whether it answered."""
        store = link.store
        if store is None:
            return False
        started = trio.current_time()
        try:
            with trio.fail_after(timeout):
                usage = await store.stat()
        except (P2PBackupError, trio.TooSlowError) as exc:
            reason = exc.message if isinstance(exc, P2PBackupError) else "no answer in time"
            log.info("friend %s did not answer: %s", link.friend.name, reason)
            return False
        link.rtt_ms = round((trio.current_time() - started) * 1000, 2)
        link.path = locate.path_of(self.node.reach(), store.peer_id)  # a relay may turn direct
        self.node.catalog.saw(link.friend.owner_id)
        before, link.usage = link.usage, usage
        if before is not None and before != usage:
            self.events(ev.FriendUsage(link.friend.name, link.friend.owner_id, usage.used,
                                       usage.quota))  # fmt: skip
        return True

    def _went_offline(self, link: _Link) -> None:
        link.online, link.since, link.rtt_ms, link.path = False, time.time(), None, None
        seen = iso_time(self.node.catalog.last_seen(link.friend.owner_id))
        log.info("friend %s went offline", link.friend.name)
        self.events(ev.FriendOffline(link.friend.name, link.friend.owner_id, seen))

    async def _hear_lan(self, lan) -> None:
        """A friend away that mDNS hears is tried again now, not at the end of its pause."""
        while True:
            heard = await lan.wait_until(_news())
            ids = {locate.peer_id_of(peer) for peer in heard}
            for link in self._links.values():
                if not link.online and ids & set(link.friend.node_ids):
                    link.wake.set()
