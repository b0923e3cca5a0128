"""Joining with nothing but the code, among nodes heard on the LAN: whole nodes on
127.0.0.1, the joiner's LanPeers told of each node as mDNS would tell it."""

from __future__ import annotations

import pytest
import trio
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.peer.peerinfo import info_from_p2p_addr

from p2pbackup.daemon import pairing
from p2pbackup.daemon.pairing import invite_friend, join_friend
from p2pbackup.engine import events as ev
from p2pbackup.errors import InviteNotHere, PairingError, PeerError
from p2pbackup.net import discovery
from p2pbackup.net.discovery import LanPeers
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs
from tests.daemon.conftest import LOOPBACK, started

pytestmark = pytest.mark.trio


def _info(node):
    return info_from_p2p_addr(node.host.get_addrs()[0])


async def _gone(nodes, name: str):
    """A node that was heard, then stopped (killed, as far as its announcement goes)."""
    info = _info(await nodes.start(name))
    await nodes.stop(name)
    return info


async def test_a_joiner_that_heard_a_dead_node_and_a_stranger_still_pairs(tmp_path):
    async with started(tmp_path, owner="ann", friends=()) as nodes:
        bob, carol = await nodes.start("bob"), await nodes.start("carol")
        gone = await _gone(nodes, "gone")
        ann = nodes.nodes["ann"]
        with LanPeers(bob.host) as lan:
            bob.lan = lan
            for heard in (gone, _info(carol)):  # heard before the inviter
                peerDiscovery.emit_peer_discovered(heard)
            ready: list[str] = []
            invited = trio.Event()

            def _sink(event: ev.Event) -> None:
                if isinstance(event, ev.InviteReady):
                    ready.append(event.code)
                    invited.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(invite_friend, ann, _sink, 1, 1.0)
                await invited.wait()
                code = ready[0]
                # The stranger holds an invite of its own: asking it must not use it up.
                theirs = carol.invites.create(carol.card(1))
                while theirs.nameplate == int(code.split("-")[0]):
                    theirs = carol.invites.create(carol.card(1))
                peerDiscovery.emit_peer_discovered(_info(ann))
                result = await join_friend(bob, ev.ignore, code, 1)
            assert (result["paired"], result["name"]) == (True, "ann")
            heard_now = {p.peer_id for p in lan.peers()}
            assert gone.peer_id not in heard_now  # forgotten: the next join won't dial it
            assert {carol.host.get_id(), ann.host.get_id()} <= heard_now
        async with trio.open_nursery() as nursery:  # the stranger's invite is still whole
            nursery.start_soon(carol.invites.wait, theirs)
            await join_friend(ann, ev.ignore, str(theirs), 1, str(carol.host.get_addrs()[0]))


async def test_when_no_node_pairs_the_error_says_which_case_and_names_no_stranger(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(pairing, "LAN_WAIT", 0.5)
    async with started(tmp_path, owner="bob", friends=()) as nodes:
        bob = nodes.nodes["bob"]
        gone = await _gone(nodes, "gone")
        with LanPeers(bob.host) as lan:
            bob.lan = lan
            peerDiscovery.emit_peer_discovered(gone)
            with pytest.raises(PeerError) as unreachable:
                await join_friend(bob, ev.ignore, "7-guitar-reveal-orbit", 1)
            assert "Your friend's node cannot be reached: none of the 1 node(s)" in str(
                unreachable.value
            )
            assert str(gone.peer_id) not in str(unreachable.value)
            assert lan.peers() == []
            carol = await nodes.start("carol")
            peerDiscovery.emit_peer_discovered(_info(carol))
            with pytest.raises(InviteNotHere, match="No node holding that invite code answered"):
                await join_friend(bob, ev.ignore, "7-guitar-reveal-orbit", 1)


async def test_a_wrong_code_among_strangers_says_the_code_does_not_match(tmp_path, monkeypatch):
    monkeypatch.setattr(pairing, "LAN_WAIT", 0.5)
    async with started(tmp_path, owner="ann", friends=()) as nodes:
        bob, carol = await nodes.start("bob"), await nodes.start("carol")
        ann = nodes.nodes["ann"]
        code = ann.invites.create(ann.card(1))
        wrong = f"{code.nameplate}-{code.words[0]}-{code.words[1]}-" + (
            "zoo" if code.words[2] != "zoo" else "ask"
        )
        with LanPeers(bob.host) as lan:
            bob.lan = lan
            for node in (carol, ann):
                peerDiscovery.emit_peer_discovered(_info(node))
            async with trio.open_nursery() as nursery:

                async def _inviter() -> None:
                    with pytest.raises(PairingError, match="does not match"):
                        await ann.invites.wait(code)

                nursery.start_soon(_inviter)
                with pytest.raises(PairingError, match=r"^The invite code does not match"):
                    await join_friend(bob, ev.ignore, wrong, 1)


async def test_a_dead_node_listed_by_the_rendezvous_point_is_skipped(tmp_path):
    point = build_host(NodeIdentity.from_seed(b"p" * 32))
    dead = build_host(NodeIdentity.from_seed(b"x" * 32))
    async with point.run(listen_addrs(LOOPBACK)):
        discovery.serve(point)
        address = str(point.get_addrs()[0])
        async with started(tmp_path, owner="ann", friends=(), rendezvous=address) as nodes:
            ann, bob = nodes.nodes["ann"], await nodes.start("bob", rendezvous=address)
            code = ann.invites.create(ann.card(1))
            namespace = discovery.invite_namespace(code.nameplate)
            async with dead.run(listen_addrs(LOOPBACK)):  # listed first, then gone
                await discovery.register(dead, ann.rendezvous(), namespace)
            await discovery.register(ann.host, ann.rendezvous(), namespace)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ann.invites.wait, code)
                result = await join_friend(bob, ev.ignore, str(code), 1)
            assert result["name"] == "ann"
