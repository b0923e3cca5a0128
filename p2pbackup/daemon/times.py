"""Moments as the control protocol tells them: local ISO 8601 with the offset."""

from __future__ import annotations

from datetime import datetime


def iso_time(when: float | None) -> str | None:
    """A Unix time as local ISO 8601 to the second; None (or 0: never) as None."""
    if not when:
        return None
    return datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")
