"""Every place this project reaches into py-libp2p beyond its public interfaces.

Checked against libp2p==0.8.1, pinned in pyproject.toml: ``apply`` refuses to
start a node on any other version (``LIBP2P_VERSION``), because a constant
renamed or an attribute moved would silently undo a bound or a fix here.
Nothing else in the project touches a private attribute of the library,
assigns into one of its modules or replaces one of its methods
(docs/decisions.md, "libp2p is contained").

Throughput, wire format unchanged:

- Yamux frames of 256 KiB (``YAMUX_FRAME``), where stock writes 64 KiB: the
  per-frame work of Yamux and trio (locks, window accounting, a checkpoint)
  dominates a transfer's CPU, and a quarter as many frames cut it by about a
  quarter at both ends (3.6 against 5.0 CPU-s per GB, sender and receiver in
  one process). 256 KiB is also a fresh stream's window, so no stock peer is
  ever sent a frame larger than the credit it gave; 1 MiB frames did worse.
  The Noise layer splits each frame into four messages.
- Noise messages are read in bulk (``read_noise_msg``): stock, each 64 KiB
  message cost a receive for its 2-byte length and one or more for its body,
  each through two locks and a copy; a receive of up to 256 KiB now brings
  several, cut out of one buffer. A friend daemon receiving 2 MiB put_part
  pieces spent about a tenth less CPU: medians 6.1 against 7.2 CPU-s per GB
  (13 and 7 runs), 8% in three interleaved pairs. Writing each frame's
  messages in one send saved nothing measurable, so the library's writer
  stays.
- A Yamux frame's body is read straight from the Noise messages
  (``read_yamux_body``) and joined once: stock, each byte was copied four
  times on its way there (twice in the secure session's read, twice in
  ``read_exactly``).
- Yamux grows a stream's receive window up to 16 MiB; here up to 2 MiB
  (``MAX_RECEIVE_WINDOW``), which bounds what a peer can make a node buffer
  on a stream it is not reading (docs/security.md, "Bounds").
- Yamux sends a window update on every read by default
  (PY_YAMUX_RELEASE_ON_READ); bulk transfers do better granting credit in
  larger steps, which the library's hysteresis then does.

Both ends still speak standard Yamux over Noise: tests/net/test_tuning.py
runs a stock py-libp2p peer in another process against a tuned one.

Behaviour: ``forget_unread`` (a reset stream's bytes), ``hang_up`` (a stopping
node's connections closed without the library's grace sleeps), ``dial_once`` (no
retries inside the swarm), ``forget_failed_dial`` (the swarm's negative cache),
``observe_through`` (our observed address, asked again after a reconnection,
for hole punching), ``HolePunch`` (DCUtR whose
attempts end), ``never_auto_connect``, ``announce_as``
(the addresses a host tells), ``notifees_of`` / ``is_inbound`` (the
connection objects the stranger cap reads), ``is_relayed`` (how a connection
runs) and ``relay_point`` (a circuit relay that admits whom we say and frees
the slots of nodes that went away).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterable

import multiaddr
import trio
from libp2p.abc import IHost, INetConn, INetStream
from libp2p.connection_types import ConnectionType
from libp2p.io.exceptions import IncompleteReadError
from libp2p.network.config import RetryConfig
from libp2p.peer.id import ID
from libp2p.rcmgr import Direction
from libp2p.relay.circuit_v2.dcutr import DCUtRProtocol
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode, to_proto_status
from libp2p.relay.circuit_v2.resources import RelayLimits, RelayResourceManager
from libp2p.relay.circuit_v2.utils import write_delimited_msg
from libp2p.security.noise.io import NoiseTransportReadWriter
from libp2p.security.secure_session import SecureSession
from libp2p.stream_muxer.yamux import yamux

from p2pbackup.errors import ConfigError

log = logging.getLogger(__name__)

LIBP2P_VERSION = "0.8.1"  # the version every line below was checked against

# What a peer may send on one stream before it is read: the library grows a stream's window
# up to 16 MiB, so a node that stops reading (a friend over its budget, a request at the
# disk) held 16 MiB per stream; 2 MiB still covers 200 Mbit/s at a 80 ms round trip.
MAX_RECEIVE_WINDOW = 2 << 20
YAMUX_FRAME = 256 << 10  # bytes per Yamux data frame, header included
NOISE_RECEIVE = 256 << 10  # bytes asked of the socket per receive of Noise messages

_applied = False
_STOCK_NOISE_READ = NoiseTransportReadWriter.read_msg
_STOCK_YAMUX_BODY = yamux.Yamux._read_data_body


class Libp2pVersionError(ConfigError):
    """The installed py-libp2p is not the version this p2pbackup was checked against."""


def check_version() -> None:
    """Refuse a py-libp2p other than the pinned one: a node must not run with untested
    internals patched."""
    try:
        installed = importlib.metadata.version("libp2p")
    except importlib.metadata.PackageNotFoundError:
        installed = "none"
    if installed != LIBP2P_VERSION:
        raise Libp2pVersionError(
            f"This p2pbackup needs py-libp2p {LIBP2P_VERSION}, but {installed} is installed. "
            f"Reinstall p2pbackup (pip install 'libp2p=={LIBP2P_VERSION}' puts it right)."
        )


def apply() -> None:
    """Check the version and tune the library: once per process, before the first host."""
    global _applied
    if _applied:
        return
    check_version()
    yamux.MAX_MESSAGE_SIZE = YAMUX_FRAME
    NoiseTransportReadWriter.read_msg = read_noise_msg
    yamux.Yamux._read_data_body = read_yamux_body
    yamux.MAX_WINDOW_SIZE = MAX_RECEIVE_WINDOW
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    _applied = True


async def read_noise_msg(self: NoiseTransportReadWriter, prefix_encoded: bool = False) -> bytes:
    """The next Noise message of an established session, decrypted, cut from a buffer
    that each receive fills with up to ``NOISE_RECEIVE`` bytes. The wire is unchanged
    (a 2-byte length, then the message). It reads only when no whole message is left,
    so a connection buffers at most one partial message plus one receive. A connection
    that ends inside a message raises IncompleteReadError, as the stock reader does."""
    if prefix_encoded:  # handshake framing: never on an established session
        return await _STOCK_NOISE_READ(self, prefix_encoded)
    received: bytearray = self.__dict__.setdefault("_p2pbackup_received", bytearray())
    while True:
        wanted = 2  # the length field, then the message it gives
        if len(received) >= 2:
            wanted += int.from_bytes(received[:2], "big")
            if len(received) >= wanted:
                with memoryview(received) as view:
                    sealed = bytes(view[2:wanted])
                del received[:wanted]
                return self.decrypt(sealed)
        more = await self.read_writer.read_write_closer.read(NOISE_RECEIVE)
        if not more:
            raise IncompleteReadError(
                f"Connection closed inside a Noise message ({len(received)} bytes of it)",
                expected_bytes=wanted,
                received_bytes=len(received),
            )
        received += more


async def read_yamux_body(self: yamux.Yamux, length: int) -> bytes:
    """A Yamux DATA frame's body of ``length`` bytes: what the secure session holds
    first, then whole Noise messages, joined once; the part of the last message past
    the frame stays in the session for the next read, as the stock reader leaves it.
    Bounded by the library's deadline for a frame body. Stock, on other sessions."""
    session = self.secured_conn
    if type(session) is not SecureSession:
        return await _STOCK_YAMUX_BODY(self, length)
    with trio.fail_after(yamux._yamux_data_read_timeout()):
        held = session._drain(length)
        pieces: list[bytes | memoryview] = [held] if held else []
        left = length - len(held)
        while left > 0:
            # A connection that ends raises here (read_noise_msg); an empty message is one.
            message = await session.conn.read_msg()
            if len(message) > left:
                session._fill(message[left:])
                pieces.append(memoryview(message)[:left])
                break
            pieces.append(message)
            left -= len(message)
    return pieces[0] if len(pieces) == 1 and type(pieces[0]) is bytes else b"".join(pieces)


