"""A node running on a profile: the libp2p host with the storage service and invites.

The daemon runs one for as long as it lives; CLI commands that need the
network run one for the length of the command. Either way the profile's lock
is held, so two nodes never share a profile.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.pairing import FriendCard, make_card
from p2pbackup.daemon.identity import device_name, identity_of, with_ports
from p2pbackup.errors import P2PBackupError
from p2pbackup.net import discovery, invite, relay
from p2pbackup.net.client import remote_store
from p2pbackup.net.host import (
    DEFAULT_LISTEN,
    STRANGER_CONNECTIONS,
    NodeIdentity,
    build_host,
    listen_addrs,
    serving,
)
from p2pbackup.net.service import PROTOCOL as STORAGE_PROTOCOL
from p2pbackup.net.service import StorageService
from p2pbackup.storage.catalog import Catalog, Friend
from p2pbackup.storage.profile import Profile
from p2pbackup.storage.sharepool import SharePool
from p2pbackup.storage.store import Usage

log = logging.getLogger(__name__)

# mDNS is on unless this is "0": friends on one LAN find each other with no
# configuration. Tests turn it off, so nothing multicasts outside their namespace.
MDNS_ENV = "P2PBACKUP_MDNS"
LAN_LISTEN = 2.0  # seconds to listen for friends on the LAN before probing them


@dataclass
class Node:
    profile: Profile
    keys: OwnerKeys
    identity: NodeIdentity
    certificate: bytes
    catalog: Catalog
    pool: SharePool
    host: IHost
    invites: invite.Invites
    lan: discovery.LanPeers | None = None  # nodes heard by mDNS, when it is on
    relay: relay.Relay | None = None

    def via_relay(self, peer_id: ID) -> Callable[[], Awaitable[None]] | None:
        """How to reach ``peer_id`` through the rendezvous point when it cannot be dialled."""
        point = self.rendezvous()
        if point is None or self.relay is None:
            return None
        node_relay = self.relay

        async def _dial() -> None:
            await node_relay.dial(point, peer_id)

        return _dial

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id.to_base58()

    def rendezvous(self) -> PeerInfo | None:
        address = self.profile.settings().get("rendezvous")
        return discovery.rendezvous_peer(address) if address else None

    def addresses(self) -> list[str]:
        return [f"{a}" for a in self.host.get_addrs()]

    def card(self, offered_quota: int) -> bytes:
        return make_card(
            self.keys, device_name(self.profile), self.certificate, self.addresses(), offered_quota
        )

    def remember_friend(self, card: FriendCard, i_give: int) -> None:
        peer_id = str(_peer_id_of(card))
        self.catalog.add_friend(
            card.owner_id,
            card.name,
            peer_id,
            list(card.addresses),
            card.certificate_bytes,
            i_give,
            card.offered_quota,
        )


def _peer_id_of(card: FriendCard) -> str:
    from libp2p.crypto.ed25519 import Ed25519PublicKey
    from libp2p.peer.id import ID

    return ID.from_pubkey(Ed25519PublicKey.from_bytes(card.certificate.node_key)).to_base58()


@asynccontextmanager
async def running_node(
    profile: Profile,
    listen: list[str] | None = None,
    rendezvous: str | None = None,
    serve_rendezvous: bool = False,
) -> AsyncIterator[Node]:
    """Start a node on ``profile``; the listen port and the rendezvous point are remembered."""
    profile.require()
    if listen:
        profile.update_settings(listen=listen)
    if rendezvous:
        discovery.rendezvous_peer(rendezvous)  # refuse a bad address before remembering it
        profile.update_settings(rendezvous=rendezvous)
    addresses = profile.settings().get("listen") or [DEFAULT_LISTEN]
    device = identity_of(profile)
    keys, certificate = device.keys, device.certificate
    identity = NodeIdentity.from_seed(device.seed)
    with profile.lock(), ExitStack() as stack:
        catalog = Catalog(profile.path("catalog.sqlite"))
        try:
            pool = SharePool(profile.path("pool"), lambda owner: catalog.quota_for(owner) or 0)
            mdns = os.environ.get(MDNS_ENV, "1") != "0"
            # A rendezvous point serves strangers by design: their connections are not capped.
            strangers = None if serve_rendezvous else STRANGER_CONNECTIONS
            host = build_host(identity, mdns=mdns, strangers=strangers)
            # Listen before the host starts: mDNS reports what it hears at once.
            lan = stack.enter_context(discovery.LanPeers(host)) if mdns else None
            service = StorageService(pool, catalog.quota_for, identity.node_key)
            invites = invite.Invites()
            host.set_stream_handler(STORAGE_PROTOCOL, service.handle)
            host.set_stream_handler(invite.PROTOCOL, invites.handle)
            async with (
                serving(host, listen_addrs(addresses)),
                relay.relay(host, serve=serve_rendezvous) as node_relay,
            ):
                chosen = [str(a).split("/p2p/")[0] for a in host.get_addrs()]
                if any(a.endswith("/tcp/0") for a in addresses):
                    profile.update_settings(listen=with_ports(addresses, chosen))
                log.info("node %s listening on %s", identity.peer_id, chosen)
                if serve_rendezvous:
                    discovery.serve(host)
                node = Node(profile, keys, identity, certificate, catalog, pool, host, invites)
                node.lan, node.relay = lan, node_relay
                point = node.rendezvous()
                if point is not None:  # findable there, and reachable through it behind NAT
                    try:
                        await discovery.register(
                            host, point, discovery.node_namespace(host.get_id())
                        )
                        await node_relay.reserve(point)
                    except P2PBackupError as exc:
                        log.warning("rendezvous: %s", exc.message)
                yield node
        finally:
            catalog.close()


def peer_info_of(friend: Friend) -> PeerInfo | None:
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


async def locate(node: Node, friend: Friend) -> PeerInfo | None:
    """A friend's node at its remembered addresses, where mDNS hears it on this LAN, and
    wherever the rendezvous point last saw it (remembered from now on): friends move."""
    peer = peer_info_of(friend)
    heard = [p for p in (node.lan.peers() if node.lan else []) if str(p.peer_id) in friend.node_ids]
    if heard:
        known = peer.addrs if peer else []
        peer = PeerInfo(
            heard[0].peer_id, [*heard[0].addrs, *(a for a in known if a not in heard[0].addrs)]
        )
    point = node.rendezvous()
    if point is None or not friend.node_ids:
        return peer
    peer_id = ID.from_base58(friend.node_ids[0])
    try:
        found = await discovery.discover(node.host, point, discovery.node_namespace(peer_id))
    except P2PBackupError as exc:
        log.info("rendezvous lookup of %s: %s", friend.name, exc.message)
        return peer
    fresh = [a for p in found if p.peer_id == peer_id for a in p.addrs]
    if not fresh:
        return peer
    node.catalog.set_addresses(friend.owner_id, [f"{a}/p2p/{peer_id}" for a in fresh])
    return PeerInfo(peer_id, [*fresh, *(a for a in (peer.addrs if peer else []) if a not in fresh)])


async def probe_friends(node: Node, timeout: float = 5.0) -> dict[bytes, Usage | None]:
    """Each friend's answer to STAT (what they store for me, and my quota there), or None."""
    results: dict[bytes, Usage | None] = {}
    if node.lan is not None:  # give mDNS a moment to hear friends on this network
        wanted = {n for f in node.catalog.friends() for n in f.node_ids}
        with trio.move_on_after(LAN_LISTEN):
            while not wanted <= {str(p.peer_id) for p in node.lan.peers()}:
                await trio.sleep(0.1)

    async def _one(friend: Friend) -> None:
        results[friend.owner_id] = None
        peer = await locate(node, friend)
        if peer is None:
            return
        async with remote_store(
            node.host,
            peer,
            friend.name,
            node.certificate,
            node.keys.signing_key,
            via=node.via_relay(peer.peer_id),
        ) as store:
            with trio.move_on_after(timeout):
                try:
                    results[friend.owner_id] = await store.stat()
                except P2PBackupError as exc:
                    log.info("friend %s: %s", friend.name, exc.message)

    async with trio.open_nursery() as nursery:
        for friend in node.catalog.friends():
            nursery.start_soon(_one, friend)
    return results
