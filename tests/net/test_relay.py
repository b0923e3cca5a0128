"""A friend's node that cannot be dialled is reached through a relay on the rendezvous node;
the relay serves whom we say, within our limits; dialing tries both paths at once."""

from __future__ import annotations

import functools
import socket
import time
from contextlib import asynccontextmanager

import multiaddr
import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from p2pbackup.core import erasure
from p2pbackup.core.certificate import issue_certificate
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.pairing import InviteCode, make_card
from p2pbackup.errors import PeerError
from p2pbackup.net import locate
from p2pbackup.net.client import remote_store
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs, serving
from p2pbackup.net.invite import PROTOCOL as INVITE_PROTOCOL
from p2pbackup.net.invite import Invites, join
from p2pbackup.net.relay import (
    PUBLIC,
    Admission,
    Limits,
    PointWatch,
    ReservationRefused,
    relay,
)
from p2pbackup.net.service import PROTOCOL, StorageService
from p2pbackup.storage.sharepool import SharePool
from p2pbackup.storage.store import ShareKey
from tests.net.conftest import LOOPBACK, OWNER, STRANGER

pytestmark = pytest.mark.trio

POINT_OWNER = OwnerKeys.from_secret(b"\x07" * 32)


def _cert(keys: OwnerKeys, identity: NodeIdentity) -> bytes:
    return issue_certificate(keys, identity.node_key, "device", 1)


@asynccontextmanager
async def _node(seed: bytes, keys: OwnerKeys = OWNER, serve: Limits | None = None,
                admits=None):  # fmt: skip
    """A host on 127.0.0.1 with circuit relay: (host, relay, peer info)."""
    identity = NodeIdentity.from_seed(seed)
    host = build_host(identity, strangers=None if serve else 32)
    async with (
        serving(host, listen_addrs(LOOPBACK)),
        relay(host, _cert(keys, identity), serve=serve, admits=admits) as node_relay,
    ):
        yield host, node_relay, info_from_p2p_addr(host.get_addrs()[0])


@asynccontextmanager
async def _friends_point(tmp_path, friends: dict[bytes, int], limits: Limits = PUBLIC):
    """A rendezvous point that relays only for its owner's friends' devices."""
    admission = Admission(POINT_OWNER.owner_id, lambda o: o in friends, lambda: set())
    async with _node(b"p" * 32, POINT_OWNER, serve=limits, admits=admission.admits) as point:
        identity = NodeIdentity.from_seed(b"p" * 32)
        pool = SharePool(str(tmp_path / "pool"), lambda o: friends.get(o, 0))
        service = StorageService(pool, friends.get, identity.node_key, saw=admission.saw)
        point[0].set_stream_handler(PROTOCOL, service.handle)
        yield point