def forget_unread(stream: INetStream) -> None:
    """Drop what a peer sent on a stream this node has reset and will never read.

    py-libp2p 0.8.1 keeps a reset stream's unread bytes for 60 s, for readers
    that might still drain them, and keeps adding what the peer sends until the
    reset reaches it. A peer whose streams are reset one after another (a
    stranger sending frames too large for a HELLO) made a node hold about half
    a MiB per stream for that minute: 100 MiB for 20 MiB sent
    (tests/net/test_flood.py). Bytes for a stream the muxer no longer knows
    are read and dropped. Call it after ``reset``.
    """
    muxed = getattr(stream, "muxed_stream", None)
    if not isinstance(muxed, yamux.YamuxStream) or not muxed.closed:
        return
    conn = muxed.conn
    if conn.streams.get(muxed.stream_id) is muxed:
        del conn.streams[muxed.stream_id]
        conn.stream_buffers.pop(muxed.stream_id, None)
        conn.stream_events.pop(muxed.stream_id, None)


def dial_once(host: IHost) -> None:
    """One attempt per address and dial: callers retry on their own schedule (a friend's
    backoff, the rendezvous link, happy eyeballs over a friend's addresses). The swarm's
    three retries per address (0.7 s) kept a friend that had just stopped looking online
    that long; ``new_host`` does not pass a retry configuration on, hence here."""
    host.get_network().retry_config = RetryConfig(max_retries=0)  # type: ignore[attr-defined]


