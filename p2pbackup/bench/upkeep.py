"""``python -m p2pbackup.bench upkeep``: what keeping backups alive costs, by itself.

One owner backs up ``--size`` bytes (default 1 GiB: a third in large files, the rest
in files of 4 KiB to 1 MiB) to four friends in this process (k=2, n=4, in-memory
pools), then each phase in ``PHASES`` runs on that grid and reports its figures:

- ``audits``: a week of daily audits of every friend, as the daemon runs them
  (engine/audit.py, the default upkeep settings): bytes each way and CPU seconds
  per day, per GB stored at friends, against the targets (0.5 % of the stored
  bytes moved, 1 CPU second per GB per day). The friends' CPU (hashing the shares
  they prove) is timed inside their calls and reported apart from the owner's.

Each helper adds its phase to ``PHASES`` (a function of the backed-up grid giving a
dict): re-placement ("time from a friend vanishing to full safety"), repack ("time
and bytes of a repack").
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from p2pbackup.bench.cpu import own
from p2pbackup.bench.repack import repack_phase
from p2pbackup.bench.replace import replace_phase
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.daemon.upkeep import UpkeepSettings
from p2pbackup.engine.audit import AuditBudget, Auditor
from p2pbackup.engine.backup import Backup, Settings
from p2pbackup.engine.state import BackupState
from p2pbackup.storage.auditlog import FriendAudit
from p2pbackup.storage.memorystore import MemoryShareStore
from p2pbackup.storage.store import ShareKey

FRIENDS = ("alice", "bob", "carol", "dave")
MiB = 1 << 20
GB = 1e9
DAYS = 7
TARGET_MOVED = 0.005  # of the stored bytes, per day
TARGET_CPU = 1.0  # owner CPU seconds per GB stored per day


@dataclass
class Grid:
    """An owner's backup at four friends, for the phases to work on."""

    keys: OwnerKeys
    stores: dict[str, MemoryShareStore]
    state: BackupState
    source: str  # the folder backed up
    size: int  # bytes of source
    events: list = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(store._used for store in self.stores.values())


class _Timed:
    """A friend's store whose own work (hashing shares for proofs) is timed apart."""

    def __init__(self, store: MemoryShareStore) -> None:
        self._store, self.name, self.cpu = store, store.name, 0.0

    def __getattr__(self, name: str):
        method = getattr(self._store, name)

        async def call(*args):
            start = own()
            try:
                return await method(*args)
            finally:
                self.cpu += own() - start

        return call


def _write_source(folder: str, size: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    large, written, number = size // 3, 0, 0
    while written < size:
        want = min(size - written, 64 * MiB if written < large else rng.randint(4096, MiB))
        with open(os.path.join(folder, f"f{number:06d}"), "wb") as f:
            f.write(rng.randbytes(want))
        written += want
        number += 1


async def _backup(size: int, folder: str) -> Grid:
    keys = OwnerKeys.from_secret(bytes(range(32)))
    stores = {n: MemoryShareStore(n, 1 << 40, keys.owner_id) for n in FRIENDS}
    grid = Grid(keys, stores, BackupState(), folder, size)
    room = {n: 1 << 40 for n in FRIENDS}
    backup = Backup(keys, stores, grid.state, Settings(), grid.events.append, room=room)
    await backup.run([folder])
    return grid


async def audits(grid: Grid) -> dict:
    """A week of daily audits of every friend, under the default settings."""
    settings = UpkeepSettings()
    budget = AuditBudget(settings.audit_every, settings.audit_read)
    descriptors = {rid: r.descriptor for rid, r in grid.state.records.items()}
    auditor = Auditor(descriptors, grid.state, trio.CapacityLimiter(2))
    timed = {name: _Timed(store) for name, store in grid.stores.items()}
    records = {name: FriendAudit() for name in FRIENDS}
    sent = received = proved = read = 0
    interval = settings.audit_every / DAYS
    start_cpu, start = own(), time.perf_counter()
    for day in range(DAYS):
        for name in FRIENDS:
            expected = {ShareKey(rid, i) for rid, r in grid.state.records.items()
                        for i, f in r.placement.items() if f == name}  # fmt: skip
            result = await auditor.audit(timed[name], records[name], budget, day * interval,
                                         expected)  # fmt: skip
            assert not (result.missing or result.damaged), result
            sent, received = sent + result.sent, received + result.received
            proved, read = proved + result.proved, read + result.read
    wall = time.perf_counter() - start
    friends_cpu = sum(t.cpu for t in timed.values())
    owner_cpu = own() - start_cpu - friends_cpu
    stored_gb = grid.stored / GB
    shares = sum(len(s._shares) for s in grid.stores.values())
    per_day = 1.0 / DAYS
    moved = (sent + received) * per_day / grid.stored
    return {
        "shares": shares,
        "stored_bytes": grid.stored,
        "proved_per_day": round(proved * per_day, 1),
        "read_in_full_per_day": round(read * per_day, 2),
        "every_share_proved_in_a_week": all(r.passes >= 1 for r in records.values()),
        "bytes_sent_per_day_per_gb": round(sent * per_day / stored_gb),
        "bytes_received_per_day_per_gb": round(received * per_day / stored_gb),
        "moved_per_day": f"{100 * moved:.4f} %",
        "moved_target": f"{100 * TARGET_MOVED} %",
        "owner_cpu_s_per_gb_per_day": round(owner_cpu * per_day / stored_gb, 4),
        "friends_cpu_s_per_gb_per_day": round(friends_cpu * per_day / stored_gb, 4),
        "cpu_target_s_per_gb_per_day": TARGET_CPU,
        "within_targets": moved <= TARGET_MOVED and owner_cpu * per_day / stored_gb <= TARGET_CPU,
        "wall_s_for_the_week": round(wall, 2),
    }


# The phases, in order; each takes the backed-up grid. The re-placement helper adds
# "replace" (time from a friend vanishing to full safety), the retention helper
# "repack" (time and bytes of a repack).
PHASES: dict[str, Callable[[Grid], object]] = {"audits": audits}
PHASES["replace"] = replace_phase  # a friend vanishes; back to full safety, and back
PHASES["repack"] = repack_phase  # last: it adds history to the grid and repacks it


def run(size: int = 1 << 30) -> dict:
    async def main() -> dict:
        with tempfile.TemporaryDirectory(prefix="p2pb-upkeep-") as folder:
            _write_source(folder, size)
            start, cpu = time.perf_counter(), own()
            grid = await _backup(size, folder)
            figures: dict = {
                "size": size,
                "friends": len(FRIENDS),
                "backup_s": round(time.perf_counter() - start, 2),
                "backup_cpu_s": round(own() - cpu, 2),
            }
            for name, phase in PHASES.items():
                figures[name] = await phase(grid)
            return figures

    return trio.run(main)
