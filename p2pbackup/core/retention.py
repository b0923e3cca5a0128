"""Which snapshots to keep: keep-last, hourly, daily, weekly, monthly, yearly.

Restic's rules: for each rule, walk the snapshots newest first and keep the
newest snapshot of each distinct bucket (hour, day, ISO week, month, year, in
the snapshot time's own timezone) until the rule's count is used up.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from p2pbackup.errors import ConfigError


@dataclass(frozen=True)
class RetentionPolicy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0


_BUCKETS: dict[str, Callable[[datetime], Hashable]] = {
    "hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: t.year,
}


@dataclass(frozen=True)
class RetentionDecision:
    keep: dict[Hashable, tuple[str, ...]]
    forget: tuple[Hashable, ...]


def keep(
    policy: RetentionPolicy, snapshots: Sequence[tuple[Hashable, datetime]]
) -> RetentionDecision:
    if not any(getattr(policy, f.name) for f in fields(policy)):
        raise ConfigError(
            "This policy would forget every snapshot; give at least one --keep option."
        )
    newest_first = sorted(snapshots, key=lambda s: (s[1], repr(s[0])), reverse=True)
    reasons: dict[Hashable, list[str]] = {}
    for number, (sid, _) in enumerate(newest_first[: policy.last], 1):
        reasons.setdefault(sid, []).append(f"last {number}")
    for rule, bucket_of in _BUCKETS.items():
        count, seen = getattr(policy, rule), set()
        for sid, when in newest_first:
            if len(seen) >= count:
                break
            bucket = bucket_of(when)
            if bucket not in seen:
                seen.add(bucket)
                reasons.setdefault(sid, []).append(f"{rule} {len(seen)}")
    kept = {sid: tuple(r) for sid, r in reasons.items()}
    return RetentionDecision(kept, tuple(sid for sid, _ in newest_first if sid not in kept))
