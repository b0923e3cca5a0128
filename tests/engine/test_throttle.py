"""The bandwidth limit holds uploads to the rate on average, bursts of a second go at once."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from p2pbackup.core import erasure
from p2pbackup.engine.throttle import Throttle, ThrottledStore
from p2pbackup.storage.memorystore import MemoryShareStore
from p2pbackup.storage.store import ShareKey


def test_uploads_average_the_rate_with_a_one_second_burst():
    async def main() -> None:
        store = ThrottledStore(MemoryShareStore("friend", 1 << 30, b"o" * 32), Throttle(100_000))
        started = trio.current_time()
        for i in range(10):
            _, (share,) = erasure.encode(bytes([i]) * 32, b"x" * 49_916, 1, 1)
            await store.put(ShareKey(bytes([i]) * 32, 0), share)  # 50,000 bytes each
        # 500 kB at 100 kB/s, the first 100 kB free: 4 s.
        assert trio.current_time() - started == pytest.approx(4.0, abs=0.01)
        assert len(await store.list()) == 10  # everything else passes through

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_limit_must_be_positive():
    with pytest.raises(ValueError):
        trio.run(lambda: _make(0))


async def _make(rate: float) -> Throttle:
    return Throttle(rate)