def forget_failed_dial(host: IHost, peer_id: ID) -> None:
    """Let the next dial to ``peer_id`` happen: the swarm refuses to dial a peer for 60 s
    after a failed dial (its negative cache); our own back-off decides when to try again."""
    host.get_network().unblock_peer(peer_id)


async def observe_through(host: IHost, peer_id: ID) -> None:
    """Ask ``peer_id`` again where it sees us (identify), unless this host already holds
    an observation of its public address. The library records one only when it first
    identifies a peer and drops it when that connection closes, and it skips identify
    on a later connection to a peer whose protocols it still has: after the rendezvous
    point restarted, a node knew nothing but its private address, so every hole punch
    (DCUtR advertises what was observed) dialled addresses behind the other NAT."""
    manager = getattr(host, "_observed_addr_manager", None)
    if manager is None or manager.addrs(min_observers=1):
        return
    host._identified_peers.pop(peer_id, None)  # type: ignore[attr-defined]
    await host._identify_peer(peer_id, reason="observed-again")  # type: ignore[attr-defined]


class HolePunch(DCUtRProtocol):
    """The library's DCUtR, each attempt bounded and dropped when its peer disconnects.

    Its auto-drive loop punches one peer at a time and waits for each attempt, which
    opens its stream with no deadline: a relayed connection that died under it (the
    point restarted) held the loop for good, and no friend was punched again."""

    def __init__(self, host: IHost, dial_timeout: int, deadline: float) -> None:
        super().__init__(host, dial_timeout=dial_timeout)
        self._deadline = deadline
        self._attempts: dict[ID, trio.CancelScope] = {}

    async def initiate_hole_punch(self, peer_id: ID) -> bool:
        with trio.move_on_after(self._deadline) as scope:
            self._attempts[peer_id] = scope
            try:
                return await super().initiate_hole_punch(peer_id)
            finally:
                if self._attempts.get(peer_id) is scope:
                    del self._attempts[peer_id]
        return False

    def on_peer_disconnected(self, peer_id: ID) -> None:
        super().on_peer_disconnected(peer_id)
        scope = self._attempts.get(peer_id)
        if scope is not None and not self.host.get_network().get_connections(peer_id):
            scope.cancel()


async def _never() -> None:
    return None


def never_auto_connect(host: IHost) -> None:
    """Turn off the swarm's auto-connector, which dials every peer in the peerstore to
    keep 100+ connections open (a public-swarm habit; a backup node talks to its friends
    when it has work for them). The library has no switch for it."""
    host.get_network().auto_connector.maybe_connect = _never


