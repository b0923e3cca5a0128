"""The daemon keeps its friends connected: one stream per friend for every job, presence
and its events, a friend away costs a job nothing, unfriending lets go. Real libp2p hosts
on 127.0.0.1, in one process."""

from __future__ import annotations

import socket
from contextlib import asynccontextmanager

import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo
from nacl.signing import SigningKey

from p2pbackup.core.peerid import peer_id
from p2pbackup.daemon import friends as friends_module
from p2pbackup.daemon.friends import Friends
from p2pbackup.engine import events as ev
from p2pbackup.net import discovery, locate
from p2pbackup.net.service import StorageService
from tests.daemon.conftest import pair, started

pytestmark = pytest.mark.trio

THREE = ("alice", "bob", "carol")


class Heard:
    """Events as the daemon's bus would get them, with a way to wait for one."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self._news = trio.Event()

    def __call__(self, event: ev.Event) -> None:
        self.events.append(event)
        self._news.set()
        self._news = trio.Event()

    async def wait_for(self, kind: type, name: str) -> ev.Event:
        while True:
            for event in self.events:
                if isinstance(event, kind) and event.name == name:
                    return event
            await self._news.wait()


@asynccontextmanager
async def kept(nodes, heard: Heard, lan: discovery.LanPeers | None = None):
    """The laptop's nodes with its friends kept as its daemon keeps them."""
    laptop = nodes.nodes["laptop"]
    laptop.lan = lan
    friends = Friends(laptop, events=heard)
    async with trio.open_nursery() as nursery:
        await nursery.start(friends.run)
        await friends.settled(5)
        laptop.friends = friends
        try:
            yield friends
        finally:
            laptop.friends = laptop.lan = None
            nursery.cancel_scope.cancel()


def _online(friends: Friends) -> list[str]:
    return [row["name"] for row in friends.presence() if row["online"]]


@pytest.fixture
def counted(monkeypatch):
    """Storage streams each friend's node was opened, and friends located, as counts."""
    streams: list[str] = []
    located: list[str] = []
    serve, find = StorageService.handle, locate.locate

    async def _handle(self, stream):
        streams.append(str(stream.muxed_conn.peer_id))
        await serve(self, stream)

    async def _locate(reach, friend, moved):
        located.append(friend.name)
        return await find(reach, friend, moved)

    monkeypatch.setattr(StorageService, "handle", _handle)
    monkeypatch.setattr(locate, "locate", _locate)
    return streams, located


async def test_a_daemon_keeps_one_stream_per_friend_across_jobs(tmp_path, counted):
    streams, located = counted
    heard = Heard()
    async with started(tmp_path, friends=THREE) as nodes, kept(nodes, heard) as friends:
        laptop = nodes.nodes["laptop"].peer_id
        assert _online(friends) == list(THREE)
        online = {e.name for e in heard.events if isinstance(e, ev.FriendOnline)}
        assert online == set(THREE)
        for _ in range(3):
            status = await nodes.run("laptop", "status")
            assert status["friends_online"] == list(THREE) and status["offline"] == []
        await nodes.run("laptop", "snapshots")
        rows = await nodes.run("laptop", "friends")
        assert all(row["online"] and row["they_give"] for row in rows)
        assert streams.count(laptop) == 3  # one per friend, for five jobs
        assert sorted(located) == sorted(THREE)  # each located once, when the daemon began
        for row in friends.presence():
            assert row["rtt_ms"] is not None and row["path"] == "direct" and row["last_seen"]


async def test_a_friend_stopped_goes_offline_at_once_and_online_when_back(tmp_path):
    heard = Heard()
    async with started(tmp_path, friends=THREE) as nodes, kept(nodes, heard) as friends:
        await nodes.stop("bob")
        with trio.fail_after(3):  # its connection closed: no heartbeat needed
            gone = await heard.wait_for(ev.FriendOffline, "bob")
        assert gone.last_seen and _online(friends) == ["alice", "carol"]
        (row,) = [r for r in friends.presence() if r["name"] == "bob"]
        assert row["rtt_ms"] is None and row["path"] is None and row["since"]
        heard.events.clear()
        await nodes.start("bob")
        with trio.fail_after(8):  # the next try of its backoff
            back = await heard.wait_for(ev.FriendOnline, "bob")
        assert back.path == "direct" and back.rtt_ms is not None
        assert (await nodes.run("laptop", "status"))["friends_online"] == list(THREE)


