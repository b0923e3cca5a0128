"""Finding friends' nodes and asking them what they keep for me.

A friend's node is looked for at its remembered addresses, where mDNS hears it
on this LAN, and wherever the rendezvous point last saw it; a node that cannot
be dialled is reached through the rendezvous point's relay. The daemon hands in
what its catalog knows (``Friend``: peer ids and addresses as strings) and
gets back a ``Peer``, which only this layer looks inside.

Dialing (``connect``) is happy eyeballs: the direct addresses first, the relay
after a short head start (or at once when the direct dial fails), each with its
own deadline; the first connection wins and the other attempt is cancelled. A
direct dial that hangs (a NAT dropping the SYN) no longer uses up the time the
relay needed. ``path_of`` says how a friend is connected now.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import trio
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from multiaddr import Multiaddr
from nacl.signing import SigningKey

from p2pbackup.errors import ConfigError, P2PBackupError, PeerError
from p2pbackup.net import discovery, internals
from p2pbackup.net.client import RemoteShareStore, remote_store
from p2pbackup.net.host import Host
from p2pbackup.net.reasons import reason_of
from p2pbackup.net.relay import Relay
from p2pbackup.storage.catalog import Friend
from p2pbackup.storage.store import Usage

log = logging.getLogger(__name__)

Peer = PeerInfo  # a node and the addresses to dial it at; opaque outside net/

LAN_LISTEN = 2.0  # seconds to listen for friends on the LAN before probing them
# Happy eyeballs: the relay starts this long after the direct dial (a direct path on a
# LAN answers in milliseconds); each has its own deadline, both within the storage
# client's 10 s to connect.
HEAD_START = 0.3
DIRECT_TIMEOUT = 9.0
RELAY_TIMEOUT = 9.0
RELAY_AGAIN = 0.5  # a relay that refused is asked again while the direct dial is pending
STAGGER = 0.25  # a peer's next address is dialled this long after the last one started


@dataclass(frozen=True)
class Reach:
    """What a node reaches others with: its host, what mDNS hears, the relay and the
    rendezvous point, and what its storage streams say HELLO with."""

    host: Host
    certificate: bytes
    signing_key: SigningKey
    lan: discovery.LanPeers | None = None
    relay: Relay | None = None
    point: Peer | None = None  # the rendezvous point, when one is set


def peer_at(address: str) -> Peer:
    """The node at a full address (``/ip4/.../tcp/.../p2p/<peer id>``)."""
    try:
        return info_from_p2p_addr(Multiaddr(address))
    except Exception as exc:  # multiaddr and peer-id parsing raise assorted errors
        raise ConfigError(f"{address!r} is not a node's address.") from exc


def peer_of(friend: Friend) -> Peer | None:
    """Where a friend's node was last known, as libp2p dials it."""
    addrs = []
    for address in friend.addresses:
        try:
            addrs.append(Multiaddr(address.split("/p2p/")[0]))
        except Exception:  # a damaged address in the catalog: skip it
            continue
    if not friend.node_ids or not addrs:
        return None
    return PeerInfo(ID.from_base58(friend.node_ids[0]), addrs)


def peer_id_of(peer: Peer) -> str:
    return peer.peer_id.to_base58()


def via_relay(reach: Reach, peer_id: ID) -> Callable[[], Awaitable[None]] | None:
    """How to reach ``peer_id`` through the rendezvous point's relay, if there is one."""
    point, node_relay = reach.point, reach.relay
    if point is None or node_relay is None or point.peer_id == peer_id:
        return None

    async def _dial() -> None:
        await node_relay.dial(point, peer_id)

    return _dial


def path_of(reach: Reach, peer: Peer | ID | str) -> str | None:
    """How this node is connected to ``peer`` now: "direct", "relay" (only through a
    circuit relay), or None (not connected)."""
    peer_id = peer.peer_id if isinstance(peer, PeerInfo) else peer
    if isinstance(peer_id, str):
        peer_id = ID.from_base58(peer_id)
    conns = reach.host.get_network().get_connections(peer_id)
    live = [c for c in conns if not getattr(c, "is_closed", False)]
    if not live:
        return None
    return "relay" if all(internals.is_relayed(c) for c in live) else "direct"


async def dial_direct(host: Host, peer: Peer) -> None:
    """Dial each of ``peer``'s addresses in the order given, the next one ``STAGGER``
    after the last started (at once when it failed); the first connection wins.

    ``host.connect`` dials one address per transport, the first its peerstore holds:
    a friend that moved was dialled at its old address alone, and never found at the
    new one the rendezvous point had just told (locate puts fresh addresses first)."""
    host.get_peerstore().add_addrs(peer.peer_id, peer.addrs, 120)
    network = host.get_network()
    failures: list[BaseException] = []
    won = trio.Event()

    async def _one(addr: Multiaddr, failed: trio.Event) -> None:
        try:
            await network.dial_addr(addr, peer.peer_id)
            won.set()
            nursery.cancel_scope.cancel()
        except (BaseLibp2pError, OSError) as exc:
            failures.append(exc)
            failed.set()

    async with trio.open_nursery() as nursery:
        for addr in peer.addrs:
            failed = trio.Event()
            nursery.start_soon(_one, addr, failed)
            with trio.move_on_after(STAGGER):
                await failed.wait()
    if not won.is_set():
        reasons = "; ".join(dict.fromkeys(reason_of(exc) for exc in failures))
        raise PeerError(reasons or "no address known")


