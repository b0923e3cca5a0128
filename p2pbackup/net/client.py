"""A friend's pool over libp2p: the ShareStore the engine uses for real friends.

One long-lived stream per friend (a new connection costs ~250 ms here and a
new stream a few ms), opened on first use and reopened after a failure, no
sooner than its backoff allows. Requests are pipelined: each carries an id, a
reader task hands responses to their waiters, and many puts are in flight at
once, from any number of tasks (the daemon's heartbeat and its jobs share one
store). Every call has a deadline; a friend that does not answer in time is a
PeerError, like one that is away.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import trio
from libp2p.abc import IHost, INetStream
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from nacl.signing import SigningKey

from p2pbackup.core import merkle
from p2pbackup.core import protocol as proto
from p2pbackup.core.protocol import ErrorCode, Message, Op
from p2pbackup.errors import (
    FormatError,
    IntegrityError,
    NoBlockProofs,
    OtherVersionKept,
    P2PBackupError,
    PeerError,
    StorageError,
)
from p2pbackup.net import internals
from p2pbackup.net.host import node_key_of
from p2pbackup.net.service import PROTOCOL, READ_SIZE
from p2pbackup.storage.store import ShareKey, Usage

CONNECT_TIMEOUT = 10
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 300.0  # seconds between reconnect attempts
REQUEST_TIMEOUT = 120  # a 256 MiB share at a slow 2 MB/s still fits
WRITE_TIMEOUT = 60  # one frame (1 MiB) to a friend that stopped reading

_ERRORS: dict[int, type[P2PBackupError]] = {
    ErrorCode.BAD_REQUEST: FormatError,
    ErrorCode.INTEGRITY: IntegrityError,
    ErrorCode.STORAGE: StorageError,
    ErrorCode.NOT_FOUND: PeerError,
    ErrorCode.REFUSED: PeerError,
    ErrorCode.NO_TREE: NoBlockProofs,
    ErrorCode.OTHER_VERSION: OtherVersionKept,
}


def _broke(name: str, exc: Exception) -> str:
    # libp2p often raises with no message: "broke: ." told a user nothing.
    return f"The connection to friend {name} broke: {str(exc) or type(exc).__name__}."


class RemoteShareStore:
    """My shares on one friend's node, reached over an open libp2p host."""

    def __init__(
        self,
        host: IHost,
        peer: PeerInfo,
        name: str,
        certificate: bytes,
        signing_key: SigningKey,
        nursery: trio.Nursery,
        via: Callable[[PeerInfo], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._via = via  # connects to the friend's node (else: a plain direct dial)
        self._host = host
        self._peer = peer
        self._certificate = certificate
        self._signing_key = signing_key
        self._nursery = nursery
        self._stream: INetStream | None = None
        self._connecting = trio.Lock()
        self._write_lock = trio.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[trio.Event, list[Message]]] = {}
        self._failures = 0
        self._retry_at = 0.0
        self._closed = False
        self.last_heard = -math.inf  # trio time of the friend's last bytes: busy is alive
        # The newest share format the friend reads, as its last HELLO said (store.py).
        self.share_format = proto.TREE_SHARE_FORMAT
        self.on_broken: Callable[[], None] | None = None  # the open stream broke

    @property
    def peer_id(self) -> ID:
        return self._peer.peer_id

    def retry_now(self) -> None:
        """The next call dials at once, backoff or not (the friend was heard again)."""
        self._retry_at = 0.0

    def move_to(self, peer: PeerInfo) -> None:
        """Dial the friend's node at ``peer``'s addresses from now on (it moved)."""
        if peer.peer_id == self._peer.peer_id:
            self._peer = peer

    def _backoff(self) -> float:
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**self._failures)
        self._failures += 1
        self._retry_at = trio.current_time() + delay
        return delay

    async def _open(self) -> INetStream:
        async with self._connecting:
            if self._stream is not None:
                return self._stream
            if self._closed:  # a job still holding a friend the daemon let go
                raise PeerError(f"Friend {self.name} is no longer connected.")
            wait = self._retry_at - trio.current_time()
            if wait > 0:  # back off: a friend who is away is not dialled in a tight loop
                raise PeerError(f"Friend {self.name} is unreachable; next try in {wait:.0f} s.")
            # Our own backoff (above) decides when to try a friend again, not libp2p's.
            internals.forget_failed_dial(self._host, self._peer.peer_id)
            try:
                with trio.fail_after(CONNECT_TIMEOUT):
                    if self._via is None:
                        await self._host.connect(self._peer)
                    else:  # the caller's way in: direct and relay at once (net/locate)
                        await self._via(self._peer)
                    stream = await self._host.new_stream(self._peer.peer_id, [PROTOCOL])
            except (BaseLibp2pError, OSError, trio.TooSlowError, PeerError) as exc:
                self._backoff()
                reason = str(exc) or "no answer in time"
                raise PeerError(f"Friend {self.name} cannot be reached: {reason}.") from exc
            self._stream = stream
            self._nursery.start_soon(self._read_responses, stream)
            try:
                hello = await self._call(Op.HELLO, proto.hello_body(self._certificate))
            except P2PBackupError as exc:
                self._backoff()  # a friend that refuses us is not asked again at once
                self._drop(stream, exc.message, broke=False)
                with trio.move_on_after(1):
                    await stream.reset()
                if isinstance(exc, IntegrityError):  # it could not read our certificate
                    raise PeerError(
                        f"Friend {self.name} runs an older p2pbackup that cannot read this "
                        f"device's hello; ask them to update. ({exc.message})"
                    ) from exc
                raise
            self.share_format = proto.read_hello_ok(hello.body)
            self._failures, self._retry_at = 0, 0.0
            return stream

    def _drop(self, stream: INetStream, reason: str, broke: bool = True) -> None:
        if self._stream is stream:
            self._stream = None
            if broke and self.on_broken is not None:
                self.on_broken()
        for event, slot in self._waiting.values():
            slot.append(Message(Op.ERROR, 0, proto.error_body(ErrorCode.NOT_FOUND, reason)))
            event.set()
        self._waiting.clear()

    async def _read_responses(self, stream: INetStream) -> None:
        decoder = proto.FrameDecoder()
        reason = f"Friend {self.name} closed the connection."
        try:
            while True:
                data = await stream.read(READ_SIZE)
                if not data:
                    break
                self.last_heard = trio.current_time()
                for message in decoder.feed(data):
                    waiter = self._waiting.pop(message.request_id, None)
                    if waiter is not None:
                        waiter[1].append(message)
                        waiter[0].set()
        except (BaseLibp2pError, FormatError) as exc:
            reason = _broke(self.name, exc)
        finally:
            self._drop(stream, reason)

    async def _call(self, op: Op, body: bytes = b"", prefix: bytes = b"") -> Message:
        """Send ``prefix + body`` as one request and wait for its answer."""
        stream = self._stream if op is Op.HELLO else await self._open()
        assert stream is not None
        request_id = next(self._ids) & 0xFFFFFFFF
        done, slot = trio.Event(), []
        self._waiting[request_id] = (done, slot)
        try:
            with trio.fail_after(REQUEST_TIMEOUT):
                await self._send(stream, proto.frames(Message(op, request_id, body), prefix))
                await done.wait()
        except trio.TooSlowError:
            self._waiting.pop(request_id, None)
            raise PeerError(f"Friend {self.name} did not answer in time.") from None
        except BaseLibp2pError as exc:
            self._waiting.pop(request_id, None)
            self._drop(stream, str(exc))
            raise PeerError(_broke(self.name, exc)) from exc
        reply = slot[0]
        if reply.op is Op.ERROR:
            code, text = proto.parse_error(reply.body)
            raise _ERRORS.get(code, PeerError)(f"Friend {self.name}: {text}")
        return reply

    async def _send(self, stream, frames: Iterator[bytes]) -> None:
        """Each frame is made when it is its turn on the connection: requests queued behind
        others hold no copy of their share meanwhile (16 in flight per friend).

        A frame is written whole, even when the request is cancelled meanwhile (a sibling
        upload failed, a deadline): half a frame garbles the connection under every stream
        on it. A request cut off between its frames gives up the stream, so the friend
        drops the unfinished message it holds."""
        sent = False
        try:
            while True:
                async with self._write_lock:
                    frame = next(frames, None)
                    if frame is None:
                        return
                    await self._write_whole(stream, frame)
                sent = True
                del frame  # not held while waiting for the next turn
        except BaseException:
            if sent:
                self._abandon(stream)
            raise

    async def _write_whole(self, stream: INetStream, frame: bytes) -> None:
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + WRITE_TIMEOUT
            try:
                await stream.write(frame)
            except BaseException:
                self._abandon(stream, whole=False)
                raise
        if scope.cancelled_caught:
            self._abandon(stream, whole=False)
            raise PeerError(f"Friend {self.name} stopped reading: a write took {WRITE_TIMEOUT} s.")
        await trio.lowlevel.checkpoint_if_cancelled()  # a cancellation held off lands now

    def _abandon(self, stream: INetStream, whole: bool = True) -> None:
        """Give up a stream; one whose last frame may be half written takes its connection
        with it, so the next request dials afresh."""
        self._drop(stream, f"The connection to friend {self.name} was cut mid-request.")
        self._nursery.start_soon(self._close, stream, whole)

    async def _close(self, stream: INetStream, whole: bool) -> None:
        with trio.move_on_after(1), contextlib.suppress(BaseLibp2pError):  # gone already: fine
            await stream.reset()
            if not whole:
                await self._host.disconnect(self._peer.peer_id)

    async def _expect(self, op: Op, body: bytes, reply_op: Op, prefix: bytes = b"") -> bytes:
        reply = await self._call(op, body, prefix)
        if reply.op is not reply_op:
            raise PeerError(f"Friend {self.name} answered {reply.op.name} to {op.name}.")
        return reply.body

    # --- ShareStore ---

    async def put(self, key: ShareKey, share: bytes) -> None:
        key_body = proto.share_key_body(key.record_id, key.index)
        await self._expect(Op.PUT, share, Op.OK, prefix=key_body)

    async def get(self, key: ShareKey) -> bytes:
        return await self._expect(Op.GET, proto.share_key_body(key.record_id, key.index), Op.DATA)

    async def put_part(
        self, key: ShareKey, offset: int, reserve: int, last: bool, piece: bytes
    ) -> bool:
        head = proto.part_head(key.record_id, key.index, offset, reserve, last)
        return await self._expect(Op.PUT_PART, piece, Op.OK, prefix=head) != b"kept"

    async def get_range(self, key: ShareKey, offset: int, length: int) -> bytes:
        body = proto.range_body(key.record_id, key.index, offset, length)
        return await self._expect(Op.GET_RANGE, body, Op.DATA)

    async def prove(self, key: ShareKey, nonce: bytes) -> bytes:
        body = proto.share_key_body(key.record_id, key.index, bytes([len(nonce)]) + nonce)
        return await self._expect(Op.PROVE, body, Op.DATA)

    async def prove_blocks(
        self, key: ShareKey, blocks: list[int]
    ) -> list[tuple[bytes, list[bytes]]]:
        body = proto.prove_blocks_body(key.record_id, key.index, blocks)
        reply = await self._expect(Op.PROVE_BLOCKS, body, Op.DATA)
        proofs = proto.parse_proofs(reply, merkle.MAX_LEAF)
        if len(proofs) != len(blocks):
            raise IntegrityError(f"Friend {self.name} answered {len(proofs)} block proofs, "
                                 f"not {len(blocks)}.")  # fmt: skip
        return proofs

    async def remove(self, key: ShareKey) -> None:
        body = proto.sign_remove(
            self._signing_key, node_key_of(self._peer.peer_id), key.record_id, key.index,
            int(time.time()),
        )  # fmt: skip
        await self._expect(Op.REMOVE, body, Op.OK)

    async def list(self) -> frozenset[ShareKey]:
        body = await self._expect(Op.LIST, b"", Op.KEYS)
        return frozenset(ShareKey(rid, index) for rid, index in proto.parse_keys(body))

    async def stat(self) -> Usage:
        return Usage(*proto.parse_usage(await self._expect(Op.STAT, b"", Op.USAGE)))

    async def get_head(self) -> bytes | None:
        return (await self._expect(Op.HEAD_GET, b"", Op.DATA)) or None

    async def put_head(self, head: bytes) -> None:
        await self._expect(Op.HEAD_PUT, head, Op.OK)

    async def aclose(self) -> None:
        self._closed = True
        if self._stream is not None:
            stream, self._stream = self._stream, None
            # Closed even when the owner is cancelled (a friend let go): the friend's node
            # then ends its side at once.
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await stream.close()


@asynccontextmanager
async def remote_store(
    host: IHost,
    peer: PeerInfo,
    name: str,
    certificate: bytes,
    signing_key: SigningKey,
    via: Callable[[PeerInfo], Awaitable[None]] | None = None,
) -> AsyncIterator[RemoteShareStore]:
    async with trio.open_nursery() as nursery:
        store = RemoteShareStore(host, peer, name, certificate, signing_key, nursery, via)
        try:
            yield store
        finally:
            await store.aclose()
            nursery.cancel_scope.cancel()
