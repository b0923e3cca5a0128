"""What a peer can make a node hold, over real libp2p hosts on 127.0.0.1: HELLO first,
small and soon; friends within byte budgets; streams and strangers' connections capped."""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import time

import pytest
import trio
from libp2p.exceptions import BaseLibp2pError

from p2pbackup.core import erasure
from p2pbackup.core import protocol as proto
from p2pbackup.core.certificate import issue_certificate
from p2pbackup.core.protocol import ErrorCode, Message, Op
from p2pbackup.errors import PeerError
from p2pbackup.net import bounds, service
from p2pbackup.net.bounds import Account, ByteBudget, Gate, Overload
from p2pbackup.net.host import NodeIdentity, StrangerCap, build_host, listen_addrs
from p2pbackup.net.service import PROTOCOL, StorageService
from p2pbackup.storage.store import ShareKey
from tests.net.conftest import LOOPBACK, OWNER, device

pytestmark = pytest.mark.trio

MiB = 1 << 20


async def _ended(stream, within: float = 3) -> bool:
    """True once the node has closed or reset the stream (answers before that are read)."""
    with trio.move_on_after(within):
        try:
            while await stream.read(1 << 16):
                pass
        except BaseLibp2pError:
            pass
        return True
    return False


async def _answer(stream) -> Message:
    decoder = proto.FrameDecoder()
    with trio.fail_after(3):
        while True:
            messages = decoder.feed(await stream.read(1 << 16))
            if messages:
                return messages[0]


def _send(message: Message) -> bytes:
    return b"".join(proto.frames(message))


class _Peer:
    """A bare libp2p host that writes raw frames to the friend."""

    def __init__(self, seed: bytes | None = None) -> None:
        self.identity = NodeIdentity.from_seed(seed or os.urandom(32))
        self.host = build_host(self.identity)

    def hello(self) -> bytes:
        cert = issue_certificate(OWNER, self.identity.node_key, "laptop", int(time.time()))
        return _send(Message(Op.HELLO, 1, proto.hello_body(cert)))

    async def stream(self, friend):
        await self.host.connect(friend.info)
        return await self.host.new_stream(friend.info.peer_id, [PROTOCOL])


@pytest.fixture
async def peer():
    p = _Peer()
    async with p.host.run(listen_addrs(LOOPBACK)):
        yield p


async def test_a_peer_that_says_nothing_is_dropped_after_the_hello_timeout(
    friend, peer, monkeypatch
):
    monkeypatch.setattr(service, "HELLO_TIMEOUT", 0.5)
    stream = await peer.stream(friend)
    assert await _ended(stream, within=3)


async def test_a_request_before_hello_is_refused_and_ends_the_stream(friend, peer):
    stream = await peer.stream(friend)
    await stream.write(_send(Message(Op.STAT, 7, b"")))
    answer = await _answer(stream)
    assert answer.op is Op.ERROR and proto.parse_error(answer.body)[0] == ErrorCode.REFUSED
    assert await _ended(stream)


@pytest.mark.parametrize(
    "data",
    [
        struct.pack(">IBBI", 7, 1, Op.HELLO | proto.MORE, 1) + b"x",  # HELLO in pieces
        struct.pack(">IBBI", proto.HELLO_MAX, 1, Op.HELLO, 1),  # a frame over 64 KiB
    ],
    ids=["more", "large"],
)
async def test_a_large_or_multi_frame_hello_ends_the_stream_unanswered(friend, peer, data):
    stream = await peer.stream(friend)
    await stream.write(data)
    assert await _ended(stream)


async def test_an_old_client_sending_a_bare_certificate_is_told_to_update(friend, peer, caplog):
    caplog.set_level(logging.DEBUG, "p2pbackup.net")
    cert = issue_certificate(OWNER, peer.identity.node_key, "laptop", int(time.time()))
    stream = await peer.stream(friend)
    await stream.write(_send(Message(Op.HELLO, 1, cert)))  # what clients sent before
    answer = await _answer(stream)
    code, text = proto.parse_error(answer.body)
    # REFUSED: an old client raises PeerError, and takes this node for a friend away.
    assert code == ErrorCode.REFUSED and "update p2pbackup" in text
    assert await _ended(stream)
    # Logged at info, naming the peer and the rule, not the certificate it sent.
    (refused,) = [r for r in caplog.records if "refused a hello" in r.getMessage()]
    assert refused.levelno == logging.INFO and str(peer.identity.peer_id) in refused.getMessage()
    assert cert.hex()[:16] not in caplog.text and "P2BC" not in caplog.text


