"""Pairing over a libp2p stream (``/p2pbackup/pair/1.0.0``).

The inviter's node keeps its pending invites by nameplate. A joiner opens a
stream, names the nameplate and runs the PAKE. The protocol itself is the
pair of state machines in ``core/pairing.py``; this module only moves their
frames (``kind u8 | length u16 | payload``): read one, feed it, perform the
actions. Any attempt burns the code, right or wrong: one guess per code. A
node holding no invite by that nameplate answers NOT_HERE and uses nothing up.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.peerinfo import PeerInfo

from p2pbackup.core.pairing import (
    DEFAULT_VALIDITY,
    FRAME_HEADER,
    Action,
    Failed,
    FrameKind,
    FriendCard,
    Invite,
    InviteCode,
    Inviter,
    Joiner,
    Paired,
    Send,
    frame,
    new_code,
)
from p2pbackup.errors import PairingError, PeerError
from p2pbackup.net import internals
from p2pbackup.net.host import node_key_of
from p2pbackup.net.reasons import reason_of

log = logging.getLogger(__name__)

PROTOCOL = TProtocol("/p2pbackup/pair/1.0.0")
STEP_TIMEOUT = 30


class _HungUp(Exception):
    """The stream ended in the middle of a frame."""


async def _read_exactly(stream: INetStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = await stream.read(size - len(data))
        if not piece:
            raise _HungUp
        data += piece
    return data


async def _receive(stream: INetStream) -> tuple[int, bytes]:
    with trio.fail_after(STEP_TIMEOUT):
        kind, length = FRAME_HEADER.unpack(await _read_exactly(stream, FRAME_HEADER.size))
        return kind, await _read_exactly(stream, length)


async def _perform(stream: INetStream, actions: list[Action]) -> FriendCard | None:
    """Do what the machine asked: the friend's card once paired, PairingError on failure."""
    for action in actions:
        if isinstance(action, Send):
            if action.kind is FrameKind.DATA:
                with trio.fail_after(STEP_TIMEOUT):
                    await stream.write(frame(action.kind, action.payload))
            else:  # telling the peer why we stop is a courtesy: it must not hold us up
                with trio.move_on_after(2), contextlib.suppress(BaseLibp2pError):
                    await stream.write(frame(action.kind, action.payload))
        elif isinstance(action, Paired):
            return action.card
        elif isinstance(action, Failed):
            raise action.error
    return None


async def _run(stream: INetStream, machine: Inviter | Joiner) -> FriendCard:
    """Move frames between ``stream`` and ``machine`` until it has paired or failed."""
    actions = machine.start()
    while True:
        try:
            card = await _perform(stream, actions)
            if card is not None:
                return card
            if machine.done:  # every way to "done" ends in Paired or Failed, performed above
                raise PairingError("Pairing stopped without a result.")  # (a bug if seen)
            kind, payload = await _receive(stream)
        except _HungUp:
            actions = machine.broke("the other node hung up")
            continue
        except (BaseLibp2pError, trio.TooSlowError) as exc:
            actions = machine.broke(reason_of(exc))
            continue
        if kind == FrameKind.DATA:
            actions = machine.received(payload)
        else:
            actions = machine.peer_failed(kind, payload.decode("utf-8", "replace"))


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
        try:
            with trio.move_on_after(max(0.0, pending.expires_at - time.monotonic())):
                await pending.done.wait()
        finally:  # cancelled too (the app's Cancel): a code nobody waits on is withdrawn
            self._pending.pop(code.nameplate, None)
        if pending.result is None:
            raise PairingError("The invite code expired before a friend used it. Make a new one.")
        if isinstance(pending.result, PairingError):
            raise pending.result
        return pending.result

    def _claim(self, nameplate: int) -> _Pending | None:
        """The pending invite by that nameplate, marked used; None if there is none."""
        found = self._pending.get(nameplate)
        if found is None or found.used or time.monotonic() > found.expires_at:
            return None
        found.used = True  # one attempt per code, right or wrong
        return found

    async def handle(self, stream: INetStream) -> None:
        claimed: list[_Pending] = []

        def claim(nameplate: int) -> Invite | None:
            pending = self._claim(nameplate)
            if pending is None:
                return None
            claimed.append(pending)
            return Invite(pending.code, pending.card)

        result: FriendCard | PairingError = PairingError("Pairing was interrupted.")
        try:
            machine = Inviter(claim, node_key_of(stream.muxed_conn.peer_id))
            result = await _run(stream, machine)
        except PairingError as exc:
            result = exc
        except PeerError as exc:  # a peer id with no Ed25519 key: not one of our nodes
            result = PairingError(exc.message)
        except Exception as exc:  # an exception escaping a handler stops the whole host
            log.exception("unexpected error while pairing")
            result = PairingError(f"Pairing failed unexpectedly: {exc}")
        finally:
            for pending in claimed:  # the inviter waiting on this code learns how it went
                pending.result = result
                pending.done.set()
            with trio.move_on_after(1):
                await stream.close()


async def join(
    host: IHost,
    inviter: PeerInfo,
    code: InviteCode,
    my_card: bytes,
    dial_timeout: float = STEP_TIMEOUT,
    dial: Callable[[PeerInfo], Awaitable[None]] | None = None,
) -> FriendCard:
    """The joiner's side: pair with the node at ``inviter``, which should hold ``code``.

    ``dial`` connects to it (``locate.dial``: direct and through the relay at once);
    without it, a direct dial. PeerError if that node cannot be reached; InviteNotHere
    if it holds no invite by that nameplate (nothing is used up); PairingError for any
    other failure.
    """
    # A join the user retries at once must dial again, whatever libp2p's negative cache says.
    internals.forget_failed_dial(host, inviter.peer_id)
    try:
        with trio.fail_after(dial_timeout):
            await (dial or host.connect)(inviter)
            stream = await host.new_stream(inviter.peer_id, [PROTOCOL])
    except PeerError as exc:  # every path was tried; the message names why each failed
        raise PeerError(f"Your friend's node cannot be reached: {exc.message}.") from exc
    except (BaseLibp2pError, OSError, trio.TooSlowError) as exc:
        raise PeerError(f"Your friend's node cannot be reached: {reason_of(exc)}.") from exc
    try:
        return await _run(stream, Joiner(code, my_card, node_key_of(stream.muxed_conn.peer_id)))
    except PeerError as exc:  # its peer id carries no Ed25519 key: not one of our nodes
        raise PairingError(exc.message) from exc
    finally:
        with trio.move_on_after(1):
            await stream.close()
