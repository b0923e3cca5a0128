"""Erasure-coded shares: any k rebuild, bad shares are caught and skipped."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core import erasure
from p2pbackup.core.erasure import (
    BLOCK_SIZE,
    HEADER_SIZE,
    TRAILER_SIZE,
    SegmentDecoder,
    ShareEncoder,
    decode,
    encode,
    parse_share,
    segment_layout,
    share_size,
    verify_share,
)
from p2pbackup.errors import FormatError, IntegrityError, P2PBackupError

RID = bytes(32)
ALPHABET = b"abcdefghij" * 5


def _random(size: int) -> bytes:
    return hashlib.shake_256(b"erasure").digest(size)


def _flip(share: bytes, bit: int) -> bytes:
    damaged = bytearray(share)
    damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


@st.composite
def _codes(draw, max_size: int = 400):
    n = draw(st.integers(1, 8))
    k = draw(st.integers(1, n))
    block_size = draw(st.integers(1, 16))
    data = draw(st.binary(max_size=max_size))
    return k, n, block_size, data


# --- fixed vectors ---


def test_share_vector():
    """Version 3, written now: the trailer's hash is the root of the share's SHA-256
    block tree (core/merkle.py)."""
    descriptor, shares = encode(RID, ALPHABET, k=3, n=5)
    assert shares[0].hex() == (
        "50324253030305000004000000000000000000000000000000000000000000000000000000000000"
        "000000006162636465666768696a616263646566670000000000000032c94616a8d37bc14cef4f0e"
        "941108e531c8714bb71dd80d689f8f0a9ca75b76d5"
    )
    assert [h.hex() for h in descriptor.share_hashes] == [
        "c94616a8d37bc14cef4f0e941108e531c8714bb71dd80d689f8f0a9ca75b76d5",
        "96e7f16ff73a5a4cc95d104a7765c4aa08bb7bdec2367d6847ed29b100734fd2",
        "b3918879559fcddf99a10e24853d8f80136390653ad60063767c38feb4c83864",
        "c4f16a389156ad3cc3e64fdc99b18cb42ac7e15b52eca14fc52ece798219ae07",
        "78ccbae6f6c462a64929aac8bffd0b5067d9dac96e32b3727073dc2f502b23d9",
    ]
    for index, share in enumerate(shares):
        verify_share(descriptor, index, share)


def test_share_vector_version2():
    """Version 2, written for friends that do not read version 3: the root of a BLAKE2b
    block tree."""
    descriptor, shares = encode(RID, ALPHABET, k=3, n=5, version=erasure.TREE_VERSION)
    assert shares[0].hex() == (
        "50324253020305000004000000000000000000000000000000000000000000000000000000000000"
        "000000006162636465666768696a616263646566670000000000000032e2c196bb0e8c07be5850e1"
        "dd2cae7393f1804e59ccb37031977822dc01d80cc9"
    )
    assert [h.hex() for h in descriptor.share_hashes] == [
        "e2c196bb0e8c07be5850e1dd2cae7393f1804e59ccb37031977822dc01d80cc9",
        "c11b8693f211b99e1012b419505f49826d11dc272061d7cb530c326d298f91a1",
        "f8c5f21894799f2d0cece8ffd2faa37a6865140bf1c21d8a28e09cf59d7e9c2b",
        "1ead65431fc65a7a60aa4dac46e1531badfed3fe7fad4f7f5b7d2165c8e9b65b",
        "3728a2ed5de78fe67f1a2c89af74f5d2cd86affbb0b7e1f0a4f440f358eb9282",
    ]
    for index, share in enumerate(shares):
        verify_share(descriptor, index, share)


def test_share_vector_version1():
    """Version 1 (a flat hash), as records stored before block trees have it: still read,
    and written again byte for byte when such a record is repaired."""
    descriptor, shares = encode(RID, ALPHABET, k=3, n=5, version=erasure.FLAT_VERSION)
    verify_share(descriptor, 0, shares[0])
    assert shares[0].hex() == (
        "50324253010305000004000000000000000000000000000000000000000000000000000000000000"
        "000000006162636465666768696a616263646566670000000000000032283221587d7c9c7fa98f02"
        "d7ab11ae60e39d30f4fdc3a25fd37f508cca248043"
    )
    assert [h.hex() for h in descriptor.share_hashes] == [
        "283221587d7c9c7fa98f02d7ab11ae60e39d30f4fdc3a25fd37f508cca248043",
        "312bbccbc5bcd0a463eae798ff618eb4c59095deed5323cd36736ab882904566",
        "36b7e46403c9e68f8e54ce91831ced1ec879f603c85c98358f2e810d84b06c48",
        "54040b7707062f2252e2c82d3fd2a7dbbf99eb4a4934aa0d4e755e175634f1ed",
        "94bafff13159a37451a8f3e51f3d5b2102da19f135a1e75150a37b4d387a0d83",
    ]
    assert (descriptor.record_id, descriptor.k, descriptor.n, descriptor.length) == (RID, 3, 5, 50)


@settings(max_examples=30, deadline=None)
@given(code=_codes(), versions=st.data())
def test_shares_of_any_versions_rebuild_and_with_version_converts_them(code, versions):
    """The versions differ in the trailing hash alone: a record's shares may be of mixed
    versions (a friend kept one written earlier), and ``with_version`` turns any share
    into the one that encoding at that version gives."""
    k, n, block_size, data = code
    mix = versions.draw(st.lists(st.sampled_from(erasure.VERSIONS), min_size=n, max_size=n))
    descriptor, shares = encode(RID, data, k, n, block_size=block_size, version=mix)
    assert [share[4] for share in shares] == mix
    assert decode(descriptor, dict(enumerate(shares))) == data
    for version in erasure.VERSIONS:
        same, expected = encode(RID, data, k, n, block_size=block_size, version=version)
        for index, share in enumerate(shares):
            converted = erasure.with_version(share, version)
            assert converted == expected[index]
            assert parse_share(converted).hash == same.share_hashes[index]


def test_with_version_refuses_what_is_not_a_share():
    with pytest.raises(FormatError):
        erasure.with_version(b"X" * 200, 3)
    with pytest.raises(ValueError):
        erasure.with_version(encode(RID, b"abc", 1, 2)[1][0], 4)


# --- rebuilding ---


@settings(max_examples=50, deadline=None)
@given(_codes())
def test_any_k_shares_rebuild(code):
    k, n, block_size, data = code
    descriptor, shares = encode(RID, data, k, n, block_size)
    assert all(len(s) == share_size(len(data), k, block_size) for s in shares)
    for subset in itertools.combinations(range(n), k):  # parity-only subsets included
        assert decode(descriptor, {i: shares[i] for i in subset}) == data


def test_default_block_size_spanning_segments():
    data = _random(3 * 2 * BLOCK_SIZE + 5)
    descriptor, shares = encode(RID, data, k=2, n=3)
    assert len(segment_layout(len(data), 2, BLOCK_SIZE)) == 4
    assert len(shares[0]) == HEADER_SIZE + 3 * BLOCK_SIZE + 3 + TRAILER_SIZE
    for subset in itertools.combinations(range(3), 2):
        assert decode(descriptor, {i: shares[i] for i in subset}) == data


def test_empty_record_has_no_segments():
    descriptor, shares = encode(RID, b"", k=2, n=4)
    assert [len(s) for s in shares] == [HEADER_SIZE + TRAILER_SIZE] * 4
    assert segment_layout(0, 2, BLOCK_SIZE) == []
    assert decode(descriptor, {2: shares[2], 3: shares[3]}) == b""


def test_layout_and_size():
    # 3 full segments of 3 x 4 bytes, then 5 bytes in blocks of 2 (one pad byte).
    assert segment_layout(41, 3, 4) == [(0, 4, 12), (4, 4, 12), (8, 4, 12), (12, 2, 5)]
    assert share_size(41, 3, 4) == HEADER_SIZE + 14 + TRAILER_SIZE
    assert share_size(10**12, 3) == HEADER_SIZE + -(-(10**12) // 3) + TRAILER_SIZE


@settings(max_examples=40, deadline=None)
@given(code=_codes(), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_streaming_encoder_equals_encode(code, cuts):
    k, n, block_size, data = code
    encoder = ShareEncoder(RID, k, n, block_size)
    out = [b""] * n
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    for start, end in itertools.pairwise(bounds):
        out = [a + b for a, b in zip(out, encoder.feed(memoryview(data)[start:end]), strict=True)]
    out = [a + b for a, b in zip(out, encoder.finish(), strict=True)]
    assert (encoder.descriptor, out) == encode(RID, data, k, n, block_size)


@settings(max_examples=40, deadline=None)
@given(code=_codes(), data=st.data())
def test_segment_decoder_streams(code, data):
    k, n, block_size, record = code
    descriptor, shares = encode(RID, record, k, n, block_size)
    indexes = data.draw(st.permutations(range(n)))[:k]
    decoder = SegmentDecoder(descriptor, indexes, block_size)
    out = b""
    for offset, block, _ in segment_layout(len(record), k, block_size):
        start = HEADER_SIZE + offset
        out += decoder.decode([shares[i][start : start + block] for i in indexes])
    assert out == record
    with pytest.raises(ValueError):
        decoder.decode([b""] * k)


def test_segment_decoder_rejects_wrong_blocks():
    descriptor, _ = encode(RID, ALPHABET, 3, 5)
    decoder = SegmentDecoder(descriptor, (0, 3, 4))
    with pytest.raises(FormatError, match="needs 3 blocks of 17 bytes"):
        decoder.decode([bytes(17), bytes(17), bytes(16)])
    with pytest.raises(ValueError):
        SegmentDecoder(descriptor, (0, 0, 1))
    with pytest.raises(ValueError):
        SegmentDecoder(descriptor, (0, 1, 5))


# --- bad shares ---


@settings(max_examples=60, deadline=None)
@given(code=_codes(max_size=120), data=st.data())
def test_a_flipped_bit_is_caught_and_skipped(code, data):
    k, n, block_size, record = code
    descriptor, shares = encode(RID, record, k, n, block_size)
    index = data.draw(st.integers(0, n - 1))
    bit = data.draw(st.integers(0, len(shares[index]) * 8 - 1))
    damaged = _flip(shares[index], bit)
    with pytest.raises(IntegrityError):
        parse_share(damaged)
    with pytest.raises(IntegrityError, match=f"share {index} of record"):
        verify_share(descriptor, index, damaged)
    offered = dict(enumerate(shares)) | {index: damaged}
    if n > k:
        assert decode(descriptor, offered) == record
    else:
        with pytest.raises(IntegrityError, match=f"bad shares \\[{index}\\]"):
            decode(descriptor, offered)


def test_too_few_good_shares_names_the_bad_ones():
    descriptor, shares = encode(RID, ALPHABET, 3, 5)
    offered = {0: _flip(shares[0], 400), 2: shares[2], 3: shares[3], 4: shares[4][:-1]}
    with pytest.raises(IntegrityError) as caught:
        decode(descriptor, offered)
    message = caught.value.message
    assert "2 of the 4 shares offered are good and 3 are needed" in message
    assert "bad shares [0, 4]" in message
    assert "000000000000" in message


def test_a_share_offered_under_another_index_is_rejected():
    descriptor, shares = encode(RID, ALPHABET, 3, 5)
    with pytest.raises(IntegrityError, match="share 1 of record"):
        verify_share(descriptor, 1, shares[0])
    with pytest.raises(IntegrityError, match="does not exist"):
        verify_share(descriptor, 7, shares[0])
    with pytest.raises(IntegrityError):
        decode(descriptor, {1: shares[0], 2: shares[2], 3: shares[3]})
    assert decode(descriptor, {1: shares[0], 2: shares[2], 3: shares[3], 4: shares[4]}) == ALPHABET


def test_a_share_of_another_encoding_is_rejected():
    descriptor, _ = encode(RID, ALPHABET, 3, 5)
    _, other = encode(RID, ALPHABET, 3, 5, block_size=4)
    with pytest.raises(IntegrityError, match="not the share that was stored"):
        verify_share(descriptor, 0, other[0])


def test_parse_share_reports_the_header():
    descriptor, shares = encode(b"\x07" * 32, _random(1000), 2, 4, block_size=100)
    info = parse_share(shares[3])
    assert info == erasure.ShareInfo(2, 4, 3, 100, b"\x07" * 32, 1000, descriptor.share_hashes[3])


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, b"X", "not a share"),
        (4, b"\x04", "format version 4 is not supported"),
        (5, b"\x00", "impossible k=0"),
        (6, b"\x02", "impossible k=3 n=2"),
        (7, b"\x05", "share index 5 is not below n=5"),
        (8, b"\x02", "block size 33554436 is outside"),
        (61, b"\x01", "impossibly large"),
        (68, b"\x40", "has 101 bytes, expected 106"),
    ],
)
def test_header_and_trailer_problems_are_format_errors(offset, value, message):
    _, shares = encode(RID, ALPHABET, 3, 5, block_size=4)
    damaged = shares[0][:offset] + value + shares[0][offset + 1 :]
    with pytest.raises(FormatError, match=message):
        parse_share(damaged)


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=200), cut=st.integers(0, 100))
def test_garbage_and_truncations_raise_only_project_errors(garbage, cut):
    descriptor, shares = encode(RID, ALPHABET, 3, 5, block_size=4)
    for candidate in (garbage, shares[1][:cut], shares[1][:44] + garbage):
        with pytest.raises(P2PBackupError):
            parse_share(candidate)
        with pytest.raises(P2PBackupError):
            verify_share(descriptor, 1, candidate)


# --- misuse ---


def test_bad_parameters_are_refused():
    for k, n, block_size in ((0, 1, 1), (3, 2, 1), (1, 256, 1), (1, 1, 0), (1, 1, 2**24 + 1)):
        with pytest.raises(ValueError):
            ShareEncoder(RID, k, n, block_size)
    with pytest.raises(ValueError):
        ShareEncoder(b"short", 1, 1)
    encoder = ShareEncoder(RID, 1, 2)
    encoder.finish()
    with pytest.raises(ValueError):
        encoder.feed(b"late")
    assert encoder.descriptor is not None and encoder.descriptor.length == 0


def test_decode_verified_rebuilds_from_exactly_k_checked_shares():
    data = bytes(range(256)) * 3000
    descriptor, shares = erasure.encode(b"\x09" * 32, data, 3, 5)
    chosen = {i: shares[i] for i in (1, 3, 4)}
    for index, share in chosen.items():
        erasure.verify_share(descriptor, index, share)
    assert erasure.decode_verified(descriptor, chosen) == data
    with pytest.raises(ValueError):
        erasure.decode_verified(descriptor, {1: shares[1]})
