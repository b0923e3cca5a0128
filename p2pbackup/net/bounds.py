"""What a peer can make this node hold: the numbers, and the budgets that keep to them.

docs/security.md ("Bounds on what a peer can make a node hold") explains each
number. A storage stream is admitted by the ``Gate``: it counts the streams
of each peer and those still before HELLO, and gives each stream an
``Account`` that draws the bytes it holds (unfinished messages, the request
being served, its answer) from its peer's budget and the node's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio

from p2pbackup.core.protocol import MAX_FRAME, Limits
from p2pbackup.errors import PeerError

MiB = 1 << 20
HELLO_TIMEOUT = 5.0  # seconds from a stream's opening to its HELLO
GREETING_STREAMS = 32  # storage streams before HELLO, node-wide (each holds <= 128 KiB)
STREAMS_PER_PEER = 4  # storage streams of one peer at once (a device uses one per job)
PEER_BYTES = 64 * MiB  # held for one friend's device: 16 pipelined puts of 2 MiB fit twice
NODE_BYTES = 256 * MiB  # held for all friends together
NODE_WAIT = 30.0  # seconds a stream waits for the node's budget before it is closed
FRIEND_LIMITS = Limits(MAX_FRAME, PEER_BYTES, 64, PEER_BYTES)


class Overload(PeerError):
    """A peer asked this node to hold more than it allows; its stream is closed."""


class ByteBudget:
    """Bytes that holders take and give back; ``take`` may wait for others to give."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._given = trio.Event()

    def try_take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    async def take(self, size: int, patience: float) -> bool:
        with trio.move_on_after(patience):
            while not self.try_take(size):
                await self._given.wait()
            return True
        return False

    def give(self, size: int) -> None:
        self.used -= size
        self._given.set()
        self._given = trio.Event()


class Account:
    """One stream's bytes, drawn from its peer's budget and the node's."""

    def __init__(self, peer: ByteBudget, node: ByteBudget) -> None:
        self._peer = peer
        self._node = node
        self.held = 0

    async def hold(self, total: int) -> None:
        """Hold ``total`` bytes from now on; Overload when the budgets cannot give them."""
        extra = total - self.held
        if extra <= 0:
            self._give_back(-extra)
            return
        if not self._peer.try_take(extra):
            raise Overload(f"It asked this node to hold over {self._peer.limit // MiB} MiB.")
        if not await self._node.take(extra, NODE_WAIT):
            self._peer.give(extra)
            raise Overload("This node holds all it can for its friends; try again later.")
        self.held = total

    def _give_back(self, size: int) -> None:
        self.held -= size
        self._peer.give(size)
        self._node.give(size)

    def close(self) -> None:
        self._give_back(self.held)


class Gate:
    """Admits storage streams within the caps above."""

    def __init__(self, node_bytes: int = NODE_BYTES, peer_bytes: int = PEER_BYTES) -> None:
        self._node = ByteBudget(node_bytes)
        self._peer_bytes = peer_bytes
        self._peers: dict[object, tuple[ByteBudget, int]] = {}  # peer -> budget, streams
        self._greeting: dict[Greeting, None] = {}  # streams not past HELLO, oldest first

    @property
    def node_held(self) -> int:
        return self._node.used

    @property
    def greeting(self) -> int:
        return len(self._greeting)

    @contextmanager
    def admit(self, peer: object) -> Iterator[Greeting]:
        """A stream of ``peer``, counted until it ends; Overload past its peer's cap.

        Past the cap of streams before HELLO the oldest of them is pushed out, not the
        newcomer: strangers who open streams and say nothing cannot keep a friend out,
        who needs one round trip to say HELLO.
        """
        budget, streams = self._peers.get(peer, (None, 0))
        if streams >= STREAMS_PER_PEER:
            raise Overload(f"It has {streams} storage streams open already.")
        if len(self._greeting) >= GREETING_STREAMS:
            next(iter(self._greeting)).push_out()
        budget = budget or ByteBudget(self._peer_bytes)
        self._peers[peer] = (budget, streams + 1)
        greeting = Greeting(self, Account(budget, self._node))
        self._greeting[greeting] = None
        try:
            yield greeting
        finally:
            greeting.account.close()
            greeting.greeted()
            budget, streams = self._peers[peer]
            if streams == 1:
                del self._peers[peer]
            else:
                self._peers[peer] = (budget, streams - 1)

    def _greeted(self, greeting: Greeting) -> None:
        self._greeting.pop(greeting, None)


class Greeting:
    """An admitted stream: among those before HELLO until ``greeted``; its wait for
    HELLO runs in ``scope``, which a newer stream may cancel (``push_out``)."""

    def __init__(self, gate: Gate, account: Account) -> None:
        self._gate = gate
        self.account = account
        self.scope = trio.CancelScope()

    def greeted(self) -> None:
        self._gate._greeted(self)

    def push_out(self) -> None:
        self.greeted()
        self.scope.cancel()
