"""Upkeep's settings: how often friends are audited, how long a friend may be unseen
before its shares are re-placed, and which snapshots retention keeps.

They live in the profile's settings under ``"upkeep"`` (only what differs from the
defaults), so they survive restarts; the daemon's ``upkeep`` job changes them.
Intervals are seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

DAY = 86400.0


@dataclass(frozen=True)
class UpkeepSettings:
    audit_every: float = 7 * DAY  # every share is proved at least once in this period
    audit_read: float = 0.001  # the fraction of audited bytes also read in full and hashed
    grace: float = 7 * DAY  # a friend unseen this long has its shares re-placed
    quota_warn: float = 0.9  # a quota this full is warned about
    keep_hourly: int = 24
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 12

    @classmethod
    def of(cls, settings: dict) -> UpkeepSettings:
        """The profile's upkeep settings; keys this version does not know are ignored."""
        saved = settings.get("upkeep") or {}
        known = {f.name for f in fields(cls)}
        return replace(cls(), **{k: v for k, v in saved.items() if k in known})

    def changes(self) -> dict:
        """What differs from the defaults, for the profile's settings."""
        default = asdict(UpkeepSettings())
        return {k: v for k, v in asdict(self).items() if v != default[k]}
