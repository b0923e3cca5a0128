"""A friend's node that cannot be dialled is reached through a relay on the rendezvous node."""

from __future__ import annotations

import multiaddr
import pytest
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from p2pbackup.core import erasure
from p2pbackup.core.certificate import issue_certificate
from p2pbackup.net.client import remote_store
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs
from p2pbackup.net.relay import relay
from p2pbackup.storage.store import ShareKey
from tests.net.conftest import LOOPBACK, OWNER

pytestmark = pytest.mark.trio


async def test_a_share_goes_through_the_relay(friend):
    point_host = build_host(NodeIdentity.from_seed(b"r" * 32))
    device = NodeIdentity.from_seed(b"d" * 32)
    device_host = build_host(device)
    cert = issue_certificate(OWNER, device.node_key, "laptop", 1)
    rid = b"\x05" * 32
    _, shares = erasure.encode(rid, b"relayed record" * 1000, 1, 2)
    async with (
        point_host.run(listen_addrs(LOOPBACK)),
        device_host.run(listen_addrs(LOOPBACK)),
        relay(point_host, serve=True),
        relay(friend.host) as friend_relay,
        relay(device_host) as device_relay,
    ):
        point = info_from_p2p_addr(point_host.get_addrs()[0])
        await friend_relay.reserve(point)  # the friend is "behind NAT": only the relay knows it
        unreachable = PeerInfo(friend.info.peer_id, [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/9")])

        async def via_point() -> None:
            await device_relay.dial(point, friend.info.peer_id)

        async with remote_store(
            device_host, unreachable, "friend", cert, OWNER.signing_key, via=via_point
        ) as store:
            await store.put(ShareKey(rid, 0), shares[0])
            assert await store.get(ShareKey(rid, 0)) == shares[0]
    assert friend.pool.list(OWNER.owner_id) == {ShareKey(rid, 0)}
