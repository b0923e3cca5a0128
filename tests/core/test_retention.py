"""Retention: which snapshots each rule keeps, at bucket boundaries and in general."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pbackup.core.retention import RetentionPolicy, keep
from p2pbackup.errors import ConfigError


def _at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


SNAPS = [
    ("a", _at(2026, 12, 28, 9)),  # Monday of ISO week 53 of 2026
    ("b", _at(2026, 12, 31, 23)),  # Thursday, same ISO week
    ("c", _at(2027, 1, 1, 1)),  # Friday: new year, new month, still ISO week 53 of 2026
    ("d", _at(2027, 1, 1, 1, 30)),  # same hour as c
    ("e", _at(2027, 1, 4, 8)),  # Monday: ISO week 1 of 2027
]


def test_last_keeps_the_newest():
    decision = keep(RetentionPolicy(last=2), SNAPS)
    assert set(decision.keep) == {"d", "e"}
    assert decision.forget == ("c", "b", "a")


def test_daily_hourly_weekly_monthly_yearly_buckets():
    assert set(keep(RetentionPolicy(daily=10), SNAPS).keep) == {"a", "b", "d", "e"}
    assert set(keep(RetentionPolicy(hourly=10), SNAPS).keep) == {"a", "b", "d", "e"}
    assert set(keep(RetentionPolicy(weekly=10), SNAPS).keep) == {"d", "e"}
    assert set(keep(RetentionPolicy(monthly=10), SNAPS).keep) == {"b", "e"}
    assert set(keep(RetentionPolicy(yearly=10), SNAPS).keep) == {"b", "e"}


def test_reasons_list_every_rule():
    decision = keep(RetentionPolicy(last=1, daily=1, yearly=1), SNAPS)
    assert decision.keep["e"] == ("last 1", "daily 1", "yearly 1")


def test_a_policy_that_keeps_nothing_is_refused():
    with pytest.raises(ConfigError, match="forget every snapshot"):
        keep(RetentionPolicy(), SNAPS)


times = st.lists(st.integers(0, 400 * 24), min_size=1, max_size=30, unique=True).map(
    lambda hours: [(f"s{h}", _at(2026, 1, 1) + timedelta(hours=h)) for h in hours]
)


@given(st.tuples(*[st.integers(0, 4) for _ in range(6)]).filter(any), times)
def test_properties(counts, snaps):
    policy = RetentionPolicy(*counts)
    decision = keep(policy, snaps)
    ids = {sid for sid, _ in snaps}
    assert set(decision.keep) | set(decision.forget) == ids
    assert not set(decision.keep) & set(decision.forget)
    newest = max(snaps, key=lambda s: s[1])[0]
    assert newest in decision.keep
    bigger = RetentionPolicy(*(c + 1 for c in counts))
    assert set(keep(bigger, snaps).keep) >= set(decision.keep)