async def test_a_share_goes_through_the_relay(friend):
    device = NodeIdentity.from_seed(b"d" * 32)
    cert = _cert(OWNER, device)
    rid = b"\x05" * 32
    _, shares = erasure.encode(rid, b"relayed record" * 1000, 1, 2)
    async with (
        _node(b"r" * 32, serve=PUBLIC) as (_, _, point),
        relay(friend.host) as friend_relay,
        _node(b"d" * 32) as (device_host, device_relay, _),
    ):
        await friend_relay.reserve(point)  # the friend is "behind NAT": only the relay knows it
        unreachable = PeerInfo(friend.info.peer_id, [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/9")])
        reach = locate.Reach(device_host, cert, OWNER.signing_key, relay=device_relay, point=point)
        async with remote_store(device_host, unreachable, "friend", cert, OWNER.signing_key,
                                via=lambda peer: locate.dial(reach, peer)) as store:  # fmt: skip
            await store.put(ShareKey(rid, 0), shares[0])
            assert await store.get(ShareKey(rid, 0)) == shares[0]
        assert locate.path_of(reach, friend.info.peer_id) == "relay"
    assert friend.pool.list(OWNER.owner_id) == {ShareKey(rid, 0)}


@pytest.fixture
def silent_port():
    """A port whose kernel completes the TCP handshake and nobody ever answers: a direct
    dial there hangs, as one to a NAT that drops it does."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


async def test_a_hanging_direct_dial_does_not_hold_up_the_relay(friend, silent_port):
    """The direct dial and the relay start together (the relay after a head start): the
    relay answers in well under a second, where it waited out the direct dial's 10 s."""
    async with (
        _node(b"r" * 32, serve=PUBLIC) as (_, _, point),
        relay(friend.host) as friend_relay,
        _node(b"d" * 32) as (device_host, device_relay, _),
    ):
        await friend_relay.reserve(point)
        hanging = PeerInfo(friend.info.peer_id,
                           [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{silent_port}")])  # fmt: skip
        reach = locate.Reach(device_host, b"", OWNER.signing_key, relay=device_relay, point=point)
        started = time.monotonic()
        with trio.fail_after(5):
            path = await locate.connect(reach, hanging)
        assert path == "relay" and time.monotonic() - started < 3
        assert locate.path_of(reach, hanging) == "relay"


async def test_a_direct_path_wins_and_is_reported(friend):
    async with (
        _node(b"r" * 32, serve=PUBLIC) as (_, _, point),
        _node(b"d" * 32) as (device_host, device_relay, _),
    ):
        reach = locate.Reach(device_host, b"", OWNER.signing_key, relay=device_relay, point=point)
        assert locate.path_of(reach, friend.info) is None
        assert await locate.connect(reach, friend.info) == "direct"
        assert locate.path_of(reach, friend.info.peer_id.to_base58()) == "direct"


async def test_neither_path_names_both_reasons(silent_port):
    async with (
        _node(b"r" * 32, serve=PUBLIC) as (_, _, point),
        _node(b"d" * 32) as (device_host, device_relay, _),
    ):
        nobody = PeerInfo(NodeIdentity.from_seed(b"n" * 32).peer_id,
                          [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{silent_port}")])  # fmt: skip
        reach = locate.Reach(device_host, b"", OWNER.signing_key, relay=device_relay, point=point)
        with pytest.raises(PeerError) as caught:
            await locate.connect(reach, nobody, direct_timeout=1.0, relay_timeout=3.0)
    message = caught.value.message
    assert message.startswith("direct: no answer in time; through the relay: ")
    assert not message.endswith(": ") and "relay: ." not in message


async def test_a_stranger_gets_no_slot_at_a_friends_point(tmp_path):
    async with (
        _friends_point(tmp_path, {OWNER.owner_id: 1 << 20}) as (_, _, point),
        _node(b"s" * 32, STRANGER) as (_, stranger_relay, _),
    ):
        with pytest.raises(ReservationRefused, match="only for its owner's friends"):
            await stranger_relay.reserve(point)


async def test_a_friends_device_gets_a_slot_by_its_certificate(tmp_path):
    """No peer id of it is known: the certificate it shows names a friend of the owner."""
    async with (
        _friends_point(tmp_path, {OWNER.owner_id: 1 << 20}) as (_, _, point),
        _node(b"d" * 32, OWNER) as (_, device_relay, _),
    ):
        assert await device_relay.reserve(point) > time.time() + 3000


async def test_a_slot_left_by_a_node_that_went_away_is_given_to_the_next():
    """One-shot nodes used to keep their slots for the reservation's hour: the relay was
    full of nodes long gone."""
    one_slot = Limits(reservations=1, circuits_per_slot=1, circuit_bytes=1 << 20,
                      circuit_seconds=60)  # fmt: skip
    async with _node(b"r" * 32, serve=one_slot) as (point_host, _, point):
        with PointWatch(point_host, NodeIdentity.from_seed(b"a" * 32).peer_id) as first_gone:
            async with _node(b"a" * 32) as (_, first, _):
                await first.reserve(point)
                async with _node(b"b" * 32) as (_, second, _):
                    with pytest.raises(ReservationRefused, match="no free slot"):
                        await second.reserve(point)
            with trio.fail_after(5):
                await first_gone.until_gone()  # the point saw the first node go
        async with _node(b"b" * 32) as (_, second, _):
            await second.reserve(point)


async def test_an_unreachable_relay_says_why(silent_port):
    point = PeerInfo(NodeIdentity.from_seed(b"x" * 32).peer_id,
                     [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/9")])  # fmt: skip
    async with _node(b"d" * 32) as (_, device_relay, _):
        with pytest.raises(PeerError) as caught:
            await device_relay.reserve(point)
    message = caught.value.message
    assert message.startswith("No reservation at the relay: ") and not message.endswith(": .")


async def test_a_join_reaches_the_inviter_through_the_relay(silent_port):
    """The inviter's registered addresses do not answer (private, behind its NAT): the
    joiner pairs through the point's relay, where it dialled those addresses alone."""
    inviter_keys = OwnerKeys.from_secret(b"\x08" * 32)
    inviter_id = NodeIdentity.from_seed(b"i" * 32)
    inviter_card = make_card(inviter_keys, "Ann", _cert(inviter_keys, inviter_id), [], 1 << 30)
    joiner_id = NodeIdentity.from_seed(b"j" * 32)
    joiner_card = make_card(OWNER, "Bob", _cert(OWNER, joiner_id), [], 1 << 30)
    invites = Invites()
    async with (
        _node(b"r" * 32, serve=PUBLIC) as (_, _, point),
        _node(b"i" * 32, inviter_keys) as (inviter_host, inviter_relay, inviter),
        _node(b"j" * 32) as (joiner_host, joiner_relay, _),
    ):
        inviter_host.set_stream_handler(INVITE_PROTOCOL, invites.handle)
        await inviter_relay.reserve(point)
        code = invites.create(inviter_card)
        private = multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{silent_port}")
        behind_nat = PeerInfo(inviter.peer_id, [private])
        reach = locate.Reach(joiner_host, b"", OWNER.signing_key, relay=joiner_relay, point=point)
        with trio.fail_after(5):
            card = await join(joiner_host, behind_nat, code, joiner_card,
                              dial=functools.partial(locate.dial, reach))  # fmt: skip
        assert card.name == "Ann"


async def test_a_join_that_reaches_nobody_says_why_for_each_path(silent_port):
    """It said "Your friend's node cannot be reached: ." (an exception is always truthy)."""
    async with (
        _node(b"r" * 32, serve=PUBLIC) as (_, _, point),
        _node(b"j" * 32) as (joiner_host, joiner_relay, _),
    ):
        nobody = PeerInfo(NodeIdentity.from_seed(b"n" * 32).peer_id,
                          [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{silent_port}")])  # fmt: skip
        reach = locate.Reach(joiner_host, b"", OWNER.signing_key, relay=joiner_relay, point=point)
        code = InviteCode(nameplate=7, words=("a", "b"))  # never reaches a node anyway
        with pytest.raises(PeerError) as caught:
            await join(joiner_host, nobody, code, b"", dial_timeout=3,
                       dial=functools.partial(locate.dial, reach))  # fmt: skip
    assert caught.value.message.startswith(
        "Your friend's node cannot be reached: direct: no answer in time; through the relay: "
        "Could not reach it through the relay: "
    )


async def test_the_devices_a_point_remembers_are_bounded():
    """A friend holds its owner key and can mint device certificates without end: the
    point remembers the newest KNOWN_DEVICES of them, not every one."""
    admission = Admission(POINT_OWNER.owner_id, lambda owner: owner == OWNER.owner_id, set)
    keys = [NodeIdentity.from_seed(bytes([i % 256, i // 256]) * 16) for i in range(1100)]
    for identity in keys:
        admission.saw(identity.node_key, OWNER.owner_id)
    assert admission.admits(keys[-1].peer_id) and not admission.admits(keys[0].peer_id)
    admission.saw(keys[0].node_key, STRANGER.owner_id)  # not a friend: not remembered
    assert not admission.admits(keys[0].peer_id)


async def test_a_relay_that_refuses_at_first_is_asked_again(friend, silent_port):
    """The friend takes its slot a moment after we first ask (the point had restarted):
    the relay is asked again while the direct dial hangs, where the relay's refusal used
    to wait out the direct dial's deadline and fail (netns: 'online again' took 10 s)."""
    async with (
        _node(b"r" * 32, serve=PUBLIC) as (_, _, point),
        relay(friend.host) as friend_relay,
        _node(b"d" * 32) as (device_host, device_relay, _),
        trio.open_nursery() as nursery,
    ):
        hanging = PeerInfo(friend.info.peer_id,
                           [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{silent_port}")])  # fmt: skip
        reach = locate.Reach(device_host, b"", OWNER.signing_key, relay=device_relay, point=point)

        async def reserve_later() -> None:
            await trio.sleep(1.0)
            await friend_relay.reserve(point)

        nursery.start_soon(reserve_later)
        started = time.monotonic()
        with trio.fail_after(8):
            path = await locate.connect(reach, hanging, direct_timeout=5.0)
        assert path == "relay" and time.monotonic() - started < 4
