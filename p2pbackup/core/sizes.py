"""Sizes as people type and read them: ``500M``, ``20G``, ``1.2 MiB``.

Apart from placement, which used to hold them, so a command that only prints a
size does not import the placement arithmetic."""

from __future__ import annotations

import re
from fractions import Fraction

from p2pbackup.errors import ConfigError

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_SIZE = re.compile(r"\s*(\d{1,30}(?:\.\d{1,30})?|\.\d{1,30})\s*(?:([kmgtp])(?:i?b)?|b)?\s*")


def parse_size(text: str) -> int:
    """Bytes in ``500M``, ``20G``, ``1T``, ``1.5G``, ``100k``, ``2 GiB`` or ``100``.

    Units are binary (K = 1024), case-insensitive, with an optional ``B`` or
    ``iB``; a fraction of a byte is dropped.
    """
    match = _SIZE.fullmatch(text.lower())
    if not match:
        raise ConfigError(f"{text!r} is not a size; write it like 500M, 20G, 1.5T or 100000.")
    return int(Fraction(match.group(1)) * _UNITS[match.group(2) or ""])


def format_size(size: int) -> str:
    """``999 bytes``, ``1.2 MiB``, ``20.0 GiB``: the units ``parse_size`` reads."""
    if abs(size) < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if round(abs(value), 1) < 1024:  # so 1023.99 KiB shows as 1.0 MiB, not 1024.0 KiB
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} PiB"
