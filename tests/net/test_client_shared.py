"""One RemoteShareStore shared by the daemon's heartbeat and its jobs: pipelined calls
from many tasks on one stream, a reconnect that does not spin, a broken connection told,
a store let go that stays let go."""

from __future__ import annotations

import pytest
import trio

from p2pbackup.core import erasure
from p2pbackup.errors import PeerError
from p2pbackup.net.service import PROTOCOL
from p2pbackup.storage.store import ShareKey
from tests.net.conftest import OWNER, STRANGER, device

pytestmark = pytest.mark.trio

RID = b"\x09" * 32
DESCRIPTOR, SHARES = erasure.encode(RID, b"shared" * 20_000, 2, 4)


def _count_streams(friend) -> list:
    streams: list = []

    async def _handle(stream):
        streams.append(stream)
        await friend.service.handle(stream)

    friend.host.set_stream_handler(PROTOCOL, _handle)
    return streams


async def test_a_heartbeat_and_jobs_share_one_stream(friend):
    streams = _count_streams(friend)
    async with device(OWNER, friend) as store:
        answers: list = []

        async def _beat() -> None:
            for _ in range(5):
                answers.append(await store.stat())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_beat)
            for index, share in enumerate(SHARES):
                nursery.start_soon(store.put, ShareKey(RID, index), share)
        assert len(answers) == 5 and (await store.stat()).used == sum(map(len, SHARES))
        assert store.last_heard > 0
    assert len(streams) == 1


async def test_a_refused_hello_is_not_asked_again_at_once(friend):
    streams = _count_streams(friend)
    async with device(STRANGER, friend, seed=b"s" * 32) as store:
        with pytest.raises(PeerError, match="not a paired friend"):
            await store.stat()
        with pytest.raises(PeerError, match="next try in"):
            await store.stat()
    assert len(streams) == 1  # was a new stream, and a new refusal, on every call


async def test_a_broken_connection_is_told_and_a_closed_store_stays_closed(friend):
    async with device(OWNER, friend) as store:
        broke = trio.Event()
        store.on_broken = broke.set
        await store.stat()
        network = friend.host.get_network()
        (owner,) = network.connections  # the device's one connection, as a friend's node sees it
        await network.close_peer(owner)  # as a node stopping does
        with trio.fail_after(3):
            await broke.wait()
        await store.stat()  # dials again: the friend is there
        await store.aclose()
        with pytest.raises(PeerError, match="no longer connected"):
            await store.stat()  # a job still holding a store the daemon let go

