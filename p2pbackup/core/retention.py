"""Which snapshots to keep: keep-last, hourly, daily, weekly, monthly, yearly.

Restic's rules. Snapshots are walked newest first. ``last`` keeps the N
newest. Each other rule keeps the newest snapshot of each distinct bucket
(the hour, day, ISO week, month or year of the snapshot's time, read in that
time's own timezone) until it has kept as many buckets as its count. A
snapshot kept by several rules lists every reason: ``("last 1", "daily 1")``;
the number is the position within that rule, newest first.

Snapshots with equal times are ordered by id (the larger id counts as the
newer), so a decision never depends on the order snapshots were listed in.

``keep_per_group`` applies the policy to each group on its own, as restic
groups by host and paths: a device's snapshots of one folder set never make
another device's, or another folder set's, look old.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from p2pbackup.errors import ConfigError


@dataclass(frozen=True)
class RetentionPolicy:
    """How many snapshots each rule keeps; 0 turns a rule off."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def __post_init__(self) -> None:
        for rule in fields(self):
            if getattr(self, rule.name) < 0:
                raise ConfigError(f"--keep-{rule.name} cannot be negative.")


_BUCKETS: dict[str, Callable[[datetime], Hashable]] = {
    "hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: tuple(t.isocalendar())[:2],  # ISO year and week: Jan 1 may be week 53
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: t.year,
}


@dataclass(frozen=True)
class RetentionDecision:
    """Kept snapshots (newest first) with the rules that keep each; the rest, newest first."""

    keep: dict[Any, tuple[str, ...]]
    forget: tuple[Any, ...]


def keep(policy: RetentionPolicy, snapshots: Sequence[tuple[Any, datetime]]) -> RetentionDecision:
    """Apply ``policy`` to (snapshot id, time) pairs; ids must be unique and sortable."""
    _require_a_rule(policy)
    if len({sid for sid, _ in snapshots}) != len(snapshots):
        raise ValueError("snapshot ids must be unique")
    if len({when.utcoffset() is None for _, when in snapshots}) > 1:
        raise ValueError("snapshot times must all have a timezone, or all have none")
    newest_first = sorted(snapshots, key=lambda s: (s[1], s[0]), reverse=True)
    reasons: dict[Any, list[str]] = {sid: [] for sid, _ in newest_first}
    for number, (sid, _) in enumerate(newest_first[: policy.last], 1):
        reasons[sid].append(f"last {number}")
    for rule, bucket_of in _BUCKETS.items():
        count, seen = getattr(policy, rule), set()
        for sid, when in newest_first:
            if len(seen) >= count:
                break
            bucket = bucket_of(when)
            if bucket not in seen:
                seen.add(bucket)
                reasons[sid].append(f"{rule} {len(seen)}")
    return RetentionDecision(
        {sid: tuple(why) for sid, why in reasons.items() if why},
        tuple(sid for sid, why in reasons.items() if not why),
    )


def keep_per_group(
    policy: RetentionPolicy, snapshots: Sequence[tuple[Any, Hashable, datetime]]
) -> RetentionDecision:
    """Apply ``policy`` to each group of (snapshot id, group, time) on its own.

    ``keep`` lists every group's kept snapshots together, newest first;
    ``forget`` likewise. Groups are any hashable value (device and folder set)."""
    _require_a_rule(policy)
    if len({sid for sid, _, _ in snapshots}) != len(snapshots):
        raise ValueError("snapshot ids must be unique, across groups too")
    if len({when.utcoffset() is None for _, _, when in snapshots}) > 1:
        raise ValueError("snapshot times must all have a timezone, or all have none")
    groups: dict[Hashable, list[tuple[Any, datetime]]] = {}
    for sid, group, when in snapshots:
        groups.setdefault(group, []).append((sid, when))
    kept: dict[Any, tuple[str, ...]] = {}
    forgotten: list[Any] = []
    for members in groups.values():
        decision = keep(policy, members)
        kept.update(decision.keep)
        forgotten.extend(decision.forget)
    when = {sid: (t, sid) for sid, _, t in snapshots}
    newest_first = sorted(kept, key=when.__getitem__, reverse=True)
    return RetentionDecision(
        {sid: kept[sid] for sid in newest_first},
        tuple(sorted(forgotten, key=when.__getitem__, reverse=True)),
    )


def _require_a_rule(policy: RetentionPolicy) -> None:
    if not any(getattr(policy, rule.name) for rule in fields(policy)):
        raise ConfigError(
            "This policy would forget every snapshot; give at least one --keep option."
        )
