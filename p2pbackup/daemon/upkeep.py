"""Upkeep's settings: how often friends are audited, how long a friend may be unseen
before its shares are re-placed, and which snapshots retention keeps.

They live in the profile's settings under ``"upkeep"`` (only what differs from the
defaults), so they survive restarts; the daemon's ``upkeep`` job (``job`` below) shows
and changes them, checking every value before it changes any. Intervals are seconds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from p2pbackup.errors import ConfigError

if TYPE_CHECKING:
    from p2pbackup.daemon.settings import Keeper

DAY = 86400.0
MAX_INTERVAL = 366 * DAY  # a year: past it, upkeep would as well be off
MAX_KEEP = 10_000
UPKEEP_OBJECTS = ("auditor", "replacer", "retention")  # the daemon's upkeep, each with state()


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
    repack_cpu: float = 0.5  # the share of one core a repack may keep busy
    repack_rate: int = 0  # bytes per second a repack reads and sends; 0: the upload limit

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


# ---- the ``upkeep`` job: checks first, then one write


_INTERVALS = {"audit_every", "grace"}
_FRACTIONS = {"audit_read": (0.0, 1.0), "quota_warn": (0.01, 1.0), "repack_cpu": (0.01, 1.0)}
_COUNTS = {"keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "repack_rate"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def seconds(value: object, name: str) -> float:
    """An interval from a number of seconds or text such as 30, 30s, 15m, 1h, 1d, 2w."""
    if isinstance(value, str):
        text = value.strip().lower()
        unit = _UNITS.get(text[-1:]) if text else None
        try:
            number = float(text[:-1] if unit else text) * (unit or 1)
        except ValueError:
            raise ConfigError(f"{_option(name)}: {value[:32]!r} is not an interval like 30s, "
                              "15m, 1h or 7d.") from None  # fmt: skip
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ConfigError(f"{_option(name)}: give an interval like 30s, 15m, 1h or 7d.")
    if not math.isfinite(number) or not 1 <= number <= MAX_INTERVAL:
        raise ConfigError(f"{_option(name)} must be between 1 second and 366 days.")
    return number


def _fraction(value: object, name: str) -> float:
    low, high = _FRACTIONS[name]
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ConfigError(f"{_option(name)}: {text[:32]!r} is not a number.") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{_option(name)}: give a fraction such as 0.9, or 90%.")
    if not low <= value <= high:
        raise ConfigError(f"{_option(name)} must be between {low:g} and {high:g}.")
    return float(value)


def _count(value: object, name: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{_option(name)}: give a whole number.")
    if not 0 <= value <= (2**40 if name == "repack_rate" else MAX_KEEP):
        raise ConfigError(f"{_option(name)} must be 0 or more, and not absurdly large.")
    return value


def checked(current: UpkeepSettings, changes: dict[str, Any]) -> UpkeepSettings:
    """``current`` with ``changes`` (JSON values from a client), every one checked first:
    a ConfigError names the first bad value, and nothing is changed."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if value is None:
            continue
        if name in _INTERVALS:
            out[name] = seconds(value, name)
        elif name in _FRACTIONS:
            out[name] = _fraction(value, name)
        elif name in _COUNTS:
            out[name] = _count(value, name)
        else:  # the job's signature lets no other name through
            raise ConfigError(f"There is no upkeep setting called {name[:64]!r}.")
    return replace(current, **out)


def states(daemon: object) -> dict[str, Any]:
    """What each upkeep object of the daemon says of itself, for those it has."""
    out = {}
    for name in UPKEEP_OBJECTS:
        state = getattr(getattr(daemon, name, None), "state", None)
        if callable(state):
            out[name] = state()
    return out


def job(
    k: Keeper, *, audit_every: object = None, audit_read: object = None, grace: object = None,
    quota_warn: object = None, keep_hourly: object = None, keep_daily: object = None,
    keep_weekly: object = None, keep_monthly: object = None, repack_cpu: object = None,
    repack_rate: object = None,
) -> dict[str, Any]:  # fmt: skip
    """Upkeep's settings and what upkeep is doing; any value given changes that setting."""
    changes = {name: value for name, value in locals().items() if name != "k"}
    current = UpkeepSettings.of(k.profile.settings())
    new = checked(current, changes)
    if new != current:
        k.profile.update_settings(upkeep=new.changes())
        for name in UPKEEP_OBJECTS:  # each reads its settings each round: this one now
            woken = getattr(getattr(k.daemon, name, None), "changed", None)
            if callable(woken):
                woken()
        k.changed("upkeep")
    return {
        "settings": asdict(new),
        "changed": sorted(n for n, v in asdict(new).items() if v != asdict(current)[n]),
        "daemon": k.daemon is not None,
        **states(k.daemon),
    }
