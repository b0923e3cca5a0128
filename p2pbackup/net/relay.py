"""Circuit relay v2: a node behind NAT stays reachable through an always-on friend.

The rendezvous point (``--serve-rendezvous``) also relays. A node that uses
it keeps a reservation there, so friends who cannot dial it directly reach
it at ``<point address>/p2p-circuit/p2p/<node id>``. The relay only forwards
bytes: the connection through it is Noise end to end.

What a point serves is ours to say, not the library's defaults (4 slots, 1 GiB
and 1 hour per circuit, for anyone: docs/security.md, "Relay"):

- by default (``FRIENDS_ONLY``) it reserves slots only for its owner's friends'
  devices and the owner's own, known by peer id or by the device certificate
  a node shows before it asks (a storage HELLO), and its circuits are big
  enough for a whole first backup;
- with ``--public-relay`` (``PUBLIC``) it reserves for anyone, with circuits
  sized for pairing and catching up, not for first backups.

Anyone may open a circuit to a node holding a slot (a joiner is nobody's
friend yet); that node's own storage service decides who gets in. Two nodes
joined through a relay try to hole-punch a direct connection (DCUtR, from
py-libp2p); whether that works through real NATs is measured by
``python -m p2pbackup.netns``, not assumed: where it fails, the relay carries
the data.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP_PROTOCOL
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode
from libp2p.relay.circuit_v2.resources import RelayLimits
from libp2p.relay.circuit_v2.transport import CircuitV2Transport
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from p2pbackup.core import protocol as proto
from p2pbackup.errors import PeerError
from p2pbackup.net import internals
from p2pbackup.net.host import node_key_of
from p2pbackup.net.reasons import reason_of
from p2pbackup.net.service import PROTOCOL as STORAGE_PROTOCOL

TIMEOUT = 15
PUNCH_DIAL_TIMEOUT = 3  # each dial of a hole punch (a punched path answers at once)
PUNCH_DEADLINE = 30.0  # one whole attempt: its dials, the exchange and three rounds
KNOWN_DEVICES = 1024  # devices remembered by the certificate they showed
DAY = 24 * 3600


@dataclass(frozen=True)
class Limits:
    """What a relay point gives: slots, circuits per slot, and each circuit's bytes and
    seconds (a circuit past either is cut; the client dials a new one)."""

    reservations: int
    circuits_per_slot: int
    circuit_bytes: int
    circuit_seconds: int
    slot_seconds: int = 3600  # a reservation lasts this long unless refreshed

    def library(self) -> RelayLimits:
        return RelayLimits(
            duration=self.circuit_seconds, data=self.circuit_bytes,
            max_circuit_conns=self.circuits_per_slot, max_reservations=self.reservations,
            reservation_ttl=self.slot_seconds,
        )  # fmt: skip


# 64 slots: 20 friends with 3 devices each. A first backup of 1 TiB at 20 Mbit/s
# takes about 5 days: a circuit carries 2 TiB for 7 days.
FRIENDS_ONLY = Limits(reservations=64, circuits_per_slot=16, circuit_bytes=2 << 40,
                      circuit_seconds=7 * DAY)  # fmt: skip
# A community point: many slots, circuits for pairing, heads and small backups.
PUBLIC = Limits(reservations=256, circuits_per_slot=4, circuit_bytes=1 << 30,
                circuit_seconds=3600)  # fmt: skip

_REFUSALS = {
    StatusCode.PERMISSION_DENIED: "it relays only for its owner's friends and their devices",
    StatusCode.RESOURCE_LIMIT_EXCEEDED: "it has no free slot",
    StatusCode.RESERVATION_REFUSED: "it refuses reservations",
}


class ReservationRefused(PeerError):
    """The relay answered, and said no."""


class Admission:
    """Who may hold a slot at this node's relay: the owner's friends' devices and the
    owner's own. A device is known by its peer id (the catalog's) or by the certificate
    it showed the storage service (``saw``), whose owner must still be a friend."""

    def __init__(self, owner_id: bytes, is_friend: Callable[[bytes], bool],
                 known_ids: Callable[[], set[str]]) -> None:  # fmt: skip
        self._owner_id = owner_id
        self._is_friend = is_friend
        self._known_ids = known_ids
        self._owners: dict[bytes, bytes] = {}  # node key -> owner id, from certificates

    def saw(self, node_key: bytes, owner_id: bytes) -> None:
        """A valid device certificate of ``owner_id`` for ``node_key`` was shown."""
        if owner_id == self._owner_id or self._is_friend(owner_id):
            self._owners.pop(node_key, None)
            self._owners[node_key] = owner_id
            if len(self._owners) > KNOWN_DEVICES:  # a friend minting device keys: oldest go
                del self._owners[next(iter(self._owners))]

    def admits(self, peer_id: ID) -> bool:
        if peer_id.to_base58() in self._known_ids():
            return True
        try:
            owner = self._owners.get(node_key_of(peer_id))
        except PeerError:
            return False
        return owner is not None and (owner == self._owner_id or self._is_friend(owner))


class Relay:
    """This node's side of circuit relay: reserve a slot, dial through a point."""

    def __init__(self, host: IHost, protocol: CircuitV2Protocol, certificate: bytes) -> None:
        self._host = host
        self._certificate = certificate
        self._transport = CircuitV2Transport(
            host, protocol, RelayConfig(roles=RelayRole.STOP | RelayRole.CLIENT)
        )

    async def reserve(self, point: PeerInfo) -> float:
        """Hold a slot at ``point`` (again: that refreshes it); when it ends (unix time).

        ReservationRefused if the point says no, PeerError if it cannot be reached.
        The caller refreshes it before then (daemon/rendezvous.py)."""
        internals.forget_failed_dial(self._host, point.peer_id)  # our back-off, not libp2p's
        try:
            with trio.fail_after(TIMEOUT):
                await self._host.connect(point)
                # Where the point sees us is what a hole punch advertises (DCUtR).
                await internals.observe_through(self._host, point.peer_id)
                await self._introduce(point.peer_id)
                stream = await self._host.new_stream(point.peer_id, [HOP_PROTOCOL])
                try:
                    await write_delimited_msg(stream, HopMessage(type=HopMessage.RESERVE))
                    answer = await read_delimited_msg(stream, HopMessage)
                finally:
                    with trio.move_on_after(1):
                        await stream.close()
        except (BaseLibp2pError, OSError, trio.TooSlowError) as exc:
            raise PeerError(f"No reservation at the relay: {reason_of(exc)}.") from exc
        status = answer.status if answer.HasField("status") else StatusCode.OK
        if status != StatusCode.OK:
            why = _REFUSALS.get(status, f"status {status}")  # type: ignore[call-overload]
            raise ReservationRefused(f"The relay refused a reservation: {why}.")
        if not answer.HasField("reservation"):
            raise PeerError("The relay answered a reservation without one.")
        return float(answer.reservation.expire or time.time())

    async def _introduce(self, point: ID) -> None:
        """Show the point this device's certificate (a storage HELLO), so a point that
        relays for its owner's friends' devices knows whose device this is. Its answer
        does not matter: a point that stores nothing for us refuses the HELLO."""
        if not self._certificate:
            return
        try:
            stream = await self._host.new_stream(point, [STORAGE_PROTOCOL])
        except BaseLibp2pError:  # a point that keeps no shares: nothing to show
            return
        try:
            hello = proto.Message(proto.Op.HELLO, 1, proto.hello_body(self._certificate))
            for frame in proto.frames(hello):
                await stream.write(frame)
            await stream.read(proto.HELLO_MAX)
        finally:
            with trio.move_on_after(1):
                await stream.reset()

    async def dial(self, point: PeerInfo, peer_id: ID) -> None:
        """Open a connection to ``peer_id`` through ``point``; streams then use it."""
        circuit = Multiaddr(f"{point.addrs[0]}/p2p/{point.peer_id}/p2p-circuit/p2p/{peer_id}")
        internals.forget_failed_dial(self._host, point.peer_id)
        try:
            with trio.fail_after(TIMEOUT):
                await self._host.connect(point)
                await self._transport.dial(circuit)
        except (BaseLibp2pError, OSError, ConnectionError, trio.TooSlowError) as exc:
            raise PeerError(f"Could not reach it through the relay: {reason_of(exc)}.") from exc