async def test_a_friend_over_its_budget_loses_its_stream_and_others_are_served(
    friend, peer, caplog
):
    caplog.set_level(logging.INFO, "p2pbackup.net.service")
    gate = Gate(node_bytes=16 * MiB, peer_bytes=4 * MiB)
    svc = StorageService(friend.pool, friend.quotas.get, friend.identity.node_key, gate)
    friend.host.set_stream_handler(PROTOCOL, svc.handle)
    stream = await peer.stream(friend)
    await stream.write(peer.hello())
    assert (await _answer(stream)).op is Op.OK
    piece = bytes(proto.MAX_FRAME - 10)
    with contextlib.suppress(BaseLibp2pError), trio.fail_after(5):
        for request in range(2, 12):  # 10 MiB of unfinished messages
            await stream.write(
                struct.pack(">IBBI", len(piece) + 6, 1, Op.PUT | proto.MORE, request) + piece
            )
    assert await _ended(stream)
    assert "hold over 4 MiB" in caplog.text  # its budget cut it off, not a frame limit
    assert gate.node_held == 0  # all it held was given back
    rid = b"\x03" * 32
    _, shares = erasure.encode(rid, os.urandom(MiB), 2, 4)
    async with device(OWNER, friend) as store:  # another device of a friend: served
        await store.put(ShareKey(rid, 0), shares[0])
        assert await store.get(ShareKey(rid, 0)) == shares[0]


async def test_silent_strangers_cannot_keep_a_friend_from_saying_hello(friend, monkeypatch):
    monkeypatch.setattr(bounds, "GREETING_STREAMS", 2)
    silent = [_Peer() for _ in range(2)]
    async with (
        silent[0].host.run(listen_addrs(LOOPBACK)),
        silent[1].host.run(listen_addrs(LOOPBACK)),
    ):
        streams = [await p.stream(friend) for p in silent]  # they hold both places
        await trio.sleep(0.2)
        async with device(OWNER, friend) as store:  # pushes the oldest out, and is served
            assert (await store.stat()).used == 0
        assert await _ended(streams[0], within=2)
        assert not await _ended(streams[1], within=0.5)


async def test_streams_per_peer_are_capped(friend, peer):
    streams = [await peer.stream(friend) for _ in range(bounds.STREAMS_PER_PEER)]
    try:
        extra = await peer.stream(friend)
    except BaseLibp2pError:
        pass  # reset while its protocol was being agreed
    else:
        assert await _ended(extra, within=2)  # at once, well before the hello timeout
    for stream in streams:  # the others are still waiting for their HELLO
        await stream.write(peer.hello())
        assert (await _answer(stream)).op is Op.OK


async def test_strangers_connections_are_capped_oldest_first_and_friends_are_not(friend):
    (cap,) = [n for n in friend.host.get_network().notifees if isinstance(n, StrangerCap)]
    cap.limit = 2
    strangers = [_Peer() for _ in range(3)]
    async with (
        strangers[0].host.run(listen_addrs(LOOPBACK)),
        strangers[1].host.run(listen_addrs(LOOPBACK)),
        strangers[2].host.run(listen_addrs(LOOPBACK)),
    ):
        for stranger in strangers:
            await stranger.host.connect(friend.info)
            await trio.sleep(0.2)
        with trio.fail_after(3):
            while strangers[0].identity.peer_id in friend.host.get_network().connections:
                await trio.sleep(0.05)
        connected = friend.host.get_network().connections
        assert all(s.identity.peer_id in connected for s in strangers[1:])
        assert cap.strangers == 2
        async with device(OWNER, friend) as store:  # new here: pushes the oldest out...
            await store.stat()
            assert cap.strangers == 1  # ...but said HELLO, so it is no stranger any more
            for stranger in strangers[:2]:  # strangers again: one more must go
                await stranger.host.connect(friend.info)
                await trio.sleep(0.2)
            assert cap.strangers == 2
            await store.stat()  # and the friend's connection was not it


async def test_budgets_wait_for_the_node_and_refuse_a_peer_over_its_own():
    node = ByteBudget(10)
    first, second = Account(ByteBudget(8), node), Account(ByteBudget(8), node)
    await first.hold(8)
    with pytest.raises(Overload):
        await first.hold(9)  # over its peer's budget: at once
    async with trio.open_nursery() as nursery:
        nursery.start_soon(second.hold, 5)  # waits for the node's budget
        await trio.sleep(0.1)
        assert second.held == 0
        await first.hold(3)
    assert (second.held, node.used) == (5, 8)
    first.close()
    second.close()
    assert node.used == 0


async def test_the_node_budget_gives_up_after_a_while(monkeypatch):
    monkeypatch.setattr(bounds, "NODE_WAIT", 0.1)
    node = ByteBudget(4)
    await Account(ByteBudget(8), node).hold(4)
    with pytest.raises(Overload, match="holds all it can"):
        await Account(ByteBudget(8), node).hold(1)


async def test_a_stream_past_the_caps_is_not_admitted():
    from contextlib import ExitStack

    gate = Gate()
    with ExitStack() as stack:
        for _ in range(bounds.STREAMS_PER_PEER):
            stack.enter_context(gate.admit("a")).greeted()
        with pytest.raises(PeerError, match="streams open"), gate.admit("a"):
            pass
        waiting = [stack.enter_context(gate.admit(object())) for _ in range(32)]
        assert gate.greeting == bounds.GREETING_STREAMS == 32
        with gate.admit("b"):  # one more saying hello: the oldest is pushed out, not it
            assert waiting[0].scope.cancel_called
            assert not any(g.scope.cancel_called for g in waiting[1:])
            assert gate.greeting == 32
    assert gate.greeting == 0 and gate.node_held == 0
