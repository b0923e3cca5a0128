"""The storage protocol's frames and bodies: round trips, interleaving, limits, garbage."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core import protocol as proto
from p2pbackup.core.codec import Reader
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.protocol import FrameDecoder, Message, Op
from p2pbackup.errors import FormatError, IntegrityError, P2PBackupError

OWNER = OwnerKeys.from_secret(bytes(range(32)))


def _wire(*messages: Message) -> bytes:
    return b"".join(f for m in messages for f in proto.frames(m))


def test_frame_vector():
    assert _wire(Message(Op.STAT, 7, b"")).hex() == "00000006010700000007"


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(list(Op)), st.binary(max_size=3000)), max_size=5),
    st.lists(st.integers(1, 5000), max_size=10),
)
def test_messages_survive_any_split(items, cuts):
    messages = [Message(op, i, body) for i, (op, body) in enumerate(items)]
    wire = _wire(*messages)
    decoder, got, start = FrameDecoder(), [], 0
    for cut in [*sorted(c for c in cuts if c < len(wire)), len(wire)]:
        got += decoder.feed(wire[start:cut])
        start = cut
    assert got == messages


def test_large_messages_span_frames_and_interleave():
    big = Message(Op.PUT, 1, bytes(range(256)) * 10_000)  # 2.5 MB: three frames
    small = Message(Op.STAT, 2, b"")
    big_frames = list(proto.frames(big))
    assert len(big_frames) == 3
    wire = big_frames[0] + next(proto.frames(small)) + b"".join(big_frames[1:])
    assert FrameDecoder().feed(wire) == [small, big]


@pytest.mark.parametrize("extra", [-1, 0, 1, 2 << 20])
def test_a_prefix_given_apart_makes_the_same_frames_as_a_joined_body(extra):
    prefix = b"\x01" * 33  # a share key
    piece = proto.MAX_FRAME - (proto.HEADER.size - 4)
    body = bytes(range(256)) * ((piece - len(prefix) + extra) // 256 + 1)
    body = body[: max(0, piece - len(prefix) + extra)]  # around the end of the first frame
    apart = list(proto.frames(Message(Op.PUT, 7, body), prefix))
    assert apart == list(proto.frames(Message(Op.PUT, 7, prefix + body)))
    assert list(proto.frames(Message(Op.PUT, 7, b""), prefix)) == list(
        proto.frames(Message(Op.PUT, 7, prefix))
    )


def test_limits_are_enforced():
    with pytest.raises(FormatError, match="frame of"):
        FrameDecoder().feed(struct.pack(">I", proto.MAX_FRAME + 1))
    with pytest.raises(FormatError, match="version"):
        FrameDecoder().feed(struct.pack(">IBBI", 6, 9, Op.STAT, 1))
    with pytest.raises(FormatError, match="unknown message type"):
        FrameDecoder().feed(struct.pack(">IBBI", 6, 1, 99, 1))
    decoder = FrameDecoder(proto.Limits(max_pending=2))
    with pytest.raises(FormatError, match="too many"):
        for request in range(3):
            decoder.feed(struct.pack(">IBBI", 7, 1, Op.PUT | proto.MORE, request) + b"x")


@given(st.binary(max_size=300))
def test_garbage_raises_only_format_errors(data):
    with contextlib.suppress(FormatError):
        FrameDecoder().feed(data)


def test_remove_requests_are_bound_to_owner_friend_and_time():
    body = proto.sign_remove(OWNER.signing_key, b"node", b"\x01" * 32, 3, 1000)
    assert proto.verify_remove(body, OWNER.owner_id, b"node", 1000)[:2] == (b"\x01" * 32, 3)
    with pytest.raises(IntegrityError, match="signature"):
        proto.verify_remove(body, OWNER.owner_id, b"another node", 1000)
    with pytest.raises(IntegrityError, match="expired"):
        proto.verify_remove(body, OWNER.owner_id, b"node", 1000 + proto.REMOVE_WINDOW + 1)
    other = OwnerKeys.from_secret(bytes(32))
    with pytest.raises(IntegrityError):
        proto.verify_remove(body, other.owner_id, b"node", 1000)
    with pytest.raises(P2PBackupError):
        proto.verify_remove(body[:-1], OWNER.owner_id, b"node", 1000)
    assert body != proto.sign_remove(OWNER.signing_key, b"node", b"\x01" * 32, 3, 1000)


def test_bodies_round_trip():
    keys = [(b"\x02" * 32, 1), (b"\x01" * 32, 0)]
    assert proto.parse_keys(proto.keys_body(keys)) == sorted(keys)
    assert proto.parse_usage(proto.usage_body(5, 10)) == (5, 10)
    assert proto.parse_error(proto.error_body(proto.ErrorCode.STORAGE, "full")) == (3, "full")


def test_part_and_range_vectors():
    body = proto.part_head(b"\x01" * 32, 3, 300, 1000, True) + b"xyz"
    assert body.hex() == "01" * 32 + "03" + "ac02" + "e807" + "01" + "78797a"
    assert proto.read_part(Reader(body, "t")) == (b"\x01" * 32, 3, 300, 1000, True, b"xyz")
    body = proto.range_body(b"\x02" * 32, 1, 44, 1 << 20)
    assert body.hex() == "02" * 32 + "01" + "2c" + "808040"
    assert proto.read_range(Reader(body, "t")) == (b"\x02" * 32, 1, 44, 1 << 20)
    with pytest.raises(FormatError):  # more than one range request may ask for
        proto.read_range(Reader(proto.range_body(b"\x02" * 32, 1, 0, proto.MAX_RANGE + 1), "t"))
    with pytest.raises(FormatError):
        proto.read_part(Reader(b"\x01" * 32 + b"\x03\x00\x00\x02", "t"))  # last flag 2


# --- HELLO and what a decoder holds ---

# The device certificate of docs/format.md's vector, in a HELLO of request id 1.
HELLO_VECTOR = (
    "0000009c0101" + "00000001"  # length 156, version 1, HELLO, request id 1
    "9401"  # the certificate's length, 148, as a varint: the blob docs/format.md names
    "5032424301"
    "032e7e811682bfa282d93f5c1dc2352a8f273a544e1f6395b5ed10f42962b781"
    "6465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283"
    "0000000069248100"
    "066c6170746f70"
    "afb5f26fe2f78e45e7dd360a0978b8237931652b6b51d03ad5a3bccdd1a87732"
    "b7efd5dd079090c183257588e14a0244f3c47b0009ab5d95e3903237e4ae3608"
)


def test_hello_vector():
    from p2pbackup.core.certificate import issue_certificate

    cert = issue_certificate(OWNER, bytes(range(0x64, 0x84)), "laptop", 1_764_000_000)
    assert _wire(Message(Op.HELLO, 1, proto.hello_body(cert))).hex() == HELLO_VECTOR
    (hello,) = FrameDecoder(proto.HELLO_LIMITS).feed(bytes.fromhex(HELLO_VECTOR))
    assert proto.read_hello(hello.body) == cert


def test_the_hello_answer_says_the_newest_share_format():
    """Pinned: ``OK`` with one byte, 3. A node before share format 3 answered an empty
    ``OK`` (it reads 2); a later node may add fields, which this one skips."""
    wire = _wire(Message(Op.OK, 1, proto.hello_ok_body(3)))
    assert wire.hex() == "00000007" "01" "40" "00000001" "03"  # length, version, OK, id, 3
    assert proto.read_hello_ok(b"\x03") == 3
    assert proto.read_hello_ok(b"") == 2
    assert proto.read_hello_ok(b"\x04more") == 4


def test_a_bare_certificate_is_an_outdated_hello_and_garbage_is_refused():
    from p2pbackup.core.certificate import issue_certificate

    cert = issue_certificate(OWNER, bytes(range(0x64, 0x84)), "laptop", 1_764_000_000)
    with pytest.raises(proto.OutdatedHello, match="update p2pbackup"):
        proto.read_hello(cert)
    with pytest.raises(FormatError):
        proto.read_hello(proto.hello_body(cert) + b"x")


def test_before_hello_one_frame_of_64_kib_and_no_more():
    hello = proto.HELLO_LIMITS
    limit = struct.pack(">IBBI", proto.HELLO_MAX - 4, 1, Op.HELLO, 1)
    assert FrameDecoder(hello).feed(limit + bytes(proto.HELLO_MAX - 10))[0].op is Op.HELLO
    with pytest.raises(FormatError, match="frame of"):  # refused on its length, unread
        FrameDecoder(hello).feed(struct.pack(">IBBI", proto.HELLO_MAX - 3, 1, Op.HELLO, 1))
    with pytest.raises(FormatError, match="several frames"):
        FrameDecoder(hello).feed(struct.pack(">IBBI", 7, 1, Op.PUT | proto.MORE, 1) + b"x")


def test_unfinished_messages_are_bounded_in_bytes_and_held_counts_them():
    piece = bytes(proto.MAX_FRAME - 6)
    decoder = FrameDecoder(proto.Limits(max_held=3 * len(piece)))
    for request in range(3):
        decoder.feed(struct.pack(">IBBI", len(piece) + 6, 1, Op.PUT | proto.MORE, request))
        decoder.feed(piece)
    assert decoder.held == 3 * len(piece)
    with pytest.raises(FormatError, match="unfinished messages over"):
        decoder.feed(struct.pack(">IBBI", len(piece) + 6, 1, Op.PUT | proto.MORE, 9) + piece)
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">IBBI", 7, 1, Op.PUT | proto.MORE, 1) + b"x")
    assert decoder.feed(struct.pack(">IBBI", 7, 1, Op.PUT, 1) + b"y")[0].body == b"xy"
    assert decoder.held == 0