class PointWatch(INotifee):
    """Wakes ``until_gone`` when the last connection to the point closes (it stopped,
    restarted, or the network went away), so its slot is renewed at once."""

    def __init__(self, host: IHost, point: ID) -> None:
        self._host, self._point = host, point
        self._changed = trio.Event()

    def __enter__(self) -> PointWatch:
        self._host.get_network().register_notifee(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._host.get_network().remove_notifee(self)  # type: ignore[attr-defined]

    async def until_gone(self) -> None:
        while self._host.get_network().get_connections(self._point):
            await self._changed.wait()

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        if conn.muxed_conn.peer_id == self._point:
            self._changed.set()
            self._changed = trio.Event()

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        pass

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, addr: Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, addr: Multiaddr) -> None:
        pass


@asynccontextmanager
async def relay(
    host: IHost,
    certificate: bytes = b"",
    serve: Limits | None = None,
    admits: Callable[[ID], bool] | None = None,
) -> AsyncIterator[Relay]:
    """Circuit relay on a running host; with ``serve``, it relays for others too, within
    those limits and, given ``admits``, only for the peers it admits."""
    if serve is not None:
        protocol = internals.relay_point(host, serve.library(), admits)
        async with background_trio_service(protocol):
            yield Relay(host, protocol, certificate)
        return
    # A node reached through a relay tries to upgrade to a direct connection: the
    # library's DCUtR drives a hole punch to each relayed peer a few times on its own.
    # It first dials the peer's own (private) addresses, where a NAT drops the SYN, for
    # its dial timeout: 10 s stock, after which the punch came too late (the point had
    # restarted and its circuit was gone), hence a short one.
    protocol = CircuitV2Protocol(host, allow_hop=False)
    dcutr = internals.HolePunch(host, PUNCH_DIAL_TIMEOUT, PUNCH_DEADLINE)
    async with background_trio_service(protocol), background_trio_service(dcutr):
        yield Relay(host, protocol, certificate)
