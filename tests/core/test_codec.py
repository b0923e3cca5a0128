"""The codec: varints against a reference decoder, round trips, and only FormatError out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core.codec import Reader, Writer, unzigzag, zigzag
from p2pbackup.errors import FormatError


def _reference_varint(data: bytes) -> tuple[int, int] | None:
    """Unsigned LEB128, minimal, at most 10 bytes: (value, length) or None if invalid."""
    value = 0
    for i, byte in enumerate(data[:10]):
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return None if byte == 0 and i else (value, i + 1)
    return None


@settings(max_examples=500)
@given(st.binary(max_size=12), st.integers(0, 2**64))
def test_varint_agrees_with_a_reference_decoder(data, maximum):
    expected = _reference_varint(data)
    r = Reader(data, "x")
    if expected is None or expected[0] > maximum:
        with pytest.raises(FormatError):
            r.varint("v", maximum)
    else:
        assert r.varint("v", maximum) == expected[0]
        assert r.pos == expected[1]


@given(
    st.integers(0, 2**64 - 1),
    st.binary(max_size=50),
    st.text(max_size=20),
    st.integers(-(2**63), 2**63 - 1),
)
def test_round_trip(number, blob, text, signed):
    data = Writer().u8(7).u16(513).u32(70000).u64(number).varint(number).blob(blob).text(text)
    data = data.varint(zigzag(signed)).getvalue()
    r = Reader(memoryview(data), "x")
    assert (r.u8("a"), r.u16("b"), r.u32("c"), r.u64("d"), r.varint("e")) == (
        7,
        513,
        70000,
        number,
        number,
    )
    assert (r.blob("f", 100), r.text("g", 100), unzigzag(r.varint("h"))) == (blob, text, signed)
    r.end()


def test_errors_name_what_was_read():
    with pytest.raises(FormatError, match="thing: truncated while reading size"):
        Reader(b"\x01", "thing").u16("size")
    with pytest.raises(FormatError, match="not a thing"):
        Reader(b"XXXX", "thing").magic(b"P2BX")
    with pytest.raises(FormatError, match="version 9 is not supported"):
        Reader(b"\x09", "thing").version(1)
    with pytest.raises(FormatError, match="not valid UTF-8"):
        Reader(b"\x01\xff", "thing").text("name", 10)
    with pytest.raises(FormatError, match="2 unexpected bytes"):
        Reader(b"ab", "thing").end()


def test_rest_view_is_the_rest_without_a_copy():
    data = b"\x05hello world"
    r = Reader(data, "t")
    assert r.u8("n") == 5
    view = r.rest_view()
    assert view == b"hello world" and view.obj is data  # the caller's bytes, not a copy
    assert r.remaining() == 0
    r.end()
