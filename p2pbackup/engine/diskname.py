"""Names between the operating system and a snapshot.

A snapshot path is the bytes of the name on disk, held as a ``str`` that is
UTF-8 with ``surrogateescape`` (core/manifest.py). Python hands the ``os``
functions' names over in the file system's encoding instead: UTF-8 almost
everywhere, but ASCII under ``LC_ALL=C`` without UTF-8 mode (where "é" comes
as ``"\\udcc3\\udca9"``), a legacy locale's code page, or UTF-16 with lone
surrogates on Windows. These two functions cross that edge, so the bytes a
snapshot keeps are the bytes the file system gave, whatever the locale.
"""

from __future__ import annotations

import codecs
import os
import sys

# Where the file system's encoding is already UTF-8 with surrogateescape, both are identity.
_SAME = (
    codecs.lookup(sys.getfilesystemencoding()).name == "utf-8"
    and sys.getfilesystemencodeerrors() == "surrogateescape"
)


def from_disk(name: str) -> str:
    """A name as ``os`` gave it, as a snapshot name (the same bytes)."""
    if _SAME or name.isascii():
        return name
    return os.fsencode(name).decode("utf-8", "surrogateescape")


def to_disk(name: str) -> str:
    """A snapshot name, as the ``os`` functions take it (the same bytes)."""
    if _SAME or name.isascii():
        return name
    return os.fsdecode(name.encode("utf-8", "surrogateescape"))
