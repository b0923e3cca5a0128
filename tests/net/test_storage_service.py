"""The storage service between real libp2p hosts on 127.0.0.1."""

from __future__ import annotations

import time

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.network.exceptions import SwarmDialAllFailedError, SwarmException
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport

from p2pbackup.core import erasure, head, protocol
from p2pbackup.core.head import HeadBody
from p2pbackup.errors import IntegrityError, PeerError, StorageError
from p2pbackup.net.service import PROTOCOL
from p2pbackup.storage.store import ShareKey
from tests.net.conftest import LOOPBACK, OWNER, STRANGER, device

pytestmark = pytest.mark.trio

RID = b"\x07" * 32
DESCRIPTOR, SHARES = erasure.encode(RID, b"a record" * 20_000, 2, 4)


async def test_put_get_list_stat_prove_remove(friend):
    async with device(OWNER, friend) as store:
        async with trio.open_nursery() as nursery:  # pipelined: all four in flight at once
            for index, share in enumerate(SHARES):
                nursery.start_soon(store.put, ShareKey(RID, index), share)
        assert await store.get(ShareKey(RID, 2)) == SHARES[2]
        assert await store.list() == {ShareKey(RID, i) for i in range(4)}
        assert (await store.stat()).used == sum(map(len, SHARES))
        nonce = b"n" * 32
        from p2pbackup.storage.sharepool import prove_answer

        assert await store.prove(ShareKey(RID, 1), nonce) == prove_answer(nonce, SHARES[1])
        await store.remove(ShareKey(RID, 0))
        assert ShareKey(RID, 0) not in await store.list()
        with pytest.raises(PeerError):
            await store.get(ShareKey(RID, 0))


async def test_a_tampered_share_is_refused_on_put(friend):
    async with device(OWNER, friend) as store:
        bad = bytearray(SHARES[0])
        bad[100] ^= 1
        with pytest.raises(IntegrityError):
            await store.put(ShareKey(RID, 0), bytes(bad))
        assert await store.list() == frozenset()


async def test_the_quota_is_enforced(friend):
    friend.quotas[OWNER.owner_id] = len(SHARES[0]) + 10
    async with device(OWNER, friend) as store:
        await store.put(ShareKey(RID, 0), SHARES[0])
        with pytest.raises(StorageError, match="No room"):
            await store.put(ShareKey(RID, 1), SHARES[1])


async def test_a_stranger_is_refused(friend):
    async with device(STRANGER, friend, seed=b"s" * 32) as store:
        with pytest.raises(PeerError, match="not a paired friend"):
            await store.put(ShareKey(RID, 0), SHARES[0])
    assert friend.pool.owners() == []


async def test_a_friend_reaches_only_its_own_pool(friend, tmp_path):
    friend.quotas[STRANGER.owner_id] = 1 << 20
    async with device(OWNER, friend) as mine:
        await mine.put(ShareKey(RID, 0), SHARES[0])
    async with device(STRANGER, friend, seed=b"s" * 32) as theirs:
        assert await theirs.list() == frozenset()
        with pytest.raises(PeerError):
            await theirs.get(ShareKey(RID, 0))


async def test_a_head_rollback_is_refused(friend):
    empty = HeadBody(frozenset(), frozenset(), frozenset(), None)
    async with device(OWNER, friend) as store:
        await store.put_head(head.seal_head(OWNER.signing_key, OWNER.head_key, 3, empty))
        with pytest.raises(IntegrityError, match="rollback"):
            await store.put_head(head.seal_head(OWNER.signing_key, OWNER.head_key, 2, empty))
        assert head.verify_head(await store.get_head(), OWNER.owner_id).seq == 3


