"""A running restore in words: how far, how fast, how long still, and how it ended.

``RestoreMeter`` folds the restore job's events (``RestoreProgress`` and the daemon's
``JobProgress``, docs/format.md) into what the wizard's progress page says. The speed
is taken over the last few seconds, not since the start, so a restore that slowed down
(a friend on a slow line) is not promised too soon; the time left is the daemon's
``seconds_left`` when it has one, else the bytes left at that speed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication

from p2pbackup.core.sizes import format_size

WINDOW = 5.0  # seconds of progress the speed is taken over


def _tr(text: str) -> str:
    return QCoreApplication.translate("Restoring", text)


class RestoreMeter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.files = self.bytes = self.files_total = self.bytes_total = 0
        self.daemon_left: float | None = None
        self._samples: deque[tuple[float, int]] = deque()  # (when, bytes done)

    def feed(self, event: dict) -> bool:
        """Whether ``event`` (as JSON) moved the restore."""
        kind = event.get("type")
        if kind == "RestoreProgress":
            self.files, self.bytes = int(event["files"]), int(event["bytes"])
            self.files_total, self.bytes_total = (int(event["files_total"]),
                                                  int(event["bytes_total"]))  # fmt: skip
        elif kind == "JobProgress" and event.get("phase") == "restoring":
            self.files, self.bytes = int(event["done_files"]), int(event["done_bytes"])
            self.files_total, self.bytes_total = (int(event["total_files"]),
                                                  int(event["total_bytes"]))  # fmt: skip
            left = event.get("seconds_left")
            self.daemon_left = float(left) if left is not None else None
        else:
            return False
        now = self._clock()
        self._samples.append((now, self.bytes))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW:
            self._samples.popleft()
        return True

    def fraction(self) -> float:
        if self.bytes_total:
            return min(1.0, self.bytes / self.bytes_total)
        return min(1.0, self.files / self.files_total) if self.files_total else 0.0

    def speed(self) -> float | None:
        """Bytes per second over the last few seconds; None until a second has passed."""
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 - t0 >= 1.0 else None

    def seconds_left(self) -> float | None:
        if self.bytes_total and self.bytes >= self.bytes_total:
            return 0.0
        if self.daemon_left is not None:
            return self.daemon_left
        speed = self.speed()
        if not speed:
            return None
        return (self.bytes_total - self.bytes) / speed

    def done_text(self) -> str:
        return _tr("%1 of %2 files, %3 of %4").replace("%1", f"{self.files:,}").replace(
            "%2", f"{self.files_total:,}").replace("%3", format_size(self.bytes)).replace(
            "%4", format_size(self.bytes_total))  # fmt: skip

    def speed_text(self) -> str:
        speed, left = self.speed(), self.seconds_left()
        parts = []
        if speed is not None:
            parts.append(_tr("%1/s").replace("%1", format_size(int(speed))))
        if left is not None and self.files < self.files_total:
            parts.append(duration_text(left))
        return ", ".join(parts) or _tr("working out the time left…")


def duration_text(seconds: float) -> str:
    """``about 40 seconds left``, ``about 3 minutes left``, ``about 2 hours left``."""
    seconds = max(0, round(seconds))
    if seconds < 5:
        return _tr("a few seconds left")
    if seconds < 60:
        return _tr("about %1 seconds left").replace("%1", str(seconds))
    minutes = round(seconds / 60)
    if minutes < 90:
        return (_tr("about a minute left") if minutes == 1
                else _tr("about %1 minutes left").replace("%1", str(minutes)))  # fmt: skip
    return _tr("about %1 hours left").replace("%1", f"{seconds / 3600:.1f}".rstrip("0").rstrip("."))


def report_lines(result: dict) -> list[str]:
    """The ``restore`` answer as sentences, the news first."""
    files, size = int(result.get("files") or 0), format_size(int(result.get("bytes") or 0))
    lines = [(_tr("1 file was restored (%2).") if files == 1
              else _tr("%1 files were restored (%2).")).replace("%1", f"{files:,}").replace(
        "%2", size)]  # fmt: skip
    kept = list(result.get("kept_newer") or [])
    if kept:
        lines.append(_tr("%1 left alone: the copy already there is newer than the "
                         "backup's.").replace("%1", _count(kept)))  # fmt: skip
    there = list(result.get("kept_existing") or [])
    if there:
        lines.append(_tr("%1 already there, left as they are.").replace("%1", _count(there)))
    errors = list(result.get("errors") or [])
    if errors:
        lines.append(_tr("%1 could not be written:").replace("%1", _count(errors)))
        lines += [f"  {e.get('path')}: {e.get('reason')}" for e in errors[:20]]
        if len(errors) > 20:
            lines.append(_tr("  and %1 more.").replace("%1", str(len(errors) - 20)))
    return lines


def _count(items: list) -> str:
    return _tr("1 file") if len(items) == 1 else _tr("%1 files").replace("%1", f"{len(items):,}")
