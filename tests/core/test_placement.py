"""Placement over friends within quotas, safe against losing friends; sizes for people."""

from __future__ import annotations

from collections import Counter
from itertools import combinations, product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core.placement import FriendRoom, Planner, place, tolerable_losses
from p2pbackup.core.sizes import format_size, parse_size
from p2pbackup.errors import ConfigError, PlacementError

SIZE = 10


def _safe(assignment: dict[int, str], k: int, n: int, survive: int) -> bool:
    """Straight from the definition: every way of losing ``survive`` friends leaves k shares."""
    friends = sorted(set(assignment.values()))
    return all(
        sum(1 for f in assignment.values() if f not in lost) >= k
        for lost in combinations(friends, min(survive, len(friends)))
    )


def _fits(assignment: dict[int, str], rooms: dict[str, int]) -> bool:
    return all(count * SIZE <= rooms[f] for f, count in Counter(assignment.values()).items())


def _exists(k: int, n: int, rooms: dict[str, int], survive: int, existing: dict[int, str]) -> bool:
    """Brute force over every way to put the missing shares on friends."""
    missing = [i for i in range(n) if i not in existing]
    for choice in product(sorted(rooms), repeat=len(missing)):
        new = dict(zip(missing, choice, strict=True))
        if _fits(new, rooms) and _safe({**existing, **new}, k, n, survive):
            return True
    return False


@st.composite
def _cases(draw):
    k = draw(st.integers(1, 4))
    n = draw(st.integers(k, 6))
    rooms = draw(st.lists(st.integers(0, 4), min_size=1, max_size=4))
    friends = {
        f"f{i}": shares * SIZE + draw(st.integers(0, SIZE - 1)) for i, shares in enumerate(rooms)
    }
    survive = draw(st.integers(1, 3))
    holders = [*sorted(friends), "gone"]  # a friend no longer offered can still hold shares
    existing = draw(st.dictionaries(st.integers(0, n - 1), st.sampled_from(holders), max_size=n))
    return k, n, friends, survive, existing


@settings(max_examples=400, deadline=None)
@given(_cases())
def test_place_finds_a_safe_fitting_placement_whenever_one_exists(case):
    k, n, rooms, survive, existing = case
    friends = [FriendRoom(f, free) for f, free in rooms.items()]
    try:
        placed = place(k, n, SIZE, friends, survive=survive, existing=existing)
    except PlacementError as error:
        assert "friend" in error.message
        assert n - k < survive or not _exists(k, n, rooms, survive, existing)
        return
    assert sorted(placed) == sorted(set(range(n)) - set(existing)), "only the missing shares"
    assert set(placed.values()) <= set(rooms)
    assert _fits(placed, rooms)
    whole = {**existing, **placed}
    assert _safe(whole, k, n, survive)
    assert tolerable_losses(whole, k) >= survive


@settings(max_examples=200, deadline=None)
@given(_cases(), st.lists(st.integers(1, 2 * SIZE), min_size=1, max_size=6))
def test_a_planner_never_promises_more_room_than_a_friend_gave(case, share_sizes):
    k, n, rooms, survive, _ = case
    friends = [FriendRoom(f, free) for f, free in rooms.items()]
    try:
        planner = Planner(friends, k, n, survive)
    except PlacementError:
        assert n - k < survive
        return
    used: Counter[str] = Counter()
    for share_size in share_sizes:
        before = planner.rooms
        try:
            placed = planner.place(share_size)
        except PlacementError:
            assert planner.rooms == before, "a failed record uses no room"
            continue
        assert sorted(placed) == list(range(n))
        assert _safe(placed, k, n, survive)
        for friend in placed.values():
            used[friend] += share_size
    assert all(used[f] <= free for f, free in rooms.items())
    assert {r.friend_id: r.free for r in planner.rooms} == {f: rooms[f] - used[f] for f in rooms}


def test_shares_are_spread_before_doubling_up_and_go_to_the_roomiest_first():
    friends = [FriendRoom("a", 100), FriendRoom("b", 900), FriendRoom("c", 500)]
    assert place(2, 3, SIZE, friends) == {0: "b", 1: "c", 2: "a"}
    assert sorted(Counter(place(2, 6, SIZE, friends).values()).values()) == [2, 2, 2]
    assert place(2, 4, SIZE, friends) == {0: "b", 1: "c", 2: "a", 3: "b"}


