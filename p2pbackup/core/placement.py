"""Where a record's n shares go: spread over friends, within their quotas.

The safety rule (servers of happiness): losing any ``survive`` friends must
leave at least k shares, so the ``survive`` friends holding the most shares
hold at most n - k between them. When every friend can take as many as it
likes, that means at most m = (n - k) // survive shares each; with uneven
room, one friend may take more when others take fewer.

Shares are placed one at a time on the friend that holds the fewest so far
(so every friend gets one before anyone gets a second), the one with the
most room left on a tie. Filling the lowest first gives the most even
spread the rooms allow, which keeps the largest holders as small as
possible: if it breaks the rule, every placement does.

Sizes for people are binary: ``20G`` is 20 GiB and is shown as "20.0 GiB"
(what people type and what they read back agree).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from p2pbackup.core.refs import MAX_SHARES
from p2pbackup.core.sizes import format_size
from p2pbackup.errors import ConfigError, PlacementError


def _friends(count: int) -> str:
    return f"{count} friend" if count == 1 else f"{count} friends"


@dataclass(frozen=True)
class FriendRoom:
    """A friend and how many more bytes they let me store."""

    friend_id: str
    free: int


def _check(k: int, n: int, survive: int) -> None:
    if not 1 <= k <= n <= MAX_SHARES:
        raise ConfigError(
            f"Shares must satisfy 1 <= needed <= made <= {MAX_SHARES}; got {k} of {n}."
        )
    if survive < 0:
        raise ConfigError("Choose how many friends to survive losing: 0 or more.")
    # survive 0: shares that need only fit, on the friends online now, while the others
    # are away (spread again by a repair once they are back).
    if survive and (n - k) // survive == 0:
        every = "every share is needed" if k == n else f"only {n - k} of them may be lost"
        raise PlacementError(
            f"With {k} of {n} shares needed to rebuild, {every}, so losing "
            f"{_friends(survive)} could lose data. Make more shares or need fewer "
            f"(for example {max(k, 2)} of {max(k, 2) + 2 * survive})."
        )


def _worst_loss(held: Counter[str], survive: int) -> int:
    """Shares lost if the ``survive`` friends holding the most disappear."""
    return sum(count for _, count in held.most_common(survive))


def friends_needed(k: int, n: int, survive: int) -> int:
    """The fewest friends that can hold n shares safely, given all the room they want."""
    for count in range(survive + 1, n):
        even = [n // count + (i < n % count) for i in range(count)]
        if sum(even[:survive]) <= n - k:
            return count
    return n  # one share each


def place(
    k: int,
    n: int,
    share_size: int,
    friends: Sequence[FriendRoom],
    survive: int = 1,
    existing: Mapping[int, str] | None = None,
) -> dict[int, str]:
    """Share index -> friend for every share of 0..n-1 not in ``existing``.

    ``existing`` shares (a repair) stay where they are and count toward their
    friend's total. Raises PlacementError, saying what to do, when no
    placement keeps the record safe within the friends' room.
    """
    _check(k, n, survive)
    existing = dict(existing or {})
    if any(not 0 <= index < n for index in existing):
        raise ValueError("existing share indexes must be in 0..n-1")
    room = {f.friend_id: f.free for f in friends}
    if len(room) != len(friends):
        raise ValueError("each friend may appear only once")
    held = Counter(existing.values())
    if _worst_loss(held, survive) > n - k:
        raise PlacementError(
            f"The shares already stored are on too few friends to survive losing "
            f"{_friends(survive)}; store this record again from the start."
        )
    placed: dict[int, str] = {}
    for index in (i for i in range(n) if i not in existing):
        with_room = [f for f, free in room.items() if free >= share_size]
        if not with_room:
            break
        friend = min(with_room, key=lambda f: (held[f], -room[f], f))
        placed[index] = friend
        held[friend] += 1
        room[friend] -= share_size
    if len(placed) + len(existing) == n and _worst_loss(held, survive) <= n - k:
        return placed
    raise PlacementError(_why_not(k, n, share_size, friends, survive, n - len(existing)))


def _why_not(
    k: int, n: int, share_size: int, friends: Sequence[FriendRoom], survive: int, missing: int
) -> str:
    usable = sum(1 for f in friends if f.free >= share_size)
    needed = friends_needed(k, n, survive)
    capacity = sum(f.free // share_size if share_size else missing for f in friends if f.free >= 0)
    losing = f"{_friends(survive)} {'disappears' if survive == 1 else 'disappear'}"
    what = f"({k} of {n} shares are needed to rebuild)"
    ask = "Ask a friend for more space or invite another friend."
    if usable < needed:
        return (
            f"Only {_friends(usable)} {'has' if usable == 1 else 'have'} room for "
            f"{format_size(share_size)} more; keeping your data safe if {losing} needs shares "
            f"on {_friends(needed)} {what}. {ask}"
        )
    if capacity < missing:
        return (
            f"Your friends have room for only {capacity} more shares of "
            f"{format_size(share_size)}; this record needs {missing} {what}. {ask}"
        )
    return (
        f"Your friends' room is too uneven for {n} shares of {format_size(share_size)}: "
        f"keeping your data safe if {losing} means no {_friends(survive)} may hold more "
        f"than {n - k} of them {what}, and the others have too little room. {ask}"
    )


def tolerable_losses(assignment: Mapping[int, str], k: int) -> int:
    """How many friends could disappear, the worst ones first, with the record still whole."""
    if k < 1:
        raise ValueError("k must be at least 1")
    spare, lost = len(assignment) - k, 0
    if spare < 0:
        return 0
    for count in sorted(Counter(assignment.values()).values(), reverse=True):
        if count > spare:
            break
        spare -= count
        lost += 1
    return lost


class Planner:
    """Places record after record, so one backup never promises a friend's room twice."""

    def __init__(self, friends: Sequence[FriendRoom], k: int, n: int, survive: int = 1) -> None:
        _check(k, n, survive)
        self.k, self.n, self.survive = k, n, survive
        self._room = {f.friend_id: f.free for f in friends}
        if len(self._room) != len(friends):
            raise ValueError("each friend may appear only once")

    @property
    def rooms(self) -> tuple[FriendRoom, ...]:
        """Each friend's room left after everything placed so far."""
        return tuple(FriendRoom(friend, free) for friend, free in self._room.items())

    def place(self, share_size: int, existing: Mapping[int, str] | None = None) -> dict[int, str]:
        """Place one record's shares (see ``place``); on PlacementError nothing is used."""
        placed = place(self.k, self.n, share_size, self.rooms, self.survive, existing)
        for friend in placed.values():
            self._room[friend] -= share_size
        return placed
