"""Pairing over a libp2p stream (``/p2pbackup/pair/1.0.0``).

The inviter's node keeps its pending invites by nameplate. A joiner opens a
stream, names the nameplate and runs the PAKE (``core/pairing.py``). Any
attempt burns the code, right or wrong: one guess per code. Each side also
checks that the friend card's device certificate names the very node key the
Noise handshake authenticated, so a card cannot be relayed from elsewhere.

Each message on the stream: kind u8 (1 data, 2 error) | length u16 | bytes.
"""

from __future__ import annotations

import logging
import struct
import time
from dataclasses import dataclass, field

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.peerinfo import PeerInfo

from p2pbackup.core.pairing import DEFAULT_VALIDITY, FriendCard, InviteCode, Pairing, Role, new_code
from p2pbackup.errors import P2PBackupError, PairingError, PeerError
from p2pbackup.net.host import node_key_of

log = logging.getLogger(__name__)

PROTOCOL = TProtocol("/p2pbackup/pair/1.0.0")
STEP_TIMEOUT = 30
_HEADER = struct.Struct(">BH")
_DATA, _ERROR = 1, 2


async def _send(stream: INetStream, payload: bytes, kind: int = _DATA) -> None:
    await stream.write(_HEADER.pack(kind, len(payload)) + payload)


async def _read_exactly(stream: INetStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = await stream.read(size - len(data))
        if not piece:
            raise PairingError("The friend's node hung up during pairing.")
        data += piece
    return data


async def _receive(stream: INetStream) -> bytes:
    with trio.fail_after(STEP_TIMEOUT):
        kind, length = _HEADER.unpack(await _read_exactly(stream, _HEADER.size))
        payload = await _read_exactly(stream, length)
    if kind == _ERROR:
        raise PairingError(payload.decode("utf-8", "replace"))
    if kind != _DATA:
        raise PairingError("The friend's node sent something that is not part of pairing.")
    return payload


def _check_node(card: FriendCard, stream: INetStream) -> FriendCard:
    if card.certificate.node_key != node_key_of(stream.muxed_conn.peer_id):
        raise PairingError("The friend card is for another device than the one connected.")
    return card


@dataclass
class _Pending:
    code: InviteCode
    card: bytes
    expires_at: float
    used: bool = False  # one attempt per code, right or wrong
    done: trio.Event = field(default_factory=trio.Event)
    result: FriendCard | PairingError | None = None


class Invites:
    """The inviter's side: pending codes, and the stream handler that answers joiners."""

    def __init__(self) -> None:
        self._pending: dict[int, _Pending] = {}

    def create(self, my_card: bytes, validity: float = DEFAULT_VALIDITY) -> InviteCode:
        code = new_code()
        while code.nameplate in self._pending:
            code = new_code()
        self._pending[code.nameplate] = _Pending(code, my_card, time.monotonic() + validity)
        return code

    async def wait(self, code: InviteCode) -> FriendCard:
        """The friend's card once someone paired with the code; PairingError otherwise."""
        pending = self._pending.get(code.nameplate)
        if pending is None or pending.code != code:
            raise PairingError("That invite is not pending here.")
        with trio.move_on_after(max(0.0, pending.expires_at - time.monotonic())):
            await pending.done.wait()
        self._pending.pop(code.nameplate, None)
        if pending.result is None:
            raise PairingError("The invite code expired before a friend used it. Make a new one.")
        if isinstance(pending.result, PairingError):
            raise pending.result
        return pending.result

    async def handle(self, stream: INetStream) -> None:
        pending: _Pending | None = None
        try:
            nameplate = int.from_bytes(await _receive(stream), "big")
            found = self._pending.get(nameplate)
            if found is None or found.used or time.monotonic() > found.expires_at:
                raise PairingError("That invite code is unknown here, used up or expired.")
            pending = found
            pending.used = True
            side = Pairing(Role.INVITER, pending.code, pending.card)
            joiner_pake = await _receive(stream)
            await _send(stream, side.start())
            await _send(stream, side.receive_pake(joiner_pake))
            side.check_confirmation(await _receive(stream))
            card = _check_node(side.open_card(await _receive(stream)), stream)
            await _send(stream, side.sealed_card())
            pending.result = card
        except P2PBackupError as exc:
            if pending is not None:
                pending.result = exc if isinstance(exc, PairingError) else PairingError(exc.message)
            await _try_send_error(stream, exc.message)
        except (BaseLibp2pError, trio.TooSlowError) as exc:
            if pending is not None:
                pending.result = PairingError(f"The pairing connection broke: {exc}")
        except Exception as exc:  # an exception escaping a handler stops the whole host
            log.exception("unexpected error while pairing")
            if pending is not None:
                pending.result = PairingError(f"Pairing failed unexpectedly: {exc}")
        finally:
            if pending is not None:
                pending.done.set()
            with trio.move_on_after(1):
                await stream.close()


async def _try_send_error(stream: INetStream, message: str) -> None:
    try:
        with trio.move_on_after(2):
            await _send(stream, message.encode()[:1000], _ERROR)
    except BaseLibp2pError:
        pass


async def join(host: IHost, inviter: PeerInfo, code: InviteCode, my_card: bytes) -> FriendCard:
    """The joiner's side: pair with the node that made ``code``."""
    try:
        with trio.fail_after(STEP_TIMEOUT):
            await host.connect(inviter)
            stream = await host.new_stream(inviter.peer_id, [PROTOCOL])
    except (BaseLibp2pError, OSError, trio.TooSlowError) as exc:
        raise PeerError(f"Your friend's node cannot be reached: {exc or 'timeout'}.") from exc
    side = Pairing(Role.JOINER, code, my_card)
    try:
        await _send(stream, code.nameplate.to_bytes(2, "big"))
        await _send(stream, side.start())
        inviter_pake = await _receive(stream)
        confirmation = side.receive_pake(inviter_pake)
        side.check_confirmation(await _receive(stream))
        await _send(stream, confirmation)
        await _send(stream, side.sealed_card())
        return _check_node(side.open_card(await _receive(stream)), stream)
    except PairingError as exc:
        await _try_send_error(stream, "The joiner gave up: " + exc.message)
        raise
    except (BaseLibp2pError, trio.TooSlowError) as exc:
        raise PairingError(f"The pairing connection broke: {exc or 'timeout'}.") from exc
    finally:
        with trio.move_on_after(1):
            await stream.close()
