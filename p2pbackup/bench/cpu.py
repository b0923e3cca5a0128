"""CPU time, counted per process: this one, other running processes, and waited children.

On two cores the owner, its friends and any baseline share the CPU, so wall
time moves with the machine's mood while CPU seconds per byte do not: the
benchmarks report both. User plus system time, every thread included.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")


def own() -> float:
    """CPU seconds this process has used so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children() -> float:
    """CPU seconds of every child this process has waited for (``restic`` runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def of(pids: Iterable[int]) -> float:
    """CPU seconds the running processes ``pids`` have used so far (from /proc)."""
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # The command name (field 2) may hold spaces: count fields after its ')'.
            fields = f.read().rsplit(b")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total


@dataclass
class Meter:
    """CPU seconds of this process and of ``pids`` between ``start`` and ``stop``."""

    pids: tuple[int, ...] = ()
    _own: float = 0.0
    _others: float = 0.0
    _children: float = 0.0
    own_s: float = 0.0
    others_s: float = 0.0
    children_s: float = 0.0

    def start(self) -> Meter:
        self._own, self._others, self._children = own(), of(self.pids), children()
        return self

    def stop(self) -> Meter:
        self.own_s = own() - self._own
        self.others_s = of(self.pids) - self._others
        self.children_s = children() - self._children
        return self


def per_gb(seconds: float, size: int) -> float:
    return round(seconds / (size / 1e9), 2)