@pytest.fixture
def frozen(monkeypatch):
    """Friends' nodes (by pool) that stop answering without closing anything: a laptop
    shut, a cable pulled."""
    pools: set = set()
    serve = StorageService._request

    async def _request(self, owner, message):
        if self._pool in pools:
            await trio.sleep_forever()
        return await serve(self, owner, message)

    monkeypatch.setattr(StorageService, "_request", _request)
    return pools


async def test_a_silent_friend_is_offline_within_the_heartbeat(tmp_path, frozen, monkeypatch):
    # The target: a friend SIGKILLed is told offline within 15 s.
    assert friends_module.HEARTBEAT + friends_module.BEAT_TIMEOUT <= 15
    monkeypatch.setattr(friends_module, "HEARTBEAT", 1.0)
    monkeypatch.setattr(friends_module, "BEAT_TIMEOUT", 0.5)
    heard = Heard()
    async with started(tmp_path, friends=THREE) as nodes, kept(nodes, heard) as friends:
        frozen.add(nodes.nodes["bob"].pool)
        with trio.fail_after(3):
            await heard.wait_for(ev.FriendOffline, "bob")
        assert _online(friends) == ["alice", "carol"]


async def test_a_job_is_not_slowed_by_a_friend_away(tmp_path, frozen, monkeypatch):
    monkeypatch.setattr(friends_module, "HEARTBEAT", 1.0)
    monkeypatch.setattr(friends_module, "BEAT_TIMEOUT", 0.5)
    heard = Heard()
    async with started(tmp_path, friends=THREE) as nodes, kept(nodes, heard):
        frozen.add(nodes.nodes["bob"].pool)
        with trio.fail_after(3):
            await heard.wait_for(ev.FriendOffline, "bob")
        for _ in range(3):
            began = trio.current_time()
            status = await nodes.run("laptop", "status")
            assert trio.current_time() - began < 0.5
            assert status["friends_online"] == ["alice", "carol"]
            assert [away["name"] for away in status["offline"]] == ["bob"]
        began = trio.current_time()
        rows = {row["name"]: row for row in await nodes.run("laptop", "friends")}
        assert trio.current_time() - began < 0.5 and not rows["bob"]["online"]


async def test_unfriend_while_running_lets_the_friend_go(tmp_path):
    heard = Heard()
    async with started(tmp_path, friends=THREE) as nodes, kept(nodes, heard) as friends:
        await nodes.run("laptop", "unfriend", friend="bob")
        assert [row["name"] for row in friends.presence()] == ["alice", "carol"]
        status = await nodes.run("laptop", "status")
        assert status["friends"] == 2 and status["friends_online"] == ["alice", "carol"]


async def test_pairing_while_running_connects_the_new_friend(tmp_path):
    heard = Heard()
    async with started(tmp_path, friends=("alice",)) as nodes, kept(nodes, heard) as friends:
        await nodes.start("bob")
        await pair(nodes.nodes["laptop"], nodes.nodes["bob"])
        status = await nodes.run("laptop", "status")  # the job waits for its first try
        assert status["friends_online"] == ["alice", "bob"]
        assert _online(friends) == ["alice", "bob"]


@pytest.fixture
def silent_point():
    """A rendezvous point that accepts connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


async def test_a_one_shot_job_dials_remembered_addresses_without_the_rendezvous_point(
    tmp_path, silent_point
):
    async with started(tmp_path, friends=THREE) as nodes:
        point_id = peer_id(SigningKey.generate().verify_key.encode())
        nodes.profiles["laptop"].update_settings(
            rendezvous=f"/ip4/127.0.0.1/tcp/{silent_point}/p2p/{point_id}"
        )
        with trio.fail_after(5):  # a lookup there would take its 10 s timeout
            status = await nodes.run("laptop", "status")
        assert status["friends_online"] == list(THREE)


async def test_a_friend_away_heard_by_mdns_is_tried_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(friends_module, "RETRY_FIRST", 60.0)  # only news can bring it back
    heard = Heard()
    async with started(tmp_path, friends=THREE) as nodes:
        with discovery.LanPeers(nodes.nodes["laptop"].host) as lan:
            async with kept(nodes, heard, lan) as friends:
                await nodes.stop("bob")
                with trio.fail_after(3):
                    await heard.wait_for(ev.FriendOffline, "bob")
                heard.events.clear()
                bob = await nodes.start("bob")
                await trio.sleep(0.5)
                assert "bob" not in _online(friends)  # its next try is a minute away
                lan._heard(PeerInfo(bob.host.get_id(), bob.host.get_addrs()))  # as zeroconf
                with trio.fail_after(3):
                    await heard.wait_for(ev.FriendOnline, "bob")
