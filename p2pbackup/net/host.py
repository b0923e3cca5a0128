"""The node's libp2p host: TCP, Noise only, Yamux; identity from the profile.

py-libp2p's ``new_host()`` accepts plaintext peers unless told otherwise, so
the security options here name Noise and nothing else: a peer that offers
only plaintext cannot connect (tests/net/test_host.py shows it).

The node key is the device's own random Ed25519 key, kept in the profile as
its 32-byte seed (file mode 0600), so the peer id survives restarts. It is
not derived from the recovery phrase: each device is its own node, vouched
for by a device certificate signed with the owner key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.ed25519 import Ed25519PublicKey, create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport

from p2pbackup.errors import ConfigError, PeerError
from p2pbackup.net import internals
from p2pbackup.net.addresses import DEFAULT_LISTEN, expand_unspecified, interface_addresses
from p2pbackup.storage.profile import node_seed

log = logging.getLogger(__name__)

Host = IHost  # a running libp2p host; opaque outside net/

STRANGER_CONNECTIONS = 32  # inbound connections of peers not (yet) known as friends' devices


@dataclass(frozen=True)
class NodeIdentity:
    key_pair: KeyPair

    @property
    def node_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key: what device certificates name."""
        return self.key_pair.public_key.to_bytes()

    @property
    def peer_id(self) -> ID:
        return ID.from_pubkey(self.key_pair.public_key)

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeIdentity:
        return cls(create_new_key_pair(seed))

    @classmethod
    def load_or_create(cls, path: str) -> NodeIdentity:
        """The node key kept at ``path``, created (mode 0600) the first time."""
        return cls.from_seed(node_seed(path))


def node_key_of(peer_id: ID) -> bytes:
    """The Ed25519 public key a peer id embeds (libp2p's identity multihash)."""
    try:
        public_key = peer_id.extract_public_key()
    except Exception as exc:  # the library raises several types for a malformed id
        raise PeerError(f"Peer {peer_id} does not carry a public key.") from exc
    if not isinstance(public_key, Ed25519PublicKey):
        raise PeerError(f"Peer {peer_id} does not use an Ed25519 key.")
    return public_key.to_bytes()


class StrangerCap(INotifee):
    """Keeps at most ``limit`` inbound connections of strangers open, closing the oldest,
    so strangers cannot make the node hold buffers for thousands of connections.

    A stranger is a peer none of whose storage streams has passed HELLO (``vouch``);
    connections the node dialled itself are not counted. The oldest goes, not the
    newest, so a friend's new device is never locked out: it has until ``limit`` more
    strangers arrive to say HELLO, which takes a round trip.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._friends: set[ID] = set()
        self._strangers: dict[INetConn, None] = {}  # oldest first

    @property
    def strangers(self) -> int:
        return len(self._strangers)

    def trust(self, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        self._friends.add(peer)
        for known in [c for c in self._strangers if c.muxed_conn.peer_id == peer]:
            del self._strangers[known]

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        if not internals.is_inbound(conn) or peer in self._friends:
            return
        self._strangers[conn] = None
        if len(self._strangers) > self.limit:
            oldest = next(iter(self._strangers))
            del self._strangers[oldest]
            log.info("closing a connection from %s: %d strangers are connected",
                     oldest.muxed_conn.peer_id, self.limit)  # fmt: skip
            await oldest.close()

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._strangers.pop(conn, None)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, addr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, addr: multiaddr.Multiaddr) -> None:
        pass


def vouch(stream: INetStream) -> None:
    """This stream's peer is a friend's device: its connections are not a stranger's."""
    conn, notifees = internals.notifees_of(stream)
    for notifee in notifees:
        if conn is not None and isinstance(notifee, StrangerCap):
            notifee.trust(conn)


def build_host(identity: NodeIdentity, strangers: int | None = STRANGER_CONNECTIONS) -> IHost:
    """A host that speaks Noise only (never plaintext) over TCP, with Yamux.

    mDNS is not the host's: ``discovery.on_lan`` runs it beside. At most ``strangers`` inbound
    connections of peers not known as friends' devices stay open (None: any
    number, for a rendezvous point, whose users are all strangers).
    """
    internals.apply()
    noise = NoiseTransport(identity.key_pair, noise_privkey=create_x25519_key_pair().private_key)
    host = new_host(
        key_pair=identity.key_pair,
        sec_opt={NOISE_PROTOCOL_ID: noise},
        # With the default of 3 connections per peer, every dial waits out a 250 ms
        # happy-eyeballs delay; one connection per friend is all we use.
        connection_config=ConnectionConfig(max_connections_per_peer=1),
    )
    internals.dial_once(host)
    internals.never_auto_connect(host)
    if strangers is not None:
        host.get_network().register_notifee(StrangerCap(strangers))
    # Listening on 0.0.0.0, the library would announce 0.0.0.0 (mDNS reads these raw
    # listen addresses, friend cards and identify the advertised ones): say which
    # interfaces instead, so a friend on another machine can dial them.
    internals.announce_as(host, lambda raw: expand_unspecified(raw, interface_addresses()))
    return host


def listen_addrs(addresses: list[str] | None = None) -> list[multiaddr.Multiaddr]:
    try:
        return [multiaddr.Multiaddr(a) for a in (addresses or [DEFAULT_LISTEN])]
    except Exception as exc:  # multiaddr raises its own assorted errors
        raise ConfigError(f"Not a listen address: {addresses} ({exc}).") from exc


@asynccontextmanager
async def serving(host: IHost, addrs: Sequence[multiaddr.Multiaddr]) -> AsyncIterator[None]:
    """Run ``host`` on ``addrs``; on exit close its listeners and connections too.

    libp2p's ``host.run`` leaves the TCP listener (a trio system task) accepting and
    answering after it returns: a node stopped inside a process would look half alive to
    its friends until their requests time out.

    The connections close all at once, without the library's grace sleeps
    (``internals.hang_up``): the library closes them one after another, 0.2 s each, so
    a one-shot command with four friends spent 0.8 s saying goodbye.
    """
    async with host.run(addrs):
        try:
            yield
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                network = host.get_network()
                await internals.hang_up(network.get_connections())
                await network.close()
