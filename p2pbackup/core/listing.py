"""A snapshot browsed a folder at a time: one level, in pages, and a search by name.

A manifest holds every path sorted; the ``Tree`` built over it once knows each
folder's children, so a page of one level costs its own length, not the
snapshot's. Pages are cut by count (``limit``) and by size on the wire (a
control message is at most 1 MiB), and continue after a cursor: the snapshot
id and the last name given, so a later page of the same listing never mixes in
another snapshot (``latest`` may have moved on between two pages).
"""

from __future__ import annotations

import base64
import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from p2pbackup.core.manifest import Entry, EntryType, Manifest

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
PAGE_BYTES = 512 << 10  # half a control message: room for the envelope and the escapes


class CursorError(ValueError):
    """A cursor that this listing did not give (or that names another snapshot)."""


@dataclass(frozen=True, slots=True)
class Page:
    items: tuple[Entry, ...]
    total: int  # how many the whole listing holds
    offset: int  # where this page starts in it
    next: str | None  # the cursor of the next page, or None after the last


class Tree:
    """A manifest's folders and their children, indexed once (a pass over its entries)."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        children: dict[str, list[Entry]] = {}
        for entry in manifest.entries:
            children.setdefault(entry.path.rpartition("/")[0], []).append(entry)
        # The entries of one folder follow in path order, which is their names' order.
        self._children = children

    def children(self, path: str) -> Sequence[Entry]:
        """The entries directly in folder ``path`` ("" for the top level), name order."""
        return self._children.get(path, ())

    def child_count(self, entry: Entry) -> int | None:
        return len(self.children(entry.path)) if entry.type is EntryType.DIR else None

    def find(self, pattern: str) -> list[Entry]:
        """Every entry whose base name matches the glob ``pattern``, case-insensitively,
        in path order."""
        match = compile_glob(pattern)
        return [e for e in self.manifest.entries if match(base_name(e.path))]


def base_name(path: str) -> str:
    return path.rpartition("/")[2]


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A glob (``*``, ``?``, ``[abc]``) over a whole name, case folded on both sides; a
    pattern with no wildcard matches names that contain it."""
    folded = pattern.casefold()
    if not any(c in folded for c in "*?["):
        folded = f"*{folded}*"
    regex = re.compile(fnmatch.translate(folded), re.DOTALL)
    return lambda name: regex.match(name.casefold()) is not None


def page(
    items: Sequence[Entry],
    snapshot_id: str,
    *,
    offset: int | None = None,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
    size: Callable[[Entry], int],
) -> Page:
    """The page of ``items`` (sorted by path) from ``offset`` or just after the cursor
    ``after``: at most ``limit`` items and ``PAGE_BYTES`` by ``size``, one at least."""
    if not (offset is None or type(offset) is int) or type(limit) is not int:
        raise CursorError("an offset and a limit are whole numbers")
    if not (after is None or isinstance(after, str)):
        raise CursorError("a cursor is the text a page gave as 'next'")
    if offset is not None and after is not None:
        raise CursorError("give an offset or a cursor, not both")
    if not 1 <= limit <= MAX_LIMIT:
        raise CursorError(f"a page holds 1 to {MAX_LIMIT} entries, not {limit}")
    start = offset or 0
    if after is not None:
        start = _bisect_after(items, read_cursor(after, snapshot_id))
    if start < 0:
        raise CursorError(f"an offset is 0 or more, not {start}")
    end, used = start, 0
    while end < len(items) and end - start < limit:
        used += size(items[end])
        if used > PAGE_BYTES and end > start:
            break
        end += 1
    chunk = tuple(items[start:end])
    cursor = make_cursor(snapshot_id, chunk[-1].path) if end < len(items) else None
    return Page(chunk, len(items), start, cursor)


def _bisect_after(items: Sequence[Entry], path: str) -> int:
    low, high = 0, len(items)
    while low < high:
        middle = (low + high) // 2
        if items[middle].path <= path:
            low = middle + 1
        else:
            high = middle
    return low


def make_cursor(snapshot_id: str, path: str) -> str:
    """Opaque to clients: the snapshot id and the last path given, ASCII only."""
    encoded = base64.urlsafe_b64encode(path.encode("utf-8", "surrogateescape")).decode()
    return f"{snapshot_id}.{encoded}"


def read_cursor(cursor: str, snapshot_id: str) -> str:
    """The last path a cursor names; CursorError if it is not one, or names another
    snapshot than ``snapshot_id``."""
    sid, dot, encoded = cursor.partition(".")
    if not dot:
        raise CursorError("that is not a cursor this listing gave")
    if sid != snapshot_id:
        raise CursorError(f"that cursor continues snapshot {sid[:12]}, not {snapshot_id[:12]}")
    try:
        raw = base64.b64decode(encoded.encode("ascii"), altchars=b"-_", validate=True)
        return raw.decode("utf-8", "surrogateescape")
    except (ValueError, UnicodeError):
        raise CursorError("that is not a cursor this listing gave") from None


def wire_size(*texts: str) -> int:
    """An upper bound of the bytes ``texts`` take in an ASCII JSON line, plus the rest of
    an entry: a character that is not ASCII is at most 12 bytes (a surrogate pair)."""
    return 200 + sum(len(t) if t.isascii() else 12 * len(t) for t in texts)
