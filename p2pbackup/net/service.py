"""The storage service: friends' devices keep their shares in my pool.

Only a device holding a valid certificate of an owner I paired with gets in
(checked by peer id: the certificate must name the very key the Noise
handshake authenticated), and it reaches only its owner's pool. Every
request has a deadline; a peer that sends garbage or misbehaves loses its
stream, never the node. Disk work runs in worker threads.

What a peer can make the node hold is bounded (``net/bounds.py``): before
HELLO one small frame within a few seconds, and nothing else; after it, the
bytes of each friend's device and of all friends together, and the streams
of each peer and of all peers still saying hello.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError

from p2pbackup.core import erasure
from p2pbackup.core import protocol as proto
from p2pbackup.core.certificate import verify_certificate
from p2pbackup.core.codec import Reader
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
from p2pbackup.net.bounds import FRIEND_LIMITS, HELLO_TIMEOUT, Gate, Greeting, Overload
from p2pbackup.net.host import node_key_of, vouch
from p2pbackup.storage.sharepool import SharePool
from p2pbackup.storage.store import ShareKey

log = logging.getLogger(__name__)

PROTOCOL = TProtocol(proto.PROTOCOL_ID)
READ_SIZE = 1 << 20
IDLE_TIMEOUT = 300  # seconds a friend's stream may stay silent
REQUEST_TIMEOUT = 60  # seconds to finish one request's disk work


class _Refused(P2PBackupError):
    """This node does not know you."""


def _code(error: P2PBackupError) -> ErrorCode:
    # An outdated HELLO is a refusal, which an old client takes for a friend away.
    if isinstance(error, (_Refused, proto.OutdatedHello)):
        return ErrorCode.REFUSED
    if isinstance(error, FormatError):
        return ErrorCode.BAD_REQUEST
    if isinstance(error, IntegrityError):
        return ErrorCode.INTEGRITY
    if isinstance(error, StorageError):
        return ErrorCode.STORAGE
    if isinstance(error, NoBlockProofs):
        return ErrorCode.NO_TREE
    if isinstance(error, OtherVersionKept):
        return ErrorCode.OTHER_VERSION
    return ErrorCode.NOT_FOUND


class StorageService:
    """Serves ``PROTOCOL``; ``quota(owner_id)`` is None for anyone not a friend."""

    def __init__(
        self,
        pool: SharePool,
        quota: Callable[[bytes], int | None],
        node_key: bytes,
        gate: Gate | None = None,
        saw: Callable[[bytes, bytes], None] | None = None,
    ) -> None:
        self._saw = saw  # (node key, owner id) of each valid certificate shown: the relay's
        self._pool = pool
        self._quota = quota
        self._node_key = node_key
        self._seen_removes: dict[bytes, int] = {}  # signature -> time, to refuse replays
        self._gate = gate or Gate()

    async def handle(self, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id
        try:
            with self._gate.admit(peer) as greeting:
                await self._serve(stream, node_key_of(peer), greeting)
        except (FormatError, Overload) as exc:
            log.info("closing a stream from %s: %s", peer, exc.message)
        except trio.TooSlowError:
            log.debug("closing a stream from %s: it said nothing in time", peer)
        except (BaseLibp2pError, PeerError) as exc:
            log.debug("stream from %s ended: %s", peer, exc)
        except Exception:  # a peer must never crash the node
            log.exception("unexpected error serving %s", peer)
        finally:
            with trio.move_on_after(1):
                await stream.reset()
            internals.forget_unread(stream)

    async def _serve(self, stream: INetStream, node_key: bytes, greeting: Greeting) -> None:
        decoder = proto.FrameDecoder(proto.HELLO_LIMITS)
        messages: deque[Message] = deque()
        with greeting.scope, trio.fail_after(HELLO_TIMEOUT):
            while not messages:
                # A read takes no more than a HELLO may be: a stranger's bytes are refused
                # before they pile up.
                messages.extend(decoder.feed(await self._read(stream, proto.HELLO_MAX)))
        if greeting.scope.cancelled_caught:
            raise Overload("Newer streams saying hello pushed it out.")
        hello = messages.popleft()
        try:
            if hello.op is not Op.HELLO:
                raise _Refused("Say hello with your device certificate first.")
            owner = self._hello(proto.read_hello(hello.body), node_key)
        except P2PBackupError as exc:  # answered, then the stream ends: a stranger costs little
            log.info("refused a hello from %s: %s", stream.muxed_conn.peer_id, exc.message)
            await self._answer(stream, hello.request_id, Op.ERROR,
                               proto.error_body(_code(exc), exc.message))  # fmt: skip
            await stream.close()
            return
        greeting.greeted()
        vouch(stream)
        await self._answer(stream, hello.request_id, Op.OK, proto.hello_ok_body(erasure.VERSION))
        decoder.limits = FRIEND_LIMITS
        account = greeting.account
        while True:
            # Requests are served one at a time: what a stream holds is its unfinished
            # messages, the whole ones read with them, and one answer. Room for a read is
            # taken before the read, so the budgets hold what is in memory, never less.
            queued = sum(len(m.body) for m in messages)
            await account.hold(decoder.held + queued)
            while messages:
                message = messages.popleft()
                queued -= len(message.body)
                try:
                    with trio.fail_after(REQUEST_TIMEOUT):
                        op, body = await self._request(owner, message)
                except P2PBackupError as exc:
                    op, body = Op.ERROR, proto.error_body(_code(exc), exc.message)
                request_id = message.request_id
                del message
                await account.hold(decoder.held + queued + len(body))
                await self._answer(stream, request_id, op, body)
                del body
            await account.hold(decoder.held + READ_SIZE)
            with trio.fail_after(IDLE_TIMEOUT):
                messages.extend(decoder.feed(await self._read(stream, READ_SIZE)))

    @staticmethod
    async def _read(stream: INetStream, size: int) -> bytes:
        data = await stream.read(size)
        if not data:
            raise PeerError("The peer closed the stream.")
        return data

    @staticmethod
    async def _answer(stream: INetStream, request_id: int, op: Op, body: bytes) -> None:
        for frame in proto.frames(Message(op, request_id, body)):
            await stream.write(frame)

    def _hello(self, certificate: bytes, node_key: bytes) -> bytes:
        cert = verify_certificate(certificate)
        if cert.node_key != node_key:
            raise _Refused("That certificate is for another device.")
        if self._saw is not None:  # before the friend check: the owner's own devices too
            self._saw(node_key, cert.owner_id)
        if self._quota(cert.owner_id) is None:
            raise _Refused("You are not a paired friend of this node.")
        return cert.owner_id

    async def _request(self, owner: bytes, message: Message) -> tuple[Op, bytes]:
        r = Reader(message.body, f"{message.op.name.lower()} request")
        pool = self._pool
        run = trio.to_thread.run_sync
        if message.op is Op.PUT:
            record_id, index = proto.read_share_key(r)
            await run(pool.put, owner, ShareKey(record_id, index), r.rest_view())
            return Op.OK, b""
        if message.op is Op.PUT_PART:
            record_id, index, offset, reserve, last, piece = proto.read_part(r)
            wanted = await run(
                pool.put_part, owner, ShareKey(record_id, index), offset, reserve, last, piece
            )
            return Op.OK, b"" if wanted else b"kept"
        if message.op is Op.GET_RANGE:
            record_id, index, offset, length = proto.read_range(r)
            return Op.DATA, await run(pool.get_range, owner, ShareKey(record_id, index), offset,
                                      length)  # fmt: skip
        if message.op is Op.GET:
            key = ShareKey(*proto.read_share_key(r))
            r.end()
            return Op.DATA, await run(pool.get, owner, key)
        if message.op is Op.PROVE:
            key = ShareKey(*proto.read_share_key(r))
            nonce = r.blob("nonce", 64)
            r.end()
            return Op.DATA, await run(pool.prove, owner, key, nonce)
        if message.op is Op.PROVE_BLOCKS:
            record_id, index, blocks = proto.read_prove_blocks(r)
            proofs = await run(pool.prove_blocks, owner, ShareKey(record_id, index), blocks)
            return Op.DATA, proto.proofs_body(proofs)
        if message.op is Op.LIST:
            r.end()
            keys = await run(pool.list, owner)
            return Op.KEYS, proto.keys_body([(k.record_id, k.index) for k in keys])
        if message.op is Op.STAT:
            r.end()
            usage = await run(pool.stat, owner)
            return Op.USAGE, proto.usage_body(usage.used, usage.quota)
        if message.op is Op.REMOVE:
            now = int(time.time())
            record_id, index, signature = proto.verify_remove(
                message.body, owner, self._node_key, now
            )
            if signature in self._seen_removes:
                raise IntegrityError("This remove request was already used: replays are refused.")
            self._seen_removes = {
                s: t for s, t in self._seen_removes.items() if now - t <= proto.REMOVE_WINDOW * 2
            }
            self._seen_removes[signature] = now
            await run(pool.remove, owner, ShareKey(record_id, index))
            return Op.OK, b""
        if message.op is Op.HEAD_GET:
            r.end()
            return Op.DATA, (await run(pool.get_head, owner)) or b""
        if message.op is Op.HEAD_PUT:
            await run(pool.put_head, owner, r.rest())
            return Op.OK, b""
        raise FormatError(f"storage protocol: {message.op.name} is not a request")
