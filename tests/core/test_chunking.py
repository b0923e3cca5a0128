"""Chunking and signatures: streamed cuts equal one-shot cuts, pinned vectors, bad bytes."""

from __future__ import annotations

import contextlib
import hashlib

import pyfastcdc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core.chunking import (
    CHUNKER_V1,
    ChunkStream,
    Signature,
    SignatureBuilder,
    revision_id,
    signature_of,
)
from p2pbackup.errors import FormatError

FIXED = hashlib.shake_256(b"p2pbackup").digest(1 << 20)
FIXED_SIGNATURE = signature_of(FIXED)


def _one_shot(data: bytes) -> list[bytes]:
    """The reference: pyfastcdc over the whole input at once."""
    p = CHUNKER_V1
    cdc = pyfastcdc.FastCDC(
        p.avg, min_size=p.min, max_size=p.max, normalized_chunking=p.normalized, seed=p.seed
    )
    return [bytes(c.data) for c in cdc.cut_buf(data)]


def _streamed(data: bytes, cuts: list[int]) -> list[bytes]:
    stream, chunks, start = ChunkStream(), [], 0
    for cut in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
        window = bytearray(data[start:cut])  # a buffer the caller will reuse
        chunks += [bytes(c) for c in stream.feed(window)]
        window[:] = b"\xff" * len(window)
        start = cut
    return chunks + [bytes(c) for c in stream.finish()]


# --- fixed vectors: they fail if the chunker or a layout changes ---


def test_chunk_lengths_vector():
    assert FIXED_SIGNATURE.lengths == (
        57803, 67549, 54669, 129189, 87760, 55628, 63548, 24388,
        60021, 84532, 68420, 72546, 27186, 78718, 55723, 60896,
    )  # fmt: skip


def test_signature_bytes_vector():
    encoded = FIXED_SIGNATURE.to_bytes()
    assert encoded[:7].hex() == "50325347010110"  # magic, version 1, chunker 1, 16 chunks
    assert hashlib.blake2b(encoded, digest_size=32).hexdigest() == (
        "0c2cfb9d8c8ae824b2b35a01a7e5aa4667b0e9fc34b342c66980b7539e82b09a"
    )


def test_revision_id_vector():
    assert revision_id(bytes(32), FIXED_SIGNATURE).hex() == (
        "6a580e5d3d905d121082e72f1f17de3ce0f91832b0011873f9314e779353b5a7"
    )


def test_the_compiled_chunker_is_used():
    assert pyfastcdc.FastCDC.__module__.startswith("pyfastcdc.cy")


# --- chunking ---


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 700_000),
    st.lists(st.integers(0, 700_000), max_size=10),
    st.integers(0, 2**16),
)
def test_streamed_chunks_equal_one_shot_chunks(size, cuts, shift):
    data = FIXED[shift : shift + size]
    expected = _one_shot(data)
    assert _streamed(data, cuts) == expected
    assert b"".join(expected) == data


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 40_000), min_size=1, max_size=40))
def test_small_windows_equal_one_shot_chunks(windows):
    cuts = [sum(windows[: i + 1]) for i in range(len(windows))]
    data = FIXED[: cuts[-1] + 300_000]
    assert _streamed(data, cuts) == _one_shot(data)


def test_repetitive_data_is_cut_at_the_maximum():
    data = bytes(1 << 20)
    assert _streamed(data, [1, 300_000, 300_001]) == _one_shot(data)
    assert [len(c) for c in _one_shot(data)] == [CHUNKER_V1.max] * 4


def test_chunks_respect_the_size_limits():
    lengths = FIXED_SIGNATURE.lengths
    assert all(CHUNKER_V1.min <= n <= CHUNKER_V1.max for n in lengths[:-1])
    assert sum(lengths) == len(FIXED)


def test_one_window_gives_the_one_shot_chunks():
    for size in (0, 1, 100_000, 2 * CHUNKER_V1.max - 1, 2 * CHUNKER_V1.max, len(FIXED)):
        stream = ChunkStream()
        chunks = [bytes(c) for c in [*stream.feed(FIXED[:size]), *stream.finish()]]
        assert chunks == _one_shot(FIXED[:size])
        assert stream.finish() == []


def test_empty_input_has_no_chunks():
    assert _streamed(b"", []) == []
    assert signature_of(b"") == Signature((), ())
    assert signature_of(b"").size == 0


# --- signatures ---


def test_builder_hands_over_every_chunk_in_order():
    seen: list[bytes] = []
    builder = SignatureBuilder(on_chunk=lambda chunk: seen.append(bytes(chunk)))
    for start in range(0, len(FIXED), 100_000):
        builder.feed(FIXED[start : start + 100_000])
    assert builder.finish() == FIXED_SIGNATURE
    assert b"".join(seen) == FIXED
    assert [hashlib.blake2b(c, digest_size=32).digest() for c in seen] == list(
        FIXED_SIGNATURE.hashes
    )


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, CHUNKER_V1.max), st.binary(min_size=32, max_size=32)),
        max_size=20,
    )
)
def test_signature_round_trip(chunks):
    sig = Signature(tuple(n for n, _ in chunks), tuple(h for _, h in chunks))
    assert Signature.from_bytes(sig.to_bytes()) == sig


def test_revision_id_names_content_under_a_key():
    same = signature_of(bytearray(FIXED))
    assert revision_id(bytes(32), same) == revision_id(bytes(32), FIXED_SIGNATURE)
    assert revision_id(bytes([1]) * 32, same) != revision_id(bytes(32), FIXED_SIGNATURE)
    edited = signature_of(FIXED[:-1] + b"\x00")
    assert revision_id(bytes(32), edited) != revision_id(bytes(32), FIXED_SIGNATURE)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b"P2SX" + b[4:], "not a signature"),
        (lambda b: b[:4] + b"\x02" + b[5:], "version 2"),
        (lambda b: b[:5] + b"\x07" + b[6:], "chunker 7"),
        (lambda b: b + b"\x00", "unexpected bytes"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b"P2SG\x01\x01\x01\x00" + bytes(32), "empty chunk"),
        (lambda b: b"P2SG\x01\x01\x01\x81\x80\x10" + bytes(32), "maximum"),
    ],
)
def test_bad_signatures_say_what_is_wrong(damage, message):
    with pytest.raises(FormatError, match=message):
        Signature.from_bytes(damage(signature_of(FIXED[:100_000]).to_bytes()))


SMALL = signature_of(FIXED[:200_000]).to_bytes()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(SMALL) - 1), st.integers(1, 255))
def test_a_flipped_signature_byte_raises_only_format_errors(position, flip):
    damaged = bytearray(SMALL)
    damaged[position] ^= flip
    with contextlib.suppress(FormatError):
        Signature.from_bytes(bytes(damaged))


def test_every_truncated_signature_is_refused():
    for size in range(len(SMALL)):
        with pytest.raises(FormatError):
            Signature.from_bytes(SMALL[:size])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_raise_only_format_errors(data, with_header):
    with contextlib.suppress(FormatError):
        Signature.from_bytes(b"P2SG\x01\x01" + data if with_header else data)
