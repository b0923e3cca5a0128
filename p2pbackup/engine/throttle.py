"""A bandwidth limit for uploads: a token bucket shared by every friend's store.

The limit is the average over time; a burst of one second's worth goes at
once, so small records are not delayed. Wrapping a store, not a flag in it:
the engine and the stores stay unaware.
"""

from __future__ import annotations

from typing import Any

import trio

from p2pbackup.storage.store import ShareKey, ShareStore


class Throttle:
    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("a bandwidth limit is a positive number of bytes per second")
        self.rate = rate
        self._tokens = rate  # one second's worth may go at once
        self._last = trio.current_time()
        self._lock = trio.Lock()  # first come, first served

    async def take(self, size: int) -> None:
        async with self._lock:
            now = trio.current_time()
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= size
            if self._tokens < 0:
                await trio.sleep(-self._tokens / self.rate)


class ThrottledStore:
    """A store whose uploads share a ``Throttle``; everything else passes through."""

    def __init__(self, store: ShareStore, throttle: Throttle) -> None:
        self._store = store
        self._throttle = throttle
        self.name = store.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def put(self, key: ShareKey, share: bytes) -> None:
        await self._throttle.take(len(share))
        await self._store.put(key, share)

    async def put_part(
        self, key: ShareKey, offset: int, reserve: int, last: bool, piece: bytes
    ) -> bool:
        await self._throttle.take(len(piece))
        return await self._store.put_part(key, offset, reserve, last, piece)
