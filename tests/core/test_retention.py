"""Retention: which snapshots each rule keeps, at bucket boundaries and in general."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core.retention import RetentionPolicy, keep, keep_per_group
from p2pbackup.errors import ConfigError

RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


def _at(*args, tz=UTC) -> datetime:
    return datetime(*args, tzinfo=tz)


def _kept(policy: RetentionPolicy, snaps) -> list:
    return list(keep(policy, snaps).keep)


YEAR_END = [
    ("a", _at(2026, 12, 28, 9)),  # Monday of ISO week 53 of 2026
    ("b", _at(2026, 12, 31, 23)),  # Thursday, same ISO week
    ("c", _at(2027, 1, 1, 1)),  # Friday: new year and month, still ISO week 53 of 2026
    ("d", _at(2027, 1, 1, 1, 30)),  # same hour as c
    ("e", _at(2027, 1, 4, 8)),  # Monday: ISO week 1 of 2027
]


def test_last_keeps_the_newest_and_forgets_the_rest_newest_first():
    decision = keep(RetentionPolicy(last=2), YEAR_END)
    assert decision.keep == {"e": ("last 1",), "d": ("last 2",)}
    assert decision.forget == ("c", "b", "a")


def test_buckets_across_a_year_end():
    assert _kept(RetentionPolicy(hourly=10), YEAR_END) == ["e", "d", "b", "a"]
    assert _kept(RetentionPolicy(daily=10), YEAR_END) == ["e", "d", "b", "a"]
    assert _kept(RetentionPolicy(weekly=10), YEAR_END) == ["e", "d"]  # d's week began in 2026
    assert _kept(RetentionPolicy(monthly=10), YEAR_END) == ["e", "b"]
    assert _kept(RetentionPolicy(yearly=10), YEAR_END) == ["e", "b"]


@pytest.mark.parametrize(
    ("rule", "older", "newer"),
    [
        ("hourly", _at(2026, 5, 6, 10, 59, 59), _at(2026, 5, 6, 11)),
        ("daily", _at(2026, 5, 6, 23, 59, 59), _at(2026, 5, 7)),
        ("weekly", _at(2026, 5, 10, 23, 59), _at(2026, 5, 11)),  # Sunday, then Monday
        ("monthly", _at(2026, 1, 31, 23, 59), _at(2026, 2, 1)),
        ("yearly", _at(2026, 12, 31, 23, 59), _at(2027, 1, 1)),
    ],
)
def test_one_second_across_a_boundary_is_a_new_bucket(rule, older, newer):
    snaps = [("old", older), ("new", newer), ("newest", newer + timedelta(seconds=1))]
    decision = keep(RetentionPolicy(**{rule: 5}), snaps)
    assert list(decision.keep) == ["newest", "old"]
    assert decision.keep["old"] == (f"{rule} 2",)
    assert decision.forget == ("new",)


def test_buckets_use_each_time_s_own_timezone():
    new_york = timezone(timedelta(hours=-5))
    late = _at(2026, 3, 1, 23, 30, tz=new_york)  # already March 2 in UTC
    morning = _at(2026, 3, 1, 9, tz=new_york)
    assert _kept(RetentionPolicy(daily=5), [("late", late), ("morning", morning)]) == ["late"]
    in_utc = [("late", late.astimezone(UTC)), ("morning", morning.astimezone(UTC))]
    assert _kept(RetentionPolicy(daily=5), in_utc) == ["late", "morning"]


def test_counts_stop_each_rule():
    days = [(f"day{i}", _at(2026, 7, i, 12)) for i in range(1, 8)]
    assert _kept(RetentionPolicy(daily=3), days) == ["day7", "day6", "day5"]
    assert _kept(RetentionPolicy(last=1, daily=2, monthly=1), days) == ["day7", "day6"]


def test_equal_times_are_ordered_by_id_whatever_the_input_order():
    when = _at(2026, 7, 1, 12)
    snaps = [("x", when), ("y", when), ("w", when - timedelta(days=1))]
    for order in (snaps, snaps[::-1]):
        decision = keep(RetentionPolicy(last=1, daily=2), order)
        assert decision.keep == {"y": ("last 1", "daily 1"), "w": ("daily 2",)}
        assert decision.forget == ("x",)


def test_reasons_list_every_rule():
    decision = keep(RetentionPolicy(last=1, daily=1, yearly=2), YEAR_END)
    assert decision.keep == {"e": ("last 1", "daily 1", "yearly 1"), "b": ("yearly 2",)}


def test_bad_policies_and_inputs_are_refused():
    with pytest.raises(ConfigError, match="forget every snapshot; give at least one --keep"):
        keep(RetentionPolicy(), YEAR_END)
    with pytest.raises(ConfigError, match="--keep-daily cannot be negative"):
        RetentionPolicy(daily=-1)
    with pytest.raises(ValueError, match="unique"):
        keep(RetentionPolicy(last=1), [("a", _at(2026, 1, 1)), ("a", _at(2026, 1, 2))])
    with pytest.raises(ValueError, match="timezone"):
        keep(RetentionPolicy(last=1), [("a", _at(2026, 1, 1)), ("b", datetime(2026, 1, 2))])
    assert keep(RetentionPolicy(last=1), []).keep == {}


_offsets = st.sampled_from([timezone(timedelta(hours=h)) for h in (-8, 0, 1, 5.5, 14)])
_snapshots = st.lists(
    st.tuples(st.integers(0, 800 * 24 * 4), _offsets), min_size=1, max_size=40
).map(
    lambda items: [
        (f"s{i}", (_at(2026, 1, 1) + timedelta(minutes=15 * q)).astimezone(tz))
        for i, (q, tz) in enumerate(items)
    ]
)
_counts = st.tuples(*[st.integers(0, 4) for _ in RULES]).filter(any)


@settings(max_examples=150, deadline=None)
@given(_counts, _snapshots, st.sampled_from(RULES), st.randoms(use_true_random=False))
def test_properties(counts, snaps, grown_rule, rnd):
    policy = RetentionPolicy(*counts)
    decision = keep(policy, snaps)
    ids = {sid for sid, _ in snaps}
    assert set(decision.keep) | set(decision.forget) == ids
    assert not set(decision.keep) & set(decision.forget)
    newest = max(snaps, key=lambda s: (s[1], s[0]))[0]
    assert newest in decision.keep
    shuffled = list(snaps)
    rnd.shuffle(shuffled)
    assert keep(policy, shuffled) == decision
    bigger = replace(policy, **{grown_rule: getattr(policy, grown_rule) + 1})
    assert set(keep(bigger, snaps).keep) >= set(decision.keep)


@settings(max_examples=150, deadline=None)
@given(_counts, _snapshots)
def test_each_reason_is_the_newest_of_its_bucket(counts, snaps):
    policy = RetentionPolicy(*counts)
    decision = keep(policy, snaps)
    times = dict(snaps)
    buckets = {
        "hourly": lambda t: (t.date(), t.hour),
        "daily": lambda t: t.date(),
        "weekly": lambda t: t.isocalendar()[:2],
        "monthly": lambda t: (t.year, t.month),
        "yearly": lambda t: t.year,
    }
    for rule, bucket in buckets.items():
        chosen = [sid for sid, why in decision.keep.items() for r in why if r.split()[0] == rule]
        distinct = {bucket(t) for t in times.values()}
        assert len(chosen) == min(getattr(policy, rule), len(distinct))
        for sid in chosen:
            same = [(t, s) for s, t in snaps if bucket(t) == bucket(times[sid])]
            assert max(same) == (times[sid], sid)
    lasts = [sid for sid, why in decision.keep.items() if any(r.startswith("last") for r in why)]
    assert len(lasts) == min(policy.last, len(snaps))


# Per group (device and folder set), as restic groups by host and paths.

def test_each_group_keeps_its_own_newest():
    snaps = [
        ("l1", ("laptop", ("Documents",)), _at(2026, 5, 1)),
        ("l2", ("laptop", ("Documents",)), _at(2026, 5, 3)),
        ("d1", ("desktop", ("Documents",)), _at(2026, 5, 2)),
        ("d2", ("desktop", ("Documents",)), _at(2026, 5, 4)),
        ("p1", ("laptop", ("Photos",)), _at(2026, 4, 1)),
    ]
    decision = keep_per_group(RetentionPolicy(last=1), snaps)
    # Without groups, keep-last 1 would keep d2 alone and forget laptop's newest.
    assert decision.keep == {"d2": ("last 1",), "l2": ("last 1",), "p1": ("last 1",)}
    assert decision.forget == ("d1", "l1")
    assert list(keep(RetentionPolicy(last=1), [(s, t) for s, _, t in snaps]).keep) == ["d2"]


def test_groups_check_the_policy_and_ids_even_when_empty():
    with pytest.raises(ConfigError, match="at least one --keep"):
        keep_per_group(RetentionPolicy(), [])
    assert keep_per_group(RetentionPolicy(last=1), []).keep == {}
    t = _at(2026, 5, 1)
    with pytest.raises(ValueError, match="unique"):
        keep_per_group(RetentionPolicy(last=1), [("a", "g1", t), ("a", "g2", t)])


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6)), max_size=30),
       st.integers(1, 3))  # fmt: skip
@settings(max_examples=100)
def test_a_group_decision_is_the_one_it_would_get_alone(items, last):
    snaps = [(i, g, _at(2026, 1, 1) + timedelta(minutes=m)) for i, (g, m) in enumerate(items)]
    decision = keep_per_group(RetentionPolicy(last=last), snaps)
    for group in {g for _, g, _ in snaps}:
        alone = keep(RetentionPolicy(last=last), [(s, t) for s, g, t in snaps if g == group])
        assert {s: w for s, w in decision.keep.items() if s in alone.keep} == alone.keep
        assert set(alone.forget) <= set(decision.forget)
    assert set(decision.keep) | set(decision.forget) == {s for s, _, _ in snaps}
