"""Deltas: exact rebuilds of every revision, forward and reverse, small deltas, bad bytes."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core import delta as delta_module
from p2pbackup.core.chunking import Signature, signature_of
from p2pbackup.core.delta import (
    Copy,
    Insert,
    Inserted,
    Literal,
    apply_delta,
    apply_delta_bytes,
    apply_located,
    delta_pieces,
    encode_delta,
    locate_delta,
    make_delta,
    parse_delta,
    plan_delta,
)
from p2pbackup.errors import FormatError, IntegrityError, SourceChangedError

FIXED = hashlib.shake_256(b"p2pbackup").digest(1 << 20)
FIXED_SIGNATURE = signature_of(FIXED)
INSERTED = hashlib.shake_256(b"four kibibytes").digest(4096)


def _h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def _hand_made() -> tuple[bytes, bytes, bytes]:
    """A tiny parent and new text with hand-made chunks: copy, insert, copy."""
    base, new = b"abchello", b"helloxyabc"
    parent = Signature((3, 5), (_h(b"abc"), _h(b"hello")))
    target = Signature((5, 2, 3), (_h(b"hello"), _h(b"xy"), _h(b"abc")))
    plan = plan_delta(parent, target)
    return base, new, encode_delta(plan, lambda offset, length: new[offset : offset + length])


# --- fixed vectors: they fail if the delta layout or the planner changes ---


def test_small_delta_vector():
    base, new, delta = _hand_made()
    # P2BD v1, base 8, target 10, 3 ops: copy 3+5, insert 2 "xy", copy 0+3
    assert delta.hex() == "5032424401080a0301030502027879010003"
    assert apply_delta_bytes(delta, base) == new


def test_all_literal_delta_vector():
    base = b"hello world, this is the base text"
    assert make_delta(signature_of(base), b"prefix " + base).hex() == (
        "503242440122290102297072656669782068656c6c6f20776f726c642c20746869732069732074686520"
        "626173652074657874"
    )


def test_edited_text_delta_vector():
    new = FIXED[:300_000] + INSERTED + FIXED[300_000:600_000] + FIXED[700_000:]
    delta = make_delta(FIXED_SIGNATURE, new)
    assert hashlib.blake2b(delta, digest_size=32).hexdigest() == (
        "33c5cd2a400c9092a6459ab2f58ee905e5d307987e6a31ca3f788ad6a836bd78"
    )
    ops = parse_delta(delta).ops
    assert [type(op) for op in ops] == [Copy, Literal, Copy, Literal, Copy]
    assert apply_delta_bytes(delta, FIXED) == new


# --- planning ---


def test_the_plan_copies_known_chunks_and_inserts_the_rest():
    plan = plan_delta(
        Signature((3, 5), (_h(b"abc"), _h(b"hello"))),
        Signature((5, 2, 3), (_h(b"hello"), _h(b"xy"), _h(b"abc"))),
    )
    assert plan.ops == (Copy(3, 5), Insert(5, 2), Copy(0, 3))
    assert (plan.base_size, plan.target_size, plan.literal_bytes) == (8, 10, 2)


def test_repeated_chunks_coalesce_into_one_copy():
    zeros = bytes(2 << 20)  # eight identical maximum-size chunks
    plan = plan_delta(signature_of(zeros), signature_of(zeros + zeros[:300_000]))
    assert plan.ops == (Copy(0, len(zeros)), Copy(0, 262_144), Insert(2_359_296, 37_856))


def test_identical_content_is_one_copy():
    plan = plan_delta(FIXED_SIGNATURE, FIXED_SIGNATURE)
    assert plan.ops == (Copy(0, len(FIXED)),)
    delta = make_delta(FIXED_SIGNATURE, FIXED)
    assert len(delta) == plan.encoded_size() < 20


def test_no_parent_means_all_literal():
    plan = plan_delta(Signature((), ()), FIXED_SIGNATURE)
    assert plan.ops == (Insert(0, len(FIXED)),)
    assert plan.literal_bytes == len(FIXED)


def test_small_edits_give_small_deltas():
    original = hashlib.shake_256(b"eight mebibytes").digest(8 << 20)
    parent = signature_of(original)
    mean = parent.size // len(parent.lengths)
    middle = len(original) // 2
    one_byte = original[:middle] + bytes([original[middle] ^ 1]) + original[middle + 1 :]
    assert len(make_delta(parent, one_byte)) <= 2 * mean + 4096
    inserted = make_delta(parent, INSERTED + original)
    assert len(inserted) <= 2 * mean + 4096
    ops = parse_delta(inserted).ops
    assert [type(op) for op in ops] == [Literal, Copy]  # the rest is one copy


# --- round trips ---


def _edit(data: bytes, kind: str, rnd: random.Random) -> bytes:
    at = rnd.randint(0, len(data))
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
        plan = plan_delta(signature_of(text), signature_of(new))
        forward = encode_delta(plan, lambda offset, length, new=new: new[offset : offset + length])
        assert len(forward) == plan.encoded_size()
        assert apply_delta_bytes(forward, text) == new
        reverse = make_delta(signature_of(new), text)  # newer full text back to the older
        assert apply_delta_bytes(reverse, new) == text
        text = new


def test_apply_streams_pieces_from_the_reader():
    base, _, delta = _hand_made()
    reads: list[tuple[int, int]] = []

    def read_base(offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return base[offset : offset + length]

    assert list(apply_delta(delta, read_base, 8)) == [b"hello", b"xy", b"abc"]
    assert reads == [(3, 5), (0, 3)]


# --- refusals ---


def test_a_delta_for_another_base_is_refused_before_any_read():
    delta = make_delta(signature_of(b"a" * 1000), b"a" * 900)
    with pytest.raises(IntegrityError, match="does not apply to this base"):
        apply_delta(delta, lambda offset, length: pytest.fail("read"), 999)


@pytest.mark.parametrize("wrong", [b"x", b"x" * 300_000])
def test_a_base_read_of_the_wrong_size_is_caught(wrong):
    delta = make_delta(signature_of(FIXED[:200_000]), FIXED[:200_000])
    with pytest.raises(IntegrityError, match="delta needs"):
        list(apply_delta(delta, lambda offset, length: wrong, 200_000))


@pytest.mark.parametrize(
    "changed", [lambda data: data[:-1], lambda data: bytes([data[0] ^ 1]) + data[1:]]
)
def test_a_file_that_changed_since_its_signature_is_caught(changed):
    new = FIXED[:100_000] + INSERTED + FIXED[100_000:400_000]
    plan = plan_delta(signature_of(FIXED[:400_000]), signature_of(new))
    with pytest.raises(SourceChangedError, match="changed while"):
        encode_delta(plan, lambda offset, length: changed(new[offset : offset + length]))


@pytest.mark.parametrize(
    ("delta", "message"),
    [
        ("5032424402", "version 2"),
        ("50324244010000010300", "unknown op 3"),
        ("50324244010a01010180", "truncated while reading copy offset"),
        ("50324244010101010102", "copy offset is 2, more than the maximum 1"),
        ("5032424401010301010003", "copy length is 3, more than the maximum 1"),
        ("5032424401000501020561", "truncated while reading inserted bytes"),
        ("50324244010a010101000a", "produces more than the 1 bytes it promises"),
        ("50324244010a0b0101000a", "produces 10 bytes but promises 11"),
        ("5032424401010001020000", "empty op"),
        ("503242440100010102016161", "1 unexpected bytes"),
        ("503242440100000900", "op count is 9, more than the maximum 0"),
    ],
)
def test_bad_deltas_say_what_is_wrong(delta, message):
    with pytest.raises(FormatError, match=message):
        parse_delta(bytes.fromhex(delta))
    with pytest.raises(FormatError, match=message):  # the same checks, bytes left in place
        locate_delta(bytes.fromhex(delta))


# --- large deltas, made and applied a window at a time ---


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([777, 4096, 65_536]),
    st.lists(st.tuples(st.integers(0, len(FIXED)), st.binary(min_size=1, max_size=9000)),
             max_size=5),
)  # fmt: skip
def test_any_window_makes_and_applies_the_same_delta(window, edits):
    new = bytearray(FIXED)
    for at, data in sorted(edits, reverse=True):
        new[at:at] = data
    new = bytes(new)
    plan = plan_delta(FIXED_SIGNATURE, signature_of(new))
    whole = encode_delta(plan, lambda offset, length: new[offset : offset + length])
    old_window = delta_module.WINDOW
    delta_module.WINDOW = window
    try:
        pieces = list(delta_pieces(plan, lambda offset, length: new[offset : offset + length]))
        located = locate_delta(whole)
        out = list(apply_located(
            located, lambda o, n: whole[o : o + n], lambda o, n: FIXED[o : o + n], len(FIXED)
        ))  # fmt: skip
    finally:
        delta_module.WINDOW = old_window
    assert b"".join(pieces) == whole and len(whole) == plan.encoded_size()
    assert b"".join(out) == new
    assert max(len(p) for p in out) <= window  # neither text is read more than a window at once
    inserts = [op for op in located.ops if isinstance(op, Inserted)]
    literals = [op for op in parse_delta(whole).ops if isinstance(op, Literal)]
    assert [whole[op.offset : op.offset + op.length] for op in inserts] == [
        op.data for op in literals
    ]


def test_a_file_changing_under_a_streamed_delta_is_caught_in_any_window():
    new = FIXED[:300_000] + INSERTED * 64 + FIXED[300_000:]
    plan = plan_delta(FIXED_SIGNATURE, signature_of(new))
    changed = new[: 300_000 + 200_000] + b"X" + new[300_000 + 200_001 :]
    with pytest.raises(SourceChangedError):
        for _ in delta_pieces(plan, lambda offset, length: changed[offset : offset + length]):
            pass


def _apply_or_refuse(delta: bytes, base: bytes) -> None:
    """Either a project error, or the target size the delta promises."""
    try:
        out = apply_delta_bytes(delta, base)
    except IntegrityError:
        return
    # A change inside inserted bytes still parses: the record's AEAD catches that.
    assert len(out) == parse_delta(delta).target_size


def test_every_single_byte_corruption_and_truncation_is_handled():
    base, _, delta = _hand_made()
    for position in range(len(delta)):
        for flip in range(1, 256):
            damaged = bytearray(delta)
            damaged[position] ^= flip
            _apply_or_refuse(bytes(damaged), base)
    for size in range(len(delta)):
        with pytest.raises(FormatError):
            parse_delta(delta[:size])


EDITED = FIXED[:300_000] + INSERTED + FIXED[600_000:]
EDITED_DELTA = make_delta(FIXED_SIGNATURE, EDITED)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(EDITED_DELTA) - 1), st.integers(1, 255), st.booleans())
def test_corrupted_or_truncated_real_deltas_raise_only_project_errors(position, flip, cut):
    if cut:
        with pytest.raises(FormatError):
            parse_delta(EDITED_DELTA[:position])
        return
    damaged = bytearray(EDITED_DELTA)
    damaged[position] ^= flip
    _apply_or_refuse(bytes(damaged), FIXED)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_raise_only_project_errors(data, with_header):
    _apply_or_refuse(b"P2BD\x01" + data if with_header else data, b"base text" * 10)
