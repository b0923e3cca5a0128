"""The storage protocol's messages and frames (``/p2pbackup/storage/1.0.0``).

Pure: bytes in, messages out, and back. The net layer only moves frames.

One long-lived stream per friend carries many requests at once: every
message names its request id, so a client pipelines puts without waiting a
round trip per share, and responses may come back in any order. A message
larger than one frame is sent as several frames with the MORE flag, and
frames of different requests may interleave, so a large share never holds
up a small request behind it.

Frame::

    offset  size  field
    0       4     length of the rest (u32), 6 .. MAX_FRAME
    4       1     version = 1
    5       1     type (Op), with bit 7 (MORE) set on every frame but a message's last
    6       4     request id (u32)
    10      ..    a piece of the message body

Bodies (requests from the owner's device, responses from the friend):

    HELLO       certificate (blob)                 -> OK newest share format read u8
                                                      (empty before share format 3: 2)
    PUT         record id 32, index u8, share      -> OK
    GET         record id 32, index u8             -> DATA share
    LIST                                           -> KEYS count varint, (record id 32, index u8)*
    REMOVE      record id 32, index u8, time u64,
                nonce 16, signature 64             -> OK
    PROVE       record id 32, index u8, nonce blob -> DATA 32-byte proof
    STAT                                           -> USAGE used varint, quota varint
    HEAD_GET                                       -> DATA head (empty: none)
    HEAD_PUT    head                               -> OK
    PUT_PART    record id 32, index u8, offset varint,
                reserve varint, last u8, piece     -> OK (empty) | OK "kept" (already kept: stop)
    GET_RANGE   record id 32, index u8, offset varint,
                length varint (<= MAX_RANGE)       -> DATA bytes (shorter at the share's end)
    PROVE_BLOCKS record id 32, index u8, format u8 = 1, count u8 (1..MAX_PROOF_BLOCKS),
                block varint * count               -> DATA format u8 = 1, count u8,
                                                      (bytes blob, steps u8, 32 * steps)*
                (blocks of 4 KiB: each answered by the leaf of the share's tree that holds
                it, with the sibling hashes that tie it to the share hash: core/merkle.py;
                ERROR NO_TREE for a version-1 share)
    any         ...                                -> ERROR code u8, message text

A PUT or PUT_PART (at offset 0) of a share the friend keeps already, but in another
share format version, is answered ERROR OTHER_VERSION; the owner reads the kept share's
version byte (GET_RANGE at offset 4) and describes the share as kept. An owner writes
share format 3 only when every friend it backs up to said in its HELLO that it reads it.

A REMOVE is signed by the owner key over (friend node id, record id, index,
time, nonce), so a friend cannot be made to drop shares by anyone else; the
friend refuses a signature it has seen, and one older than ``REMOVE_WINDOW``.

A ``FrameDecoder`` holds at most what its ``Limits`` allow: the serving side
gives a peer that has not said HELLO one frame of ``HELLO_MAX`` bytes and no
MORE (``HELLO_LIMITS``), and a friend a budget of its own (``net/service.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

import nacl.utils

from p2pbackup.core import signing
from p2pbackup.core.codec import Reader, Writer
from p2pbackup.errors import FormatError

PROTOCOL_ID = "/p2pbackup/storage/1.0.0"
VERSION = 1
MORE = 0x80
HEADER = struct.Struct(">IBBI")  # length, version, type, request id
MAX_FRAME = (1 << 20) + 64  # 1 MiB of body per frame: large writes are fast here
MAX_MESSAGE = 256 << 20  # the largest share a friend accepts in one put
MAX_RANGE = 16 << 20  # the most one GET_RANGE returns
MAX_SHARE = 1 << 40  # a share streamed in pieces: bounded by disk, not memory
REMOVE_WINDOW = 600  # seconds a signed remove stays valid
REMOVE_DOMAIN = b"remove_v1"  # frozen
HELLO_MAX = 64 << 10  # a whole HELLO frame, length field included: all a stranger is given
CERTIFICATE_MAGIC = b"P2BC"  # what a bare certificate starts with (core/certificate.py)
TREE_SHARE_FORMAT = 2  # what a friend that does not say reads (core/erasure.TREE_VERSION)


class Op(IntEnum):
    HELLO = 1
    PUT = 2
    GET = 3
    LIST = 4
    REMOVE = 5
    PROVE = 6
    STAT = 7
    HEAD_GET = 8
    HEAD_PUT = 9
    PUT_PART = 10
    GET_RANGE = 11
    PROVE_BLOCKS = 12  # nodes before it close the stream on it: the client then sees a PeerError
    OK = 64
    DATA = 65
    KEYS = 66
    USAGE = 67
    ERROR = 127


class ErrorCode(IntEnum):
    """Lets the client raise the same error family the server raised."""

    BAD_REQUEST = 1  # FormatError
    INTEGRITY = 2  # IntegrityError
    STORAGE = 3  # StorageError (no room, disk full)
    NOT_FOUND = 4  # PeerError (no such share)
    REFUSED = 5  # not a paired friend
    NO_TREE = 6  # NoBlockProofs: a share of format version 1 has no block tree
    OTHER_VERSION = 7  # OtherVersionKept: a share of another format version is kept


@dataclass(frozen=True)
class Message:
    op: Op
    request_id: int
    body: bytes


def frames(message: Message, prefix: bytes = b"") -> Iterator[bytes]:
    """The frames that carry a message (at least one, even for an empty body).

    The body sent is ``prefix + message.body``: a short prefix (a share's key) given apart
    is written into the first frame, so a 1 MiB share is copied once, into its frame, and
    not first into a body as well.
    """
    body = memoryview(message.body)
    piece = MAX_FRAME - (HEADER.size - 4)
    if len(prefix) >= piece:
        raise ValueError("a message prefix must fit in one frame")
    start, head = 0, prefix
    while True:
        take = piece - len(head)
        chunk = body[start : start + take]
        start += take
        more = start < len(body)
        header = HEADER.pack(HEADER.size - 4 + len(head) + len(chunk), VERSION,
                             message.op | (MORE if more else 0), message.request_id)  # fmt: skip
        yield b"".join((header, head, chunk))
        head = b""
        if not more:
            return


@dataclass(frozen=True)
class Limits:
    """The most a ``FrameDecoder`` takes in; past any of them it raises FormatError."""

    max_frame: int = MAX_FRAME  # a frame's length field
    max_message: int = MAX_MESSAGE  # one message, all its frames
    max_pending: int = 64  # messages begun (MORE seen) and not finished; 0: no MORE at all
    max_held: int = MAX_MESSAGE  # bytes of all unfinished messages together


# Before HELLO: one frame of at most HELLO_MAX bytes, whole, and nothing to reassemble.
HELLO_LIMITS = Limits(HELLO_MAX - 4, HELLO_MAX, 0, HELLO_MAX)


class FrameDecoder:
    """Turns received bytes into whole messages; a protocol violation is a FormatError.

    Frames of different requests may interleave; a message's pieces are joined
    until its last frame. What it holds is bounded by ``limits`` (which the
    caller may tighten or widen between feeds) plus the bytes of the last feed.
    """

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._buffer = bytearray()
        self._partial: dict[int, tuple[Op, list[bytes], int]] = {}
        self._partial_bytes = 0

    @property
    def held(self) -> int:
        """Bytes held now: unfinished messages and an incomplete frame."""
        return self._partial_bytes + len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        out: list[Message] = []
        while len(self._buffer) >= 4:
            (length,) = struct.unpack_from(">I", self._buffer)
            if not HEADER.size - 4 <= length <= self.limits.max_frame:
                raise FormatError(f"storage protocol: a frame of {length} bytes is not allowed")
            if len(self._buffer) < 4 + length:
                break
            message = self._frame(length)
            if message is not None:
                out.append(message)
        return out

    def _frame(self, length: int) -> Message | None:
        """The frame at the buffer's start, taken out of it (its piece copied once)."""
        _, version, raw_op, request_id = HEADER.unpack_from(self._buffer)
        with memoryview(self._buffer) as view:
            piece = bytes(view[HEADER.size : 4 + length])
        del self._buffer[: 4 + length]
        if version != VERSION:
            raise FormatError(f"storage protocol: version {version} is not supported")
        try:
            op = Op(raw_op & ~MORE)
        except ValueError:
            raise FormatError(f"storage protocol: unknown message type {raw_op}") from None
        limits = self.limits
        known_op, pieces, size = self._partial.pop(request_id, (op, [], 0))
        self._partial_bytes -= size
        if known_op is not op:
            raise FormatError("storage protocol: a message changed type halfway")
        pieces.append(piece)
        size += len(piece)
        if size > limits.max_message:
            raise FormatError(
                f"storage protocol: a message is larger than {limits.max_message} bytes"
            )
        if raw_op & MORE:
            if limits.max_pending == 0:
                raise FormatError(
                    "storage protocol: a message in several frames is not allowed here"
                )
            if len(self._partial) >= limits.max_pending:
                raise FormatError("storage protocol: too many unfinished messages")
            if self._partial_bytes + size > limits.max_held:
                raise FormatError(
                    f"storage protocol: unfinished messages over {limits.max_held} bytes"
                )
            self._partial[request_id] = (op, pieces, size)
            self._partial_bytes += size
            return None
        return Message(op, request_id, b"".join(pieces))


# --- bodies ---


class OutdatedHello(FormatError):
    """The peer sent its certificate bare, as p2pbackup did before HELLO carried a blob."""


def hello_body(certificate: bytes) -> bytes:
    return Writer().blob(certificate).getvalue()


def hello_ok_body(share_format: int) -> bytes:
    return Writer().u8(share_format).getvalue()


def read_hello_ok(body: bytes) -> int:
    """The newest share format a friend reads. A node before share format 3 answered an
    empty OK; a later one may add fields after the version, which this one skips."""
    return body[0] if body else TREE_SHARE_FORMAT


def read_hello(body: bytes) -> bytes:
    """The certificate a HELLO carries. A bare certificate (the form nodes sent before the
    body matched this spec) cannot be mistaken for a blob: a certificate is 143-206 bytes,
    so a blob of one starts with a two-byte varint whose first byte is 0x8f-0xce, never
    ``P`` (0x50)."""
    if body.startswith(CERTIFICATE_MAGIC):
        raise OutdatedHello(
            "Your p2pbackup is too old for this node (its hello carries the certificate "
            "bare); update p2pbackup to back up here."
        )
    r = Reader(body, "hello")
    certificate = r.blob("certificate", HELLO_MAX)
    r.end()
    return certificate


def share_key_body(record_id: bytes, index: int, rest: bytes = b"") -> bytes:
    return Writer().raw(record_id).u8(index).raw(rest).getvalue()


def read_share_key(r: Reader) -> tuple[bytes, int]:
    return r.raw(32, "record id"), r.u8("share index")


def part_head(record_id: bytes, index: int, offset: int, reserve: int, last: bool) -> bytes:
    """A PUT_PART body without its piece, which follows it (as a ``frames`` prefix)."""
    return Writer().raw(record_id).u8(index).varint(offset).varint(reserve).u8(last).getvalue()


def read_part(r: Reader) -> tuple[bytes, int, int, int, bool, memoryview]:
    record_id, index = read_share_key(r)
    offset, reserve = r.varint("offset", MAX_SHARE), r.varint("reserve", MAX_SHARE)
    last = r.u8("last flag")
    if last > 1:
        raise r.fail(f"last flag is {last}, not 0 or 1")
    return record_id, index, offset, reserve, bool(last), r.rest_view()


def range_body(record_id: bytes, index: int, offset: int, length: int) -> bytes:
    return Writer().raw(record_id).u8(index).varint(offset).varint(length).getvalue()


def read_range(r: Reader) -> tuple[bytes, int, int, int]:
    record_id, index = read_share_key(r)
    offset, length = r.varint("offset", MAX_SHARE), r.varint("length", MAX_RANGE)
    r.end()
    return record_id, index, offset, length


MAX_PROOF_BLOCKS = 16  # blocks proved by one PROVE_BLOCKS request
PROOFS_FORMAT = 1  # the layout of a PROVE_BLOCKS request and its answer


def prove_blocks_body(record_id: bytes, index: int, blocks: list[int]) -> bytes:
    if not 1 <= len(blocks) <= MAX_PROOF_BLOCKS:
        raise ValueError(f"ask for 1..{MAX_PROOF_BLOCKS} blocks, not {len(blocks)}")
    w = Writer().raw(record_id).u8(index).u8(PROOFS_FORMAT).u8(len(blocks))
    for block in blocks:
        w.varint(block)
    return w.getvalue()


def read_prove_blocks(r: Reader) -> tuple[bytes, int, list[int]]:
    record_id, index = read_share_key(r)
    r.version(PROOFS_FORMAT)
    count = r.u8("block count")
    if not 1 <= count <= MAX_PROOF_BLOCKS:
        raise r.fail(f"{count} blocks asked for, not 1..{MAX_PROOF_BLOCKS}")
    blocks = [r.varint("block", MAX_SHARE) for _ in range(count)]
    r.end()
    return record_id, index, blocks


def proofs_body(proofs: list[tuple[bytes, list[bytes]]]) -> bytes:
    w = Writer().u8(PROOFS_FORMAT).u8(len(proofs))
    for data, path in proofs:
        w.blob(data).u8(len(path))
        for step in path:
            w.raw(step)
    return w.getvalue()


def parse_proofs(body: bytes, max_block: int) -> list[tuple[bytes, list[bytes]]]:
    """(block bytes, sibling hashes) per block asked for, in the order asked."""
    r = Reader(body, "block proofs")
    r.version(PROOFS_FORMAT)
    proofs = []
    for _ in range(r.u8("block count")):
        data = r.blob("block", max_block)
        proofs.append((data, [r.raw(32, "sibling hash") for _ in range(r.u8("steps"))]))
    r.end()
    return proofs


def keys_body(keys: list[tuple[bytes, int]]) -> bytes:
    w = Writer().varint(len(keys))
    for record_id, index in sorted(keys):
        w.raw(record_id).u8(index)
    return w.getvalue()


def parse_keys(body: bytes) -> list[tuple[bytes, int]]:
    r = Reader(body, "share list")
    keys = [read_share_key(r) for _ in range(r.varint("count", r.remaining() // 33))]
    r.end()
    return keys


def usage_body(used: int, quota: int) -> bytes:
    return Writer().varint(used).varint(quota).getvalue()


def parse_usage(body: bytes) -> tuple[int, int]:
    r = Reader(body, "usage")
    used, quota = r.varint("used"), r.varint("quota")
    r.end()
    return used, quota


def error_body(code: ErrorCode, message: str) -> bytes:
    return Writer().u8(code).text(message[:1000]).getvalue()


def parse_error(body: bytes) -> tuple[int, str]:
    r = Reader(body, "error")
    code, text = r.u8("code"), r.text("message", 4000)
    r.end()
    return code, text


def remove_message(
    friend_node: bytes, record_id: bytes, index: int, time: int, nonce: bytes
) -> bytes:
    return Writer().blob(friend_node).raw(record_id).u8(index).u64(time).raw(nonce).getvalue()


def sign_remove(signing_key, friend_node: bytes, record_id: bytes, index: int, time: int) -> bytes:
    """The REMOVE body: only the owner can make it, only for this friend, only for a while."""
    nonce = nacl.utils.random(16)
    signature = signing.sign(
        signing_key, REMOVE_DOMAIN, remove_message(friend_node, record_id, index, time, nonce)
    )
    return Writer().raw(record_id).u8(index).u64(time).raw(nonce).raw(signature).getvalue()


def verify_remove(
    body: bytes, owner_id: bytes, friend_node: bytes, now: int
) -> tuple[bytes, int, bytes]:
    """(record id, index, signature) of a valid remove; IntegrityError otherwise."""
    r = Reader(body, "remove request")
    record_id, index = read_share_key(r)
    time = r.u64("time")
    nonce = r.raw(16, "nonce")
    signature = r.raw(signing.SIGNATURE_SIZE, "signature")
    r.end()
    message = remove_message(friend_node, record_id, index, time, nonce)
    signing.verify(owner_id, REMOVE_DOMAIN, message, signature, "remove request")
    if abs(now - time) > REMOVE_WINDOW:
        raise FormatError("remove request: it expired (or the clocks differ by over 10 minutes)")
    return record_id, index, signature
