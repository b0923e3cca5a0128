"""A node running on a profile: the libp2p host with the storage service and invites.

The daemon runs one for as long as it lives; CLI commands that need the
network run one for the length of the command. Either way the profile's lock
is held, so two nodes never share a profile.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.pairing import FriendCard, make_card
from p2pbackup.core.peerid import peer_id as peer_id_of_key
from p2pbackup.daemon.identity import device_name, identity_of, with_ports
from p2pbackup.net import discovery, invite, locate, relay
from p2pbackup.net.host import (
    DEFAULT_LISTEN,
    STRANGER_CONNECTIONS,
    Host,
    NodeIdentity,
    build_host,
    listen_addrs,
    serving,
)
from p2pbackup.net.service import PROTOCOL as STORAGE_PROTOCOL
from p2pbackup.net.service import StorageService
from p2pbackup.storage.catalog import Catalog
from p2pbackup.storage.profile import Profile
from p2pbackup.storage.sharepool import SharePool

if TYPE_CHECKING:
    from p2pbackup.daemon.friends import Friends

log = logging.getLogger(__name__)

# mDNS is on unless this is "0": friends on one LAN find each other with no
# configuration. Tests turn it off, so nothing multicasts outside their namespace.
MDNS_ENV = "P2PBACKUP_MDNS"


@dataclass
class Node:
    profile: Profile
    keys: OwnerKeys
    identity: NodeIdentity
    certificate: bytes
    catalog: Catalog
    pool: SharePool
    host: Host
    invites: invite.Invites
    lan: discovery.LanPeers | None = None  # nodes heard by mDNS, when it is on
    relay: relay.Relay | None = None
    friends: Friends | None = None  # the daemon's friends kept connected; None: one-shot

    def reach(self) -> locate.Reach:
        """What this node reaches its friends with, as the net layer needs it."""
        return locate.Reach(
            self.host, self.certificate, self.keys.signing_key, self.lan, self.relay,
            self.rendezvous(),
        )  # fmt: skip

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id.to_base58()

    def rendezvous(self) -> locate.Peer | None:
        address = self.profile.settings().get("rendezvous")
        return discovery.rendezvous_peer(address) if address else None

    def addresses(self) -> list[str]:
        return [f"{a}" for a in self.host.get_addrs()]

    def card(self, offered_quota: int) -> bytes:
        return make_card(
            self.keys, device_name(self.profile), self.certificate, self.addresses(), offered_quota
        )

    def remember_friend(self, card: FriendCard, i_give: int) -> None:
        peer_id = peer_id_of_key(card.certificate.node_key)
        self.catalog.add_friend(
            card.owner_id,
            card.name,
            peer_id,
            list(card.addresses),
            card.certificate_bytes,
            i_give,
            card.offered_quota,
        )


@asynccontextmanager
async def running_node(
    profile: Profile,
    listen: list[str] | None = None,
    rendezvous: str | None = None,
    serve_rendezvous: bool = False,
    public_relay: bool = False,
    announce: bool = False,
) -> AsyncIterator[Node]:
    """Start a node on ``profile``; the listen port and the rendezvous point are remembered.

    A rendezvous point relays for its owner's friends' devices and the owner's own, or
    with ``public_relay`` for anyone, with smaller circuits (net/relay.py). Registering
    at the point and holding a slot there is the daemon's (daemon/rendezvous.py): a
    one-shot node takes no slot. With mDNS on, the node hears others on this network;
    with ``announce`` (a daemon, an inviter) others hear it too."""
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
    with profile.lock():
        catalog = Catalog(profile.path("catalog.sqlite"))
        try:
            pool = SharePool(profile.path("pool"), lambda owner: catalog.quota_for(owner) or 0)
            mdns = os.environ.get(MDNS_ENV, "1") != "0"
            # A rendezvous point serves strangers by design: their connections are not capped.
            strangers = None if serve_rendezvous else STRANGER_CONNECTIONS
            host = build_host(identity, strangers=strangers)
            admission = None  # a public point admits anyone; a friends' point, friends
            if serve_rendezvous and not public_relay:
                admission = relay.Admission(
                    keys.owner_id, lambda owner: catalog.quota_for(owner) is not None,
                    lambda: {n for f in catalog.friends() for n in f.node_ids},
                )  # fmt: skip
            service = StorageService(pool, catalog.quota_for, identity.node_key,
                                     saw=admission.saw if admission else None)  # fmt: skip
            invites = invite.Invites()
            host.set_stream_handler(STORAGE_PROTOCOL, service.handle)
            host.set_stream_handler(invite.PROTOCOL, invites.handle)
            async with (
                serving(host, listen_addrs(addresses)),
                relay.relay(
                    host, certificate,
                    serve=(relay.PUBLIC if public_relay else relay.FRIENDS_ONLY)
                    if serve_rendezvous else None,
                    admits=admission.admits if admission else None,
                ) as node_relay,  # fmt: skip
            ):
                chosen = [str(a).split("/p2p/")[0] for a in host.get_addrs()]
                if any(a.endswith("/tcp/0") for a in addresses):
                    profile.update_settings(listen=with_ports(addresses, chosen))
                log.info("node %s listening on %s", identity.peer_id, chosen)
                if serve_rendezvous:
                    discovery.serve(host)
                node = Node(profile, keys, identity, certificate, catalog, pool, host, invites)
                node.relay = node_relay
                async with discovery.on_lan(host, announce) if mdns else nullcontext() as lan:
                    node.lan = lan
                    yield node
        finally:
            catalog.close()