def announce_as(
    host: IHost, rewrite: Callable[[list[multiaddr.Multiaddr]], list[multiaddr.Multiaddr]]
) -> None:
    """Make ``host`` tell ``rewrite(its listen addresses)`` wherever it tells them (mDNS
    reads the raw listen addresses; friend cards and identify the advertised ones)."""
    raw = host.get_transport_addrs
    host.get_transport_addrs = lambda: rewrite(raw())


async def hang_up(conns: Iterable[INetConn]) -> None:
    """Close ``conns`` at once, returning when each has said goodbye and closed its socket.

    A connection's close sends Yamux's GO_AWAY, closes the socket, then sleeps 0.1 s
    twice (letting this node's stream handlers see their resets) before it tells the
    notifees. A node that is stopping has no handlers left to wait for: those 0.2 s
    were an eighth of a one-shot command. The swarm's own close then finds the
    connections closed and forgets them.
    """
    conns = list(conns)
    async with trio.open_nursery() as nursery:
        for conn in conns:
            nursery.start_soon(_close_quietly, conn)
        if all(isinstance(conn.muxed_conn, yamux.Yamux) for conn in conns):
            for conn in conns:
                await conn.muxed_conn.event_closed.wait()
            nursery.cancel_scope.cancel()


async def _close_quietly(conn: INetConn) -> None:
    try:
        await conn.close()
    except Exception as exc:  # best-effort, as the library's own close is
        log.debug("closing a connection: %r", exc)


def notifees_of(stream: INetStream) -> tuple[INetConn | None, Iterable[object]]:
    """The connection a stream runs on and the swarm's notifees (the stranger cap)."""
    conn = getattr(stream, "swarm_conn", None)
    return conn, getattr(getattr(conn, "swarm", None), "notifees", ())


def is_inbound(conn: INetConn) -> bool:
    """Whether the peer dialled this connection (the swarm sets ``direction``)."""
    return getattr(conn, "direction", None) == Direction.INBOUND


def is_relayed(conn: INetConn) -> bool:
    """Whether a connection runs through a circuit relay (either direction)."""
    if getattr(conn, "get_connection_type", lambda: None)() == ConnectionType.RELAYED:
        return True
    muxed = getattr(conn, "muxed_conn", None)
    addrs = getattr(muxed, "get_transport_addresses", lambda: [])() or []
    return any("/p2p-circuit" in str(a) for a in addrs)


class _FreeingSlots(RelayResourceManager):
    """Slots of nodes no longer connected are given to newcomers when the table is
    full: the library keeps a reservation for its whole TTL, so one-shot nodes that came
    and went locked friends out (a slot only serves while its node is connected)."""

    def can_accept_reservation(self, peer_id: ID) -> bool:
        if len(self._reservations) >= self.limits.max_reservations:
            for gone in [p for p in self._reservations if not self._is_peer_connected(p)]:
                del self._reservations[gone]
        return super().can_accept_reservation(peer_id)


class _AdmittingRelay(CircuitV2Protocol):
    """The library's relay, answering PERMISSION_DENIED to a reservation from a peer
    ``admits`` refuses, or for another peer (the library has no hook for either)."""

    def __init__(self, host: IHost, limits: RelayLimits, admits: Callable[[ID], bool]) -> None:
        super().__init__(host, limits=limits, allow_hop=True)
        self.resource_manager = _FreeingSlots(limits, host)
        self._admits = admits

    async def _handle_reserve(self, stream: INetStream, msg: HopMessage) -> None:
        peer = stream.muxed_conn.peer_id
        # The library reserves for the peer a message names: only for oneself here.
        for_another = msg.HasField("peer") and msg.peer.id and ID(msg.peer.id) != peer
        if for_another or not self._admits(peer):
            denied = HopMessage(
                type=HopMessage.STATUS, status=to_proto_status(StatusCode.PERMISSION_DENIED)
            )
            await write_delimited_msg(stream, denied)
            return
        await super()._handle_reserve(stream, msg)


def relay_point(
    host: IHost, limits: RelayLimits, admits: Callable[[ID], bool] | None
) -> CircuitV2Protocol:
    """A circuit relay serving others within ``limits``, reserving slots only for the
    peers ``admits`` (everyone when None)."""
    return _AdmittingRelay(host, limits, admits or (lambda peer: True))
