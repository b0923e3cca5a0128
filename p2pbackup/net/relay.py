"""Circuit relay v2: a node behind NAT stays reachable through an always-on friend.

The rendezvous point (``--serve-rendezvous``) also relays. A node that uses
it keeps a reservation there, so friends who cannot dial it directly reach
it at ``<point address>/p2p-circuit/p2p/<node id>``. The relay only forwards
bytes: the connection through it is Noise end to end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from libp2p.abc import IHost
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP_PROTOCOL
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.transport import CircuitV2Transport
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from p2pbackup.errors import PeerError

TIMEOUT = 15


class Relay:
    """This node's side of circuit relay: reserve a slot, dial through a point."""

    def __init__(self, host: IHost, protocol: CircuitV2Protocol, nursery: trio.Nursery) -> None:
        self._host = host
        self._nursery = nursery
        self._transport = CircuitV2Transport(
            host, protocol, RelayConfig(roles=RelayRole.STOP | RelayRole.CLIENT)
        )

    async def reserve(self, point: PeerInfo) -> None:
        """Be reachable through ``point`` (the library refreshes the reservation)."""
        try:
            with trio.fail_after(TIMEOUT):
                await self._host.connect(point)
                stream = await self._host.new_stream(point.peer_id, [HOP_PROTOCOL])
                if not await self._transport.reserve(stream, point.peer_id, self._nursery):
                    raise PeerError("The relay refused a reservation.")
        except (BaseLibp2pError, OSError, trio.TooSlowError) as exc:
            raise PeerError(f"No reservation at the relay: {exc or 'timeout'}.") from exc

    async def dial(self, point: PeerInfo, peer_id: ID) -> None:
        """Open a connection to ``peer_id`` through ``point``; streams then use it."""
        circuit = Multiaddr(f"{point.addrs[0]}/p2p/{point.peer_id}/p2p-circuit/p2p/{peer_id}")
        try:
            with trio.fail_after(TIMEOUT):
                await self._host.connect(point)
                await self._transport.dial(circuit)
        except (BaseLibp2pError, OSError, ConnectionError, trio.TooSlowError) as exc:
            raise PeerError(f"Could not reach {peer_id} through the relay: {exc}.") from exc


@asynccontextmanager
async def relay(host: IHost, serve: bool = False) -> AsyncIterator[Relay]:
    """Circuit relay on a running host; with ``serve``, it relays for others too."""
    protocol = CircuitV2Protocol(host, allow_hop=serve)
    async with background_trio_service(protocol), trio.open_nursery() as nursery:
        yield Relay(host, protocol, nursery)
        nursery.cancel_scope.cancel()
