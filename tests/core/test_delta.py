"""Chunking, signatures and deltas: exact rebuilds of every revision, small deltas, bad bytes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core.chunking import (
    CHUNKER_V1,
    ChunkStream,
    Signature,
    revision_id,
    signature_of,
)
from p2pbackup.core.delta import (
    Copy,
    apply_delta,
    apply_delta_bytes,
    encode_delta,
    make_delta,
    parse_delta,
    plan_delta,
)
from p2pbackup.errors import IntegrityError, P2PBackupError

FIXED = hashlib.shake_256(b"p2pbackup").digest(1 << 20)


# --- fixed vectors ---


def test_chunk_boundaries_vector():
    assert signature_of(FIXED).lengths == (
        57803, 67549, 54669, 129189, 51545, 66677, 51557, 61545,
        60021, 84532, 68420, 72546, 27186, 78718, 55723, 60896,
    )  # fmt: skip
    assert hashlib.blake2b(signature_of(FIXED).to_bytes(), digest_size=16).hexdigest() == (
        "376494f3702b6d3ecc137e262c8f59bf"
    )


def test_revision_id_vector():
    assert revision_id(bytes(32), signature_of(FIXED)).hex() == (
        "f8a7b630b1775097bc63f9daff7e65ee12a4dadc6e2b76e0770a3fe9ab96aafd"
    )


def test_delta_bytes_vector():
    base = b"hello world, this is the base text"
    assert make_delta(signature_of(base), b"prefix " + base).hex() == (
        "503242440122290102297072656669782068656c6c6f20776f726c642c20746869732069732074686520"
        "626173652074657874"
    )


# --- chunking ---


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 600_000), st.lists(st.integers(1, 300_000), max_size=8))
def test_chunk_stream_equals_one_shot_chunking(size, cuts):
    data = FIXED[:size]
    one_shot = ChunkStream()
    expected = [bytes(c) for c in one_shot.feed(data)] + [bytes(c) for c in one_shot.finish()]
    stream, got, start = ChunkStream(), [], 0
    for cut in [*sorted(c for c in cuts if c < size), size]:
        got += [bytes(c) for c in stream.feed(data[start:cut])]
        start = cut
    got += [bytes(c) for c in stream.finish()]
    assert got == expected
    assert b"".join(got) == data


def test_chunks_respect_the_size_limits():
    lengths = signature_of(os.urandom(4 << 20)).lengths
    assert all(CHUNKER_V1.min <= n <= CHUNKER_V1.max for n in lengths[:-1])


def test_signature_round_trip_and_garbage():
    sig = signature_of(FIXED)
    assert Signature.from_bytes(sig.to_bytes()) == sig
    with pytest.raises(P2PBackupError):
        Signature.from_bytes(sig.to_bytes()[:-1])


# --- deltas ---


def _edit(data: bytes, kind: str, rnd) -> bytes:
    n = len(data)
    at = rnd.randint(0, n)
    if kind == "insert_start":
        return rnd.randbytes(rnd.randint(1, 5000)) + data
    if kind == "insert_middle":
        return data[:at] + rnd.randbytes(rnd.randint(1, 5000)) + data[at:]
    if kind == "delete_middle":
        return data[:at] + data[at + rnd.randint(1, 50_000) :]
    if kind == "append":
        return data + rnd.randbytes(rnd.randint(1, 70_000))
    if kind == "truncate":
        return data[:at]
    if kind == "replace":
        span = rnd.randint(1, 10_000)
        return data[:at] + rnd.randbytes(span) + data[at + span :]
    if kind == "empty":
        return b""
    return data  # identical


EDITS = ["insert_start", "insert_middle", "delete_middle", "append", "truncate", "replace",
         "empty", "identical"]  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from(EDITS), min_size=1, max_size=6),
    st.integers(0, 2**32),
    st.booleans(),
)
def test_every_revision_rebuilds_exactly_forward_and_reverse(edits, seed, repetitive):
    rnd = random.Random(seed)
    text = (b"the same line again\n" * 20_000) if repetitive else rnd.randbytes(300_000)
    for kind in edits:
        new = _edit(text, kind, rnd)
        forward = make_delta(signature_of(text), new)
        assert apply_delta_bytes(forward, text) == new
        reverse = make_delta(signature_of(new), text)
        assert apply_delta_bytes(reverse, new) == text
        text = new


def test_small_edits_give_small_deltas():
    original = hashlib.shake_256(b"eight mebibytes").digest(8 << 20)  # fixed: deterministic
    parent = signature_of(original)
    mean = parent.size // len(parent.lengths)
    middle = len(original) // 2
    one_byte = original[:middle] + bytes([original[middle] ^ 1]) + original[middle + 1 :]
    assert len(make_delta(parent, one_byte)) <= 2 * mean + 4096
    inserted = hashlib.shake_256(b"four kibibytes").digest(4096)
    assert len(make_delta(parent, inserted + original)) <= 2 * mean + 4096
    same = make_delta(parent, original)
    assert len(same) < 32
    assert all(isinstance(op, Copy) for op in parse_delta(same).ops)


def test_encoded_size_is_exact_before_reading_data():
    base, new = FIXED[:500_000], FIXED[100:400_000] + os.urandom(70_000)
    plan = plan_delta(signature_of(base), signature_of(new))
    assert plan.encoded_size() == len(encode_delta(plan, lambda o, n: new[o : o + n]))


def test_a_delta_for_another_base_is_refused():
    delta = make_delta(signature_of(b"a" * 1000), b"a" * 900)
    with pytest.raises(IntegrityError, match="does not apply"):
        list(apply_delta(delta, lambda o, n: b"a" * n, 999))


def test_a_short_base_read_is_caught():
    delta = make_delta(signature_of(FIXED[:200_000]), FIXED[:200_000])
    with pytest.raises(IntegrityError):
        list(apply_delta(delta, lambda o, n: b"x", 200_000))


def test_every_byte_change_of_a_delta_raises_or_changes_the_result_safely():
    base = b"hello world, this is the base text"
    delta = make_delta(signature_of(base), b"prefix " + base)
    for position in range(len(delta)):
        damaged = bytearray(delta)
        damaged[position] ^= 0x41
        try:
            out = apply_delta_bytes(bytes(damaged), base)
        except IntegrityError:
            continue
        # A change in inserted bytes still parses; the seal's AEAD is what catches that.
        assert len(out) == len(b"prefix " + base)


@given(st.binary(max_size=200))
def test_garbage_deltas_raise_only_project_errors(data):
    with contextlib.suppress(P2PBackupError):
        parse_delta(b"P2BD\x01" + data)
    with pytest.raises(P2PBackupError):
        parse_delta(data if not data.startswith(b"P2BD") else b"x" + data)


@given(st.binary(max_size=300))
def test_garbage_signatures_raise_only_project_errors(data):
    with contextlib.suppress(P2PBackupError):
        Signature.from_bytes(b"P2SG\x01\x01" + data)
    with pytest.raises(P2PBackupError):
        Signature.from_bytes(b"x" + data)
