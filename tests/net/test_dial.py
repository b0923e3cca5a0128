"""Dialling a friend at every address it may be at, not at the first one libp2p keeps."""

from __future__ import annotations

import socket
from functools import partial

import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from p2pbackup.errors import PeerError
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs
from p2pbackup.net.locate import dial_direct

from .conftest import LOOPBACK

pytestmark = pytest.mark.trio


def _closed_port() -> Multiaddr:
    """An address nobody listens on: the friend's old port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return Multiaddr(f"/ip4/127.0.0.1/tcp/{s.getsockname()[1]}")


async def test_a_friend_that_moved_is_reached_at_its_new_address(friend):
    me = build_host(NodeIdentity.from_seed(b"m" * 32))
    old = _closed_port()
    async with me.run(listen_addrs(LOOPBACK)):
        # The peerstore remembers the old address first, as after a failed dial there.
        me.get_peerstore().add_addrs(friend.info.peer_id, [old], 120)
        with trio.fail_after(5):
            await dial_direct(me, PeerInfo(friend.info.peer_id, [old, *friend.info.addrs]))
        assert me.get_network().get_connections(friend.info.peer_id)


async def test_no_address_answering_names_why():
    me = build_host(NodeIdentity.from_seed(b"m" * 32))
    nobody = NodeIdentity.from_seed(b"n" * 32).peer_id
    async with me.run(listen_addrs(LOOPBACK)):
        with pytest.raises(PeerError, match="connect"):
            await dial_direct(me, PeerInfo(nobody, [_closed_port(), _closed_port()]))
        with pytest.raises(PeerError, match="no address known"):
            await dial_direct(me, PeerInfo(nobody, []))


async def test_each_address_is_dialled_once_per_attempt():
    """The friend's backoff decides when to try again, not the swarm: a friend that just
    stopped is offline at once, not after the library's three retries (0.7 s)."""
    accepted = 0

    async def hang_up(stream: trio.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        await stream.aclose()

    me = build_host(NodeIdentity.from_seed(b"m" * 32))
    nobody = NodeIdentity.from_seed(b"n" * 32).peer_id
    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(partial(trio.serve_tcp, hang_up, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        async with me.run(listen_addrs(LOOPBACK)):
            with pytest.raises(PeerError):
                await dial_direct(me, PeerInfo(nobody, [Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")]))
        nursery.cancel_scope.cancel()
    assert accepted == 1