def test_uneven_room_may_put_more_on_one_friend_when_the_rule_still_holds():
    # 1 of 5 needed, survive 2: any two friends may hold 4, so 3 + 1 + 1 is safe.
    friends = [FriendRoom("big", 3 * SIZE), FriendRoom("small", SIZE), FriendRoom("tiny", SIZE)]
    placed = place(1, 5, SIZE, friends, survive=2)
    assert Counter(placed.values()) == {"big": 3, "small": 1, "tiny": 1}
    assert tolerable_losses(placed, 1) == 2


def test_repair_keeps_existing_shares_and_fills_the_gaps_elsewhere():
    friends = [FriendRoom(name, 1000) for name in "abcde"]
    placed = place(2, 4, SIZE, friends, existing={0: "a", 1: "b"})
    assert set(placed) == {2, 3}
    assert not set(placed.values()) & {"a", "b"}
    with pytest.raises(PlacementError, match="store this record again"):
        place(2, 4, SIZE, friends, existing={0: "a", 1: "a", 2: "a"})


def test_errors_say_what_to_do():
    with pytest.raises(
        PlacementError,
        match=r"^Only 1 friend has room for 100 bytes more; keeping your data safe if 1 friend "
        r"disappears needs shares on 2 friends \(2 of 4 shares are needed to rebuild\)\. "
        r"Ask a friend for more space or invite another friend\.$",
    ):
        place(2, 4, 100, [FriendRoom("a", 1000), FriendRoom("b", 50)])
    with pytest.raises(PlacementError, match=r"room for only 2 more shares of 1\.2 MiB; this"):
        place(2, 4, 1_234_567, [FriendRoom("a", 1_300_000), FriendRoom("b", 1_300_000)])
    with pytest.raises(PlacementError, match="too uneven"):
        place(2, 4, SIZE, [FriendRoom("a", 1000), FriendRoom("b", SIZE)])
    with pytest.raises(PlacementError, match="every share is needed, so losing 1 friend"):
        place(3, 3, 1, [FriendRoom("a", 1000)])
    with pytest.raises(PlacementError, match="only 1 of them may be lost, so losing 2 friends"):
        place(3, 4, 1, [FriendRoom("a", 1000)], survive=2)
    with pytest.raises(ConfigError, match="1 <= needed <= made"):
        place(5, 4, 1, [])
    with pytest.raises(ConfigError, match="0 or more"):
        Planner([], 2, 4, survive=-1)


def test_tolerable_losses():
    assert tolerable_losses({0: "a", 1: "b", 2: "c", 3: "d"}, 2) == 2
    assert tolerable_losses({0: "a", 1: "a", 2: "b", 3: "c"}, 2) == 1
    assert tolerable_losses({0: "a", 1: "a", 2: "a", 3: "b"}, 2) == 0
    assert tolerable_losses({0: "a", 2: "b"}, 2) == 0  # two shares lost already
    assert tolerable_losses({0: "a"}, 2) == 0


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("500M", 500 * 1024**2),
        ("20G", 20 * 1024**3),
        ("1T", 1024**4),
        ("1.5g", 1536 * 1024**2),
        (" 100 ", 100),
        ("100k", 102_400),
        ("100kB", 102_400),
        ("2 GiB", 2 * 1024**3),
        ("512b", 512),
        (".5K", 512),
        ("0", 0),
    ],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "", "-1G", "1.5.2G", "1iB", "5X", "1e9", "9" * 31])
def test_parse_size_refuses_garbage_with_an_example(text):
    with pytest.raises(ConfigError, match="write it like 500M"):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1023 bytes"),
        (1024, "1.0 KiB"),
        (1_234_567, "1.2 MiB"),
        (1024**2 - 1, "1.0 MiB"),
        (20 * 1024**3, "20.0 GiB"),
        (3 * 1024**5, "3.0 PiB"),
    ],
)
def test_format_size(size, text):
    assert format_size(size) == text


@given(st.integers(0, 2**60))
def test_format_size_reads_back_within_rounding(size):
    shown = format_size(size)
    assert abs(parse_size(shown.replace(" bytes", "").replace(" byte", "")) - size) <= size * 0.05


def test_surviving_no_loss_puts_every_share_on_the_friends_there_are():
    # A backup while the other friends are away: all on one friend, spread again later.
    assert set(place(2, 4, 100, [FriendRoom("alice", 1000)], survive=0).values()) == {"alice"}
    with pytest.raises(PlacementError, match="room"):
        place(2, 4, 100, [FriendRoom("alice", 250)], survive=0)
