"""Bounds-checked binary encoding shared by every format in the core.

All integers are big-endian. A ``varint`` is unsigned LEB128, at most 10
bytes, minimal form only (so every value has exactly one encoding and a
signature or hash over the bytes means one thing). ``blob`` is a varint length
followed by that many bytes.

``Reader`` never raises anything but ``FormatError``: a truncated, oversized
or garbled input becomes a message naming what was being read, never a
``struct.error`` or ``IndexError`` escaping a parser.
"""

from __future__ import annotations

import struct

from p2pbackup.errors import FormatError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def zigzag(value: int) -> int:
    """A signed integer as an unsigned one for a varint: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ..."""
    return value * 2 if value >= 0 else -value * 2 - 1


def unzigzag(value: int) -> int:
    return value >> 1 if not value & 1 else -(value >> 1) - 1


class Writer:
    """Appends encoded values to one growing buffer."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    def u8(self, value: int) -> Writer:
        self._buf.append(value)
        return self

    def u16(self, value: int) -> Writer:
        self._buf += _U16.pack(value)
        return self

    def u32(self, value: int) -> Writer:
        self._buf += _U32.pack(value)
        return self

    def u64(self, value: int) -> Writer:
        self._buf += _U64.pack(value)
        return self

    def varint(self, value: int) -> Writer:
        if value < 0:
            raise ValueError("varint must be non-negative")
        while value >= 0x80:
            self._buf.append((value & 0x7F) | 0x80)
            value >>= 7
        self._buf.append(value)
        return self

    def raw(self, data: bytes | bytearray | memoryview) -> Writer:
        self._buf += data
        return self

    def blob(self, data: bytes | bytearray | memoryview) -> Writer:
        self.varint(len(data))
        self._buf += data
        return self

    def text(self, value: str) -> Writer:
        return self.blob(value.encode("utf-8"))

    def getvalue(self) -> bytes:
        return bytes(self._buf)


class Reader:
    """Reads encoded values from bytes, checking every bound.

    ``what`` names the structure being parsed, so errors read like
    "manifest: truncated while reading entry path".
    """

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes | bytearray | memoryview, what: str) -> None:
        self._data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self._pos = 0
        self._what = what

    @property
    def pos(self) -> int:
        return self._pos

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def fail(self, problem: str) -> FormatError:
        return FormatError(f"{self._what}: {problem}")

    def _take(self, size: int, field: str) -> bytes:
        end = self._pos + size
        if size < 0 or end > len(self._data):
            raise self.fail(f"truncated while reading {field}")
        chunk = bytes(self._data[self._pos : end])
        self._pos = end
        return chunk

    def skip(self, size: int, field: str) -> int:
        """Pass over ``size`` bytes without copying them; return where they start."""
        start, end = self._pos, self._pos + size
        if size < 0 or end > len(self._data):
            raise self.fail(f"truncated while reading {field}")
        self._pos = end
        return start

    def u8(self, field: str) -> int:
        pos = self._pos
        if pos >= len(self._data):
            raise self.fail(f"truncated while reading {field}")
        self._pos = pos + 1
        return self._data[pos]

    def u16(self, field: str) -> int:
        return _U16.unpack(self._take(2, field))[0]

    def u32(self, field: str) -> int:
        return _U32.unpack(self._take(4, field))[0]

    def u64(self, field: str) -> int:
        return _U64.unpack(self._take(8, field))[0]

    def varint(self, field: str, maximum: int = 2**64 - 1) -> int:
        # Read straight from the buffer: manifests hold ~10 varints per entry and a
        # home folder has 100,000 entries; the per-byte path took ~2 s to decode one.
        data, pos = self._data, self._pos
        size = len(data)
        value = shift = 0
        while pos < size:
            byte = data[pos]
            pos += 1
            if byte < 0x80:
                if byte == 0 and shift:
                    raise self.fail(f"{field} is not minimally encoded")
                value |= byte << shift
                if value > maximum:
                    raise self.fail(f"{field} is {value}, more than the maximum {maximum}")
                self._pos = pos
                return value
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift == 70:
                raise self.fail(f"{field} is longer than 10 bytes")
        raise self.fail(f"truncated while reading {field}")

    def raw(self, size: int, field: str) -> bytes:
        return self._take(size, field)

    def blob(self, field: str, maximum: int) -> bytes:
        return self._take(self.varint(f"length of {field}", maximum), field)

    def text(self, field: str, maximum: int) -> str:
        data = self.blob(field, maximum)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{field} is not valid UTF-8") from None

    def magic(self, expected: bytes) -> None:
        found = self._take(len(expected), "magic")
        if found != expected:
            raise self.fail(f"not a {self._what} (magic {found!r}, expected {expected!r})")

    def version(self, supported: int) -> int:
        version = self.u8("version")
        if version != supported:
            raise self.fail(
                f"format version {version} is not supported (this program reads version "
                f"{supported}); a newer p2pbackup may be needed"
            )
        return version

    def rest(self) -> bytes:
        return self._take(self.remaining(), "rest")

    def rest_view(self) -> memoryview:
        """The rest without a copy: a large body (a share) handed on as it is."""
        view = memoryview(self._data)[self._pos :]
        self._pos = len(self._data)
        return view

    def end(self) -> None:
        if self._pos != len(self._data):
            raise self.fail(f"{len(self._data) - self._pos} unexpected bytes at the end")
