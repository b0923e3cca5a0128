"""The daemon's event bus, and the bounded outboxes that carry its messages to clients.

Everything in the daemon that has news calls ``Bus.publish`` (a plain function that
never waits): every job's events, scheduled runs included, friends coming and going,
warnings. Each ``watch`` client subscribes an ``Outbox``. A client that reads slowly
must not hold the daemon back nor grow its memory without end, so an outbox keeps at
most ``limit`` messages: when full it drops the oldest and, before the next message the
client gets, says how many it missed (``EventsDropped``).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator

import trio

from p2pbackup.engine import events as ev

WATCH_LIMIT = 1000  # messages a watcher may fall behind by
JOB_LIMIT = 10_000  # the same for the client that asked for a job


def message(event: ev.Event, job: int | None = None) -> dict:
    """An event as the control socket sends it: ``{"event": {...}, "job": id}``."""
    out: dict = {"event": ev.to_dict(event)}
    if job is not None:
        out["job"] = job
    return out


class Outbox:
    """Messages for one client, oldest first; ``put`` never waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._queue: deque[dict] = deque()
        self._dropped = 0
        self._wake = trio.Event()
        self._closed = False
        self.gone = trio.Event()  # the client hung up (a job goes on; a watch ends)

    def put(self, item: dict) -> None:
        if self._closed:
            return
        if len(self._queue) >= self.limit:
            self._queue.popleft()
            self._dropped += 1
        self._queue.append(item)
        self._wake.set()

    def event(self, event: ev.Event, job: int | None = None) -> None:
        self.put(message(event, job))

    def close(self) -> None:
        """Nothing more will be put; ``take`` returns what is left, then nothing."""
        self._closed = True
        self._wake.set()

    async def take(self) -> list[dict]:
        """The messages waiting (at least one), or [] once closed and empty."""
        while not self._queue and not self._closed:
            await self._wake.wait()
            self._wake = trio.Event()
        taken = list(self._queue)
        self._queue.clear()
        if self._dropped:
            taken.insert(0, message(ev.EventsDropped(self._dropped)))
            self._dropped = 0
        return taken


class Bus:
    """Every event the daemon has, for every subscriber."""

    def __init__(self) -> None:
        self._subscribers: set[Outbox] = set()

    def publish(self, event: ev.Event, job: int | None = None) -> None:
        if self._subscribers:
            item = message(event, job)
            for outbox in self._subscribers:
                outbox.put(item)

    @contextlib.contextmanager
    def subscribed(self, outbox: Outbox) -> Iterator[None]:
        self._subscribers.add(outbox)
        try:
            yield
        finally:
            self._subscribers.discard(outbox)

    @property
    def watchers(self) -> int:
        return len(self._subscribers)