async def test_a_remove_signed_by_someone_else_or_replayed_is_refused(friend):
    async with device(OWNER, friend) as store:
        await store.put(ShareKey(RID, 0), SHARES[0])
        node = friend.identity.node_key
        forged = protocol.sign_remove(STRANGER.signing_key, node, RID, 0, int(time.time()))
        with pytest.raises(IntegrityError, match="signature"):
            await store._expect(protocol.Op.REMOVE, forged, protocol.Op.OK)
        old = protocol.sign_remove(OWNER.signing_key, node, RID, 0, int(time.time()) - 3600)
        with pytest.raises(IntegrityError, match="expired"):
            await store._expect(protocol.Op.REMOVE, old, protocol.Op.OK)
        good = protocol.sign_remove(OWNER.signing_key, node, RID, 0, int(time.time()))
        await store._expect(protocol.Op.REMOVE, good, protocol.Op.OK)
        with pytest.raises(IntegrityError, match="replays"):
            await store._expect(protocol.Op.REMOVE, good, protocol.Op.OK)


async def test_garbage_closes_the_stream_not_the_node(friend):
    async with device(OWNER, friend) as store:
        stream = await store._open()
        await stream.write(b"\xff\xff\xff\xff garbage")
        await trio.sleep(0.2)
    async with device(OWNER, friend) as store:  # the node still serves
        await store.put(ShareKey(RID, 1), SHARES[1])
        assert await store.get(ShareKey(RID, 1)) == SHARES[1]


async def test_a_plaintext_only_peer_cannot_connect(friend):
    key_pair = create_new_key_pair(b"p" * 32)
    insecure = new_host(
        key_pair=key_pair,
        sec_opt={PLAINTEXT_PROTOCOL_ID: InsecureTransport(key_pair)},
    )
    async with insecure.run([multiaddr.Multiaddr(LOOPBACK[0])]):
        # Security negotiation finds no common protocol, so the dial fails, quickly.
        with pytest.raises(SwarmDialAllFailedError), trio.fail_after(15):
            await insecure.connect(friend.info)
        with pytest.raises(SwarmException):
            await insecure.new_stream(friend.info.peer_id, [PROTOCOL])


async def test_an_absent_friend_is_retried_with_backoff(friend, tmp_path):
    from libp2p.peer.peerinfo import PeerInfo

    from p2pbackup.core.certificate import issue_certificate
    from p2pbackup.net.client import remote_store
    from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs

    identity = NodeIdentity.from_seed(b"z" * 32)
    host = build_host(identity)
    cert = issue_certificate(OWNER, identity.node_key, "laptop", 1)
    nowhere = PeerInfo(friend.info.peer_id, [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/9")])
    async with (
        host.run(listen_addrs(LOOPBACK)),
        remote_store(host, nowhere, "away", cert, OWNER.signing_key) as store,
    ):
        with pytest.raises(PeerError, match="cannot be reached"):
            await store.stat()
        with pytest.raises(PeerError, match="next try in"):
            await store.stat()  # fails fast during the back-off, no new dial


async def test_a_request_cut_off_mid_write_does_not_garble_the_next(tmp_path):
    # A sibling upload failing cancels this one, possibly in the middle of a frame: the
    # next request must not follow half a frame on the same stream (the friend would read
    # garbage and hang up).
    import os

    from tests.net.conftest import Friend, listen_addrs

    friend = Friend(str(tmp_path / "pool"), {OWNER.owner_id: 1 << 30})
    big_id = b"\x08" * 32
    big = erasure.encode(big_id, os.urandom(8 << 20), 2, 4)[1][0]  # a 4 MiB share
    async with friend.host.run(listen_addrs(LOOPBACK)), device(OWNER, friend) as store:
        for delay in (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064):
            with trio.move_on_after(delay):
                await store.put(ShareKey(big_id, 0), big)
            await store.put(ShareKey(RID, 1), SHARES[1])
            assert await store.get(ShareKey(RID, 1)) == SHARES[1]


async def test_the_hello_says_the_newest_share_format_the_friend_reads(friend, monkeypatch):
    async with device(OWNER, friend) as store:
        assert store.share_format == erasure.TREE_VERSION  # not heard yet: the safe guess
        await store.stat()
        assert store.share_format == erasure.VERSION
    # A node before share format 3 answered a HELLO with an empty OK.
    monkeypatch.setattr(protocol, "hello_ok_body", lambda newest: b"")
    async with device(OWNER, friend, seed=b"e" * 32) as store:
        await store.stat()
        assert store.share_format == erasure.TREE_VERSION
