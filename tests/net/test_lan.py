"""mDNS beside a running host (discovery.on_lan): when it starts, and that it never
holds the node up. zeroconf itself is replaced here, so nothing multicasts outside
this test; tests/cli/test_mdns.py runs the real thing in a network namespace."""

from __future__ import annotations

import time

import pytest
import trio

from p2pbackup.net import discovery
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs, serving

pytestmark = pytest.mark.trio

REGISTER_SECONDS = 0.5  # zeroconf probes its name for about 1.75 s; less is enough here


class FakeMdns:
    """What on_lan uses of libp2p's MDNSDiscovery; registering blocks its thread."""

    def __init__(self, made: list[FakeMdns]) -> None:
        self.ttl = 120
        self.calls: list[str] = []
        self.listener = self
        self.zeroconf = self
        self.broadcaster = self
        made.append(self)

    def register(self) -> None:
        time.sleep(REGISTER_SECONDS)
        self.calls.append("register")

    def cleanup_stale_entries(self, max_age: int) -> int:
        return 0

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def made(monkeypatch) -> list[FakeMdns]:
    made: list[FakeMdns] = []
    monkeypatch.setattr(discovery, "create_mdns_discovery", lambda *a, **k: FakeMdns(made))
    return made


async def test_a_node_that_only_listens_starts_mdns_when_first_asked_to_wait(made):
    host = build_host(NodeIdentity.from_seed(b"l" * 32))
    async with serving(host, listen_addrs()), discovery.on_lan(host, announce=False) as lan:
        await trio.sleep(0.1)
        assert made == []  # friends that answered at their addresses never cost mDNS
        assert lan.peers() == []
        with trio.move_on_after(0.2):
            await lan.wait_until(lambda heard: bool(heard))
        assert len(made) == 1
    # listening only: it closes without saying goodbye, for it never said hello
    assert made[0].calls == ["stop", "close"]


async def test_announcing_runs_in_a_worker_thread_and_the_node_goes_on(made):
    host = build_host(NodeIdentity.from_seed(b"a" * 32))
    ticks = 0
    async with serving(host, listen_addrs()), discovery.on_lan(host, announce=True):
        with trio.fail_after(10):
            while not (made and made[0].calls == ["register"]):
                await trio.sleep(0.01)
                ticks += 1
    # The loop ran while zeroconf registered: a blocked trio thread would count one tick.
    assert ticks >= (REGISTER_SECONDS / 0.01) / 3
    assert made[0].calls == ["register", "stop"]


async def test_a_network_without_multicast_leaves_mdns_off_and_the_node_running(monkeypatch):
    def no_multicast(*args, **kwargs):
        raise OSError(19, "No such device")

    monkeypatch.setattr(discovery, "create_mdns_discovery", no_multicast)
    host = build_host(NodeIdentity.from_seed(b"n" * 32))
    async with serving(host, listen_addrs()), discovery.on_lan(host, announce=False) as lan:
        with trio.move_on_after(0.2):
            await lan.wait_until(lambda heard: bool(heard))
        assert lan.peers() == []  # nobody heard, and the node is still there to use
        assert host.get_addrs()
