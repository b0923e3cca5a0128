"""Finding nodes: on the local network (mDNS), and through a rendezvous point.

On a LAN nothing needs configuring: nodes started with mDNS announce
themselves, and a joiner tries each node it hears until one knows the
invite's nameplate (a node that does not have it says so without using any
code up).

Any node started with ``--serve-rendezvous`` (a friend's always-on node, a
small server) is one. Nodes pointed at it with ``--rendezvous MULTIADDR``
register there, so friends on other networks can find them:

- ``p2pbackup/invite/<nameplate>`` while an invite is pending, so a joiner
  with nothing but the code finds the inviter;
- ``p2pbackup/node/<peer id>`` while a node runs, so friends find it again
  after its address changed.

The namespaces carry no secret: the words of an invite code never leave the
two friends' machines.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio
from libp2p.abc import IHost
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.discovery.mdns.mdns import MDNSDiscovery, create_mdns_discovery
from libp2p.discovery.rendezvous.client import RendezvousClient
from libp2p.discovery.rendezvous.errors import RendezvousError
from libp2p.discovery.rendezvous.service import RendezvousService
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from multiaddr import Multiaddr

from p2pbackup.errors import ConfigError, PeerError
from p2pbackup.net import internals
from p2pbackup.net.reasons import reason_of

log = logging.getLogger(__name__)

TIMEOUT = 10
TTL = 2 * 3600
STALE_SWEEP = 60  # seconds between sweeps of nodes mDNS has not heard for twice their TTL


def invite_namespace(nameplate: int) -> str:
    return f"p2pbackup/invite/{nameplate}"


def node_namespace(peer_id: ID) -> str:
    return f"p2pbackup/node/{peer_id.to_base58()}"


def serve(host: IHost) -> RendezvousService:
    """Make ``host`` a rendezvous point (registrations live in memory)."""
    return RendezvousService(host)


def rendezvous_peer(address: str, flag: str = "--rendezvous") -> PeerInfo:
    """The node at ``address``, given by the user with ``flag`` (named in the error)."""
    try:
        return info_from_p2p_addr(Multiaddr(address))
    except Exception as exc:  # multiaddr and peer-id parsing raise assorted errors
        raise ConfigError(
            f"{flag} {address!r} is not a node's address: it looks like "
            "/ip4/192.0.2.7/tcp/4001/p2p/12D3KooW... ('p2pbackup id' prints it on that node)."
        ) from exc


async def _client(host: IHost, point: PeerInfo) -> RendezvousClient:
    # A point that was down a moment ago (restarting) is dialled again now, whatever
    # libp2p's negative cache says: callers keep their own back-off.
    internals.forget_failed_dial(host, point.peer_id)
    try:
        with trio.fail_after(TIMEOUT):
            await host.connect(point)
    except (BaseLibp2pError, OSError, trio.TooSlowError) as exc:
        raise PeerError(f"The rendezvous point cannot be reached: {reason_of(exc)}.") from exc
    return RendezvousClient(host, point.peer_id)


async def register(host: IHost, point: PeerInfo, namespace: str) -> None:
    client = await _client(host, point)
    try:
        with trio.fail_after(TIMEOUT):
            await client.register(namespace, TTL)
    except (RendezvousError, BaseLibp2pError, ValueError, trio.TooSlowError) as exc:
        raise PeerError(f"The rendezvous point refused to register us: {reason_of(exc)}.") from exc


async def unregister(host: IHost, point: PeerInfo, namespace: str) -> None:
    client = await _client(host, point)
    try:
        with trio.fail_after(TIMEOUT):
            await client.unregister(namespace)
    except (RendezvousError, BaseLibp2pError, trio.TooSlowError):
        pass  # registrations expire anyway


async def discover(host: IHost, point: PeerInfo, namespace: str) -> list[PeerInfo]:
    client = await _client(host, point)
    try:
        with trio.fail_after(TIMEOUT):
            peers, _ = await client.discover(namespace)
    except (RendezvousError, BaseLibp2pError, trio.TooSlowError) as exc:
        raise PeerError(f"The rendezvous point did not answer: {reason_of(exc)}.") from exc
    return [p for p in peers if p.peer_id != host.get_id() and p.addrs]


class LanPeers:
    """Nodes heard on the local network while in use (``with LanPeers(host) as lan``).

    A node stays known until it is forgotten (``forget``: it did not answer a dial)
    or heard anew. zeroconf reports from its own thread, hence the lock; news
    reaches trio tasks (``wait_until``) through the trio token of the run that
    entered the context.
    """

    def __init__(self, host: IHost, wake: Callable[[], None] = lambda: None) -> None:
        self._own = host.get_id()
        self._wake = wake  # starts listening, for a node that listens only when asked
        self._lock = threading.Lock()
        self._found: dict[ID, PeerInfo] = {}
        self._news = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None

    def _heard(self, peer: PeerInfo) -> None:
        if peer.peer_id != self._own and peer.addrs:
            with self._lock:
                new = peer.peer_id not in self._found
                self._found[peer.peer_id] = peer
            if new:
                log.info("heard node %s on the local network", peer.peer_id)
            if self._token is not None:
                with contextlib.suppress(trio.RunFinishedError):
                    self._token.run_sync_soon(self._tell)  # thread-safe; runs in trio

    def _tell(self) -> None:
        self._news.set()
        self._news = trio.Event()

    def __enter__(self) -> LanPeers:
        self._token = trio.lowlevel.current_trio_token()
        peerDiscovery.register_peer_discovered_handler(self._heard)
        return self

    def __exit__(self, *exc: object) -> None:
        peerDiscovery.unregister_peer_discovered_handler(self._heard)
        self._token = None

    def peers(self) -> list[PeerInfo]:
        with self._lock:
            return list(self._found.values())

    def forget(self, peer_id: ID) -> None:
        """Drop a node that did not answer, so the next search does not dial it again.
        If it comes back, mDNS announces it anew and it is heard again."""
        with self._lock:
            self._found.pop(peer_id, None)

    async def wait_until(self, wanted: Callable[[list[PeerInfo]], bool]) -> list[PeerInfo]:
        """The nodes heard, once ``wanted`` holds for them (no polling: each new node
        wakes the waiters). Put a deadline around it."""
        self._wake()
        while not wanted(peers := self.peers()):
            await self._news.wait()
        return peers


@asynccontextmanager
async def on_lan(host: IHost, announce: bool) -> AsyncIterator[LanPeers]:
    """mDNS for a running ``host``: the nodes heard on this network, and with ``announce``
    this node told to them.

    zeroconf's calls block (registering a name probes the network for about 1.75 s), so
    they run in a worker thread and never hold the node up. A node that does not
    announce starts listening only when first asked to wait for a node: a one-shot
    command whose friends all answered at their remembered addresses never starts
    mDNS at all. Enter it once the host listens: the announcement names its addresses.
    """
    running: list[MDNSDiscovery] = []

    async def _run() -> None:
        try:
            mdns = await trio.to_thread.run_sync(lambda: create_mdns_discovery(
                host.get_network(), host=host))  # fmt: skip
        except OSError as exc:  # no multicast here: friends are still found by address
            log.warning("mDNS is off: the local network cannot be listened to (%s)", exc)
            return
        running.append(mdns)
        if announce:
            await trio.to_thread.run_sync(mdns.broadcaster.register)  # logs its own errors
            while True:  # what stock start() does, but in this run's own task
                await trio.sleep(STALE_SWEEP)
                mdns.listener.cleanup_stale_entries(max_age=2 * mdns.ttl)

    started = False
    async with trio.open_nursery() as nursery:

        def _wake() -> None:
            nonlocal started
            if not started:
                started = True
                nursery.start_soon(_run)

        with LanPeers(host, _wake) as lan:
            if announce:
                _wake()
            try:
                yield lan
            finally:
                nursery.cancel_scope.cancel()  # a call in a worker thread still finishes
    if running:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_stop, running[0], announce)


def _stop(mdns: MDNSDiscovery, announced: bool) -> None:
    if announced:
        mdns.stop()  # says goodbye on the network, then closes
    else:
        mdns.listener.stop()
        mdns.zeroconf.close()