async def connect(
    reach: Reach,
    peer: Peer,
    head_start: float = HEAD_START,
    direct_timeout: float = DIRECT_TIMEOUT,
    relay_timeout: float = RELAY_TIMEOUT,
) -> str:
    """Connect to ``peer``, direct and through the relay in parallel; the path that won.

    PeerError naming why each path failed if neither did."""
    if (path := path_of(reach, peer)) is not None:
        return path
    # Our own back-off decides when to try a peer again, not libp2p's negative cache.
    internals.forget_failed_dial(reach.host, peer.peer_id)
    through_relay = via_relay(reach, peer.peer_id)
    # Within the caller's deadline, so that the error names each path's reason.
    budget = trio.current_effective_deadline() - trio.current_time() - 0.05
    direct_timeout, relay_timeout = min(direct_timeout, budget), min(relay_timeout, budget)
    failed: dict[str, str] = {}
    won: list[str] = []
    direct_over = trio.Event()
    direct_ends = trio.current_time() + direct_timeout

    async def _direct(cancel: trio.CancelScope) -> None:
        try:
            if not peer.addrs:
                failed["direct"] = "no address known"
                return
            with trio.fail_after(direct_timeout):
                await dial_direct(reach.host, peer)
            won.append("direct")
            cancel.cancel()
        except (PeerError, trio.TooSlowError) as exc:
            failed["direct"] = reason_of(exc)
        finally:
            direct_over.set()

    async def _relayed(cancel: trio.CancelScope) -> None:
        assert through_relay is not None
        with trio.move_on_after(head_start):
            await direct_over.wait()
        try:
            with trio.fail_after(relay_timeout):
                await through_relay()
        except trio.TooSlowError:
            failed["relay"] = "no answer in time"
            return
        except PeerError as exc:
            failed["relay"] = exc.message
            if not await _relay_again():
                return
        won.append("relay")
        cancel.cancel()

    async def _relay_again() -> bool:
        """Refused at once (the peer has no slot there yet: the point just restarted)
        while the direct dial still hangs: ask again until that dial ends, rather than
        wait it out for nothing."""
        assert through_relay is not None
        with trio.move_on_at(direct_ends):
            while True:
                with trio.move_on_after(RELAY_AGAIN):
                    await direct_over.wait()
                if direct_over.is_set():
                    return False
                try:
                    await through_relay()
                    return True
                except PeerError as exc:
                    failed["relay"] = exc.message
        return False

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_direct, nursery.cancel_scope)
        if through_relay is not None:
            nursery.start_soon(_relayed, nursery.cancel_scope)
    if won:
        log.debug("connected to %s: %s", peer.peer_id, won[0])
        return won[0]
    if through_relay is None:
        raise PeerError(f"direct: {failed.get('direct', 'no answer')}; no relay to try")
    raise PeerError(
        f"direct: {failed.get('direct', 'no answer')}; "
        f"through the relay: {failed.get('relay', 'no answer')}"
    )


async def dial(reach: Reach, peer: Peer) -> None:
    """``connect``, as the storage client and pairing call it (the path is not needed)."""
    await connect(reach, peer)


def store_at(reach: Reach, peer: Peer, name: str) -> AbstractAsyncContextManager[RemoteShareStore]:
    """The friend's share store at ``peer``, dialled direct and through the relay at once."""
    return remote_store(
        reach.host, peer, name, reach.certificate, reach.signing_key,
        via=functools.partial(dial, reach),
    )  # fmt: skip


async def locate(
    reach: Reach, friend: Friend, moved: Callable[[bytes, list[str]], None]
) -> Peer | None:
    """A friend's node at its remembered addresses, where mDNS hears it on this LAN, and
    wherever the rendezvous point last saw it (``moved`` remembers that: friends move)."""
    peer = peer_of(friend)
    lan = reach.lan.peers() if reach.lan else []
    heard = [p for p in lan if str(p.peer_id) in friend.node_ids]
    if heard:
        known = peer.addrs if peer else []
        peer = PeerInfo(
            heard[0].peer_id, [*heard[0].addrs, *(a for a in known if a not in heard[0].addrs)]
        )
    point = reach.point
    if point is None or not friend.node_ids:
        return peer
    peer_id = ID.from_base58(friend.node_ids[0])
    try:
        found = await discovery.discover(reach.host, point, discovery.node_namespace(peer_id))
    except P2PBackupError as exc:
        log.info("rendezvous lookup of %s: %s", friend.name, exc.message)
        return peer
    fresh = [a for p in found if p.peer_id == peer_id for a in p.addrs]
    if not fresh:
        return peer
    moved(friend.owner_id, [f"{a}/p2p/{peer_id}" for a in fresh])
    return PeerInfo(peer_id, [*fresh, *(a for a in (peer.addrs if peer else []) if a not in fresh)])


async def probe(
    reach: Reach,
    friends: Iterable[Friend],
    moved: Callable[[bytes, list[str]], None],
    timeout: float = 5.0,
) -> dict[bytes, Usage | None]:
    """Each friend's answer to STAT (what they store for me, and my quota there), or None."""
    friends = list(friends)
    results: dict[bytes, Usage | None] = {}
    if reach.lan is not None:  # give mDNS a moment to hear friends on this network
        wanted = {n for f in friends for n in f.node_ids}
        with trio.move_on_after(LAN_LISTEN):
            await reach.lan.wait_until(lambda heard: wanted <= {str(p.peer_id) for p in heard})

    async def _one(friend: Friend) -> None:
        results[friend.owner_id] = None
        peer = await locate(reach, friend, moved)
        if peer is None:
            return
        async with store_at(reach, peer, friend.name) as store:
            with trio.move_on_after(timeout):
                try:
                    results[friend.owner_id] = await store.stat()
                except P2PBackupError as exc:
                    log.info("friend %s: %s", friend.name, exc.message)

    async with trio.open_nursery() as nursery:
        for friend in friends:
            nursery.start_soon(_one, friend)
    return results
