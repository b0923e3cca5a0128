"""Where a record's n shares go: spread over friends, within their quotas.

The safety rule (servers of happiness): losing any ``survive`` friends must
leave at least k shares. With at most m = (n - k) // survive shares on any one
friend, any ``survive`` friends hold at most n - k shares. Shares are spread
first (every friend one share before anyone gets a second), to the friends
with the most room.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from p2pbackup.errors import ConfigError, PlacementError

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """``500M``, ``20G``, ``1T``, ``1.5G``, ``100k`` or a plain byte count (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise ConfigError(f"{text!r} is not a size; write it like 500M, 20G or 1T.")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_size(size: float) -> str:
    """Binary units, as ``parse_size`` reads them: 1G is 1.0 GiB."""
    if abs(size) < 1024:
        return f"{size:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class FriendRoom:
    friend_id: str
    free: int


def _worst_loss(held: Counter[str], survive: int) -> int:
    """Shares lost if the ``survive`` friends holding the most disappear."""
    return sum(count for _, count in held.most_common(survive))


def place(
    k: int,
    n: int,
    share_size: int,
    friends: Sequence[FriendRoom],
    survive: int = 1,
    existing: Mapping[int, str] | None = None,
) -> dict[int, str]:
    """Share index -> friend for every share not in ``existing`` (which stays put)."""
    existing = dict(existing or {})
    if n - k < survive:
        raise PlacementError(
            f"With {k} of {n} shares needed, losing {survive} friend(s) could lose data: "
            "choose more shares (n) or fewer needed (k)."
        )
    held = Counter(existing.values())
    room = {f.friend_id: f.free for f in friends}
    placed: dict[int, str] = {}
    for index in (i for i in range(n) if i not in existing):
        best = None
        for friend, free in room.items():
            if free < share_size:
                continue
            held[friend] += 1
            key = (_worst_loss(held, survive), held[friend], -free, friend)
            held[friend] -= 1
            if key[0] <= n - k and (best is None or key < best[0]):
                best = (key, friend)
        if best is None:
            usable = sum(1 for f in friends if f.free >= share_size)
            raise PlacementError(
                f"Only {usable} friend(s) have room for {format_size(share_size)} more; keeping "
                f"your data safe if {survive} friend(s) disappear needs more friends with room "
                f"({k} of {n} shares are needed to rebuild). Ask a friend for more space or "
                "invite another friend."
            )
        friend = best[1]
        placed[index] = friend
        held[friend] += 1
        room[friend] -= share_size
    return placed


def tolerable_losses(assignment: Mapping[int, str], k: int) -> int:
    """How many friends could disappear (the worst ones) with the record still rebuildable."""
    counts = sorted(Counter(assignment.values()).values(), reverse=True)
    spare, lost = len(assignment) - k, 0
    for count in counts:
        if count > spare:
            break
        spare -= count
        lost += 1
    return lost if len(assignment) >= k else 0
