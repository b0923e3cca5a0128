"""File names shown to people and written to JSON, without losing a byte.

A snapshot path is a ``str`` whose UTF-8 encoding with ``surrogateescape`` is
the bytes of the name on disk: a byte that is not valid UTF-8 (``\\xff``) is
held as a lone surrogate (``"\\udcff"``). Such a str cannot be printed to a
UTF-8 terminal, and JSON allows a lone surrogate only as an escape that
strict parsers (Go, Rust's serde_json) reject and jq replaces with U+FFFD.

So, for people, ``shown`` escapes it; for ``--json``, ``to_json`` gives
every name field ``X`` a sibling ``X_b64`` holding the exact bytes whenever
some name in ``X`` is not valid UTF-8 (docs/format.md, "Names in --json
output"; borg 2 does the same).
"""

from __future__ import annotations

import base64

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_text(name: str) -> bool:
    """Whether the name's bytes are valid UTF-8 (the str holds no escaped byte)."""
    return name.isascii() or not any("\udc80" <= c <= "\udcff" for c in name)


def raw(name: str) -> bytes:
    """The name's bytes on disk."""
    return name.encode("utf-8", "surrogateescape")


def shown(name: str) -> str:
    """One line that names it without doubt: a byte that is not UTF-8 as ``\\xNN``, control
    characters escaped (a newline in a name cannot forge a line), backslash doubled."""
    if name.isprintable() and "\\" not in name:
        return name
    return "".join(_shown_char(c) for c in name)


def _shown_char(c: str) -> str:
    if c in _ESCAPES:
        return _ESCAPES[c]
    if "\udc80" <= c <= "\udcff":
        return f"\\x{ord(c) - 0xDC00:02x}"
    if c.isprintable():
        return c
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def to_json(data: dict, key: str) -> None:
    """Make ``data[key]`` (a name, or a list of names) safe for strict JSON, in place.

    Valid UTF-8 names stay as they are. If any is not, it is replaced by ``shown`` and
    ``data[key + "_b64"]`` holds base64 of its bytes (for a list: a list of the same
    length, ``None`` where the name is valid UTF-8)."""
    value = data.get(key)
    if isinstance(value, str):
        if not is_text(value):
            data[key], data[key + "_b64"] = shown(value), _b64(value)
    elif isinstance(value, list) and not all(is_text(v) for v in value):
        data[key + "_b64"] = [None if is_text(v) else _b64(v) for v in value]
        data[key] = [v if is_text(v) else shown(v) for v in value]


def from_json(data: dict, key: str) -> str | list[str]:
    """The names ``to_json`` wrote, exactly (for scripts and tests)."""
    value, exact = data[key], data.get(key + "_b64")
    if exact is None:
        return value
    if isinstance(value, str):
        return _from_b64(exact)
    return [v if e is None else _from_b64(e) for v, e in zip(value, exact, strict=True)]


def _b64(name: str) -> str:
    return base64.b64encode(raw(name)).decode("ascii")


def _from_b64(text: str) -> str:
    return base64.b64decode(text, validate=True).decode("utf-8", "surrogateescape")
