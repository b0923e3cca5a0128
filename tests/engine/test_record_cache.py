"""The record cache of restores and repacks: least recently used out, bounded in bytes."""

from __future__ import annotations

import pytest

from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.engine.fetcher import RecordCache

pytestmark = pytest.mark.trio


class _Friends:
    """Stands in for the Fetcher: serves each record's plaintext and counts the fetches."""

    def __init__(self, sizes: dict[int, int]) -> None:
        self.sizes = sizes
        self.fetched: list[int] = []

    async def fetch(self, descriptor: RecordDescriptor) -> bytes:
        number = descriptor.record_id[0]
        self.fetched.append(number)
        return bytes([number]) * self.sizes[number]


def _descriptor(number: int) -> RecordDescriptor:
    return RecordDescriptor(bytes([number]) * 32, 2, 4, 100, (bytes(32),) * 4)


async def test_the_least_recently_used_record_goes_first_and_the_bytes_stay_bounded():
    friends = _Friends({1: 40, 2: 40, 3: 40})
    cache = RecordCache(friends, limit=100)
    for number in (1, 2, 1, 3):  # 1 is used again, so 2 is the oldest when 3 arrives
        assert await cache.get(_descriptor(number)) == bytes([number]) * 40
    assert friends.fetched == [1, 2, 3]
    await cache.get(_descriptor(1))
    await cache.get(_descriptor(2))  # evicted: fetched again
    assert friends.fetched == [1, 2, 3, 2]


async def test_a_record_larger_than_the_limit_is_kept_alone_until_the_next():
    friends = _Friends({1: 10, 2: 500})
    cache = RecordCache(friends, limit=100)
    await cache.get(_descriptor(1))
    await cache.get(_descriptor(2))
    await cache.get(_descriptor(2))
    await cache.get(_descriptor(1))
    assert friends.fetched == [1, 2, 1]
