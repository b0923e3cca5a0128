"""Pairing two real nodes on 127.0.0.1 with an invite code."""

from __future__ import annotations

import socket

import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from p2pbackup.core.certificate import issue_certificate
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.pairing import InviteCode, make_card
from p2pbackup.errors import InviteNotHere, PairingError, PeerError
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs
from p2pbackup.net.invite import PROTOCOL, Invites, join
from tests.net.conftest import LOOPBACK

pytestmark = pytest.mark.trio

ANN = OwnerKeys.from_secret(bytes(range(32)))
BOB = OwnerKeys.from_secret(bytes(32))


def _node(keys: OwnerKeys, seed: bytes, name: str):
    identity = NodeIdentity.from_seed(seed)
    cert = issue_certificate(keys, identity.node_key, f"{name}'s laptop", 1_764_000_000)
    card = make_card(keys, name, cert, ["/ip4/127.0.0.1/tcp/1"], 5 << 30)
    return build_host(identity), card


@pytest.fixture
async def pair():
    ann_host, ann_card = _node(ANN, b"a" * 32, "Ann")
    bob_host, bob_card = _node(BOB, b"b" * 32, "Bob")
    invites = Invites()
    ann_host.set_stream_handler(PROTOCOL, invites.handle)
    async with ann_host.run(listen_addrs(LOOPBACK)), bob_host.run(listen_addrs(LOOPBACK)):
        from libp2p.peer.peerinfo import info_from_p2p_addr

        yield invites, ann_card, bob_host, bob_card, info_from_p2p_addr(ann_host.get_addrs()[0])


async def test_the_right_code_pairs_both_sides(pair):
    invites, ann_card, bob_host, bob_card, ann_info = pair
    code = invites.create(ann_card)
    results = {}

    async def inviter():
        results["ann sees"] = await invites.wait(code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(inviter)
        results["bob sees"] = await join(bob_host, ann_info, code, bob_card)
    assert results["ann sees"].owner_id == BOB.owner_id
    assert results["ann sees"].offered_quota == 5 << 30
    assert results["bob sees"].owner_id == ANN.owner_id
    assert results["bob sees"].name == "Ann"


async def test_a_wrong_code_fails_both_sides_and_burns_the_code(pair):
    invites, ann_card, bob_host, bob_card, ann_info = pair
    code = invites.create(ann_card)
    wrong = InviteCode(
        code.nameplate, (*code.words[:2], "zoo" if code.words[2] != "zoo" else "ask")
    )

    async def inviter():
        with pytest.raises(PairingError, match="does not match"):
            await invites.wait(code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(inviter)
        with pytest.raises(PairingError, match="does not match"):
            await join(bob_host, ann_info, wrong, bob_card)
    with pytest.raises(PairingError, match="used up"):
        await join(bob_host, ann_info, code, bob_card)  # even the right code is used up


async def test_an_expired_code_says_so(pair):
    invites, ann_card, bob_host, bob_card, ann_info = pair
    code = invites.create(ann_card, validity=0.05)
    await trio.sleep(0.1)
    with pytest.raises(PairingError, match="expired"):
        await join(bob_host, ann_info, code, bob_card)
    with pytest.raises(PairingError, match="expired"):
        await invites.wait(code)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_nameplate_not_pending_is_answered_apart_and_uses_nothing_up(pair):
    invites, ann_card, bob_host, bob_card, ann_info = pair
    code = invites.create(ann_card)
    other = InviteCode(code.nameplate % 999 + 1, code.words)
    with pytest.raises(InviteNotHere, match="unknown here"):
        await join(bob_host, ann_info, other, bob_card)
    async with trio.open_nursery() as nursery:  # the pending invite is still whole
        nursery.start_soon(invites.wait, code)
        assert (await join(bob_host, ann_info, code, bob_card)).owner_id == ANN.owner_id


async def test_a_retry_right_after_a_failed_dial_dials_again():
    # libp2p keeps a peer whose dial failed in a negative cache for a while: without
    # clearing it, the retry failed at once with "negative cache".
    ann_host, ann_card = _node(ANN, b"a" * 32, "Ann")
    bob_host, bob_card = _node(BOB, b"b" * 32, "Bob")
    invites = Invites()
    ann_host.set_stream_handler(PROTOCOL, invites.handle)
    address = f"/ip4/127.0.0.1/tcp/{_free_port()}"
    ann_info = PeerInfo(ann_host.get_id(), [Multiaddr(address)])
    code = invites.create(ann_card)
    async with bob_host.run(listen_addrs(LOOPBACK)):
        with pytest.raises(PeerError, match="cannot be reached"):
            await join(bob_host, ann_info, code, bob_card)  # Ann's node is not up yet
        async with ann_host.run(listen_addrs([address])), trio.open_nursery() as nursery:
            nursery.start_soon(invites.wait, code)
            assert (await join(bob_host, ann_info, code, bob_card)).name == "Ann"


async def test_an_invite_cancelled_while_waiting_cannot_be_used_after(pair):
    # The app's Cancel stops the invite job: the code must go with it, or a friend typing
    # it later would pair one way (they keep Ann as a friend; Ann never hears of them).
    invites, ann_card, bob_host, bob_card, ann_info = pair
    code = invites.create(ann_card)
    with trio.move_on_after(0.05):
        await invites.wait(code)
    with pytest.raises(InviteNotHere):
        await join(bob_host, ann_info, code, bob_card)
