"""Placement over friends within quotas, safe against losing friends; sizes for people."""

from __future__ import annotations

from collections import Counter
from itertools import combinations, product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core.placement import (
    FriendRoom,
    format_size,
    parse_size,
    place,
    tolerable_losses,
)
from p2pbackup.errors import ConfigError, PlacementError


def _safe(assignment: dict[int, str], k: int, n: int, survive: int) -> bool:
    friends = set(assignment.values())
    return all(
        n - sum(1 for f in assignment.values() if f in lost) >= k
        for lost in combinations(friends, min(survive, len(friends)))
    )


def _exists(k: int, n: int, size: int, rooms: list[int], survive: int) -> bool:
    """Brute force: is there any assignment that is safe and fits?"""
    for choice in product(range(len(rooms)), repeat=n):
        counts = Counter(choice)
        if all(counts[f] * size <= rooms[f] for f in counts) and _safe(
            dict(enumerate(map(str, choice))), k, n, survive
        ):
            return True
    return False


@settings(max_examples=400, deadline=None)
@given(
    st.integers(1, 4).flatmap(lambda k: st.tuples(st.just(k), st.integers(k, 5))),
    st.lists(st.integers(0, 5), min_size=1, max_size=4),
    st.integers(1, 2),
)
def test_place_finds_a_safe_fitting_placement_whenever_one_exists(kn, rooms, survive):
    k, n = kn
    friends = [FriendRoom(str(i), room * 10) for i, room in enumerate(rooms)]
    try:
        assignment = place(k, n, 10, friends, survive=survive)
    except PlacementError as error:
        assert "friend" in error.message
        assert n - k < survive or not _exists(k, n, 10, [r * 10 for r in rooms], survive)
        return
    assert sorted(assignment) == list(range(n))
    assert _safe(assignment, k, n, survive)
    assert tolerable_losses(assignment, k) >= survive
    for friend, count in Counter(assignment.values()).items():
        assert count * 10 <= rooms[int(friend)] * 10


def test_shares_are_spread_before_doubling_up():
    friends = [FriendRoom(name, 1000) for name in "abcd"]
    assert sorted(Counter(place(2, 4, 10, friends).values()).values()) == [1, 1, 1, 1]


def test_repair_keeps_existing_shares_and_fills_the_gaps():
    friends = [FriendRoom(name, 1000) for name in "abcde"]
    existing = {0: "a", 1: "b"}
    placed = place(2, 4, 10, friends, existing=existing)
    assert set(placed) == {2, 3}
    assert not set(placed.values()) & {"a", "b"}


def test_no_room_says_what_to_do():
    with pytest.raises(PlacementError, match="Ask a friend for more space or invite another"):
        place(2, 4, 100, [FriendRoom("a", 1000), FriendRoom("b", 50)])
    with pytest.raises(PlacementError, match="could lose data"):
        place(3, 3, 1, [FriendRoom("a", 1000)])


def test_tolerable_losses():
    assert tolerable_losses({0: "a", 1: "b", 2: "c", 3: "d"}, 2) == 2
    assert tolerable_losses({0: "a", 1: "a", 2: "b", 3: "c"}, 2) == 1
    assert tolerable_losses({0: "a", 1: "a", 2: "a", 3: "b"}, 2) == 0


def test_sizes():
    assert parse_size("500M") == 500 * 1024**2
    assert parse_size("20G") == 20 * 1024**3
    assert parse_size("1T") == 1024**4
    assert parse_size("1.5g") == int(1.5 * 1024**3)
    assert parse_size(" 100 ") == 100
    assert parse_size("100kB") == 102400
    with pytest.raises(ConfigError, match="like 500M"):
        parse_size("lots")
    assert format_size(999) == "999 bytes"
    assert format_size(1_234_567) == "1.2 MiB"
    assert format_size(parse_size("20G")) == "20.0 GiB"
