"""Upkeep's repack, measured: the time and bytes of turning old chains into reverse
deltas, as retention runs it after a backup (``bench upkeep``'s ``repack`` phase).

On the backed-up grid of ``bench/upkeep.py`` (four friends, in this process), two of
the 64 MiB files are rewritten two times in three and a file over the 64 MiB that
repack once left alone is added, each backed up in between: a full text, a delta,
then a full text again. The oldest snapshot is forgotten as retention would, and the
repack (under the default budget: all of a core, no rate limit) and the prune that
follows are timed: wall and CPU seconds, the share bytes read from friends and sent
to them (``engine/repack.Meter``), and the bytes freed at friends.
"""

from __future__ import annotations

import os
import random
import time
from typing import TYPE_CHECKING

import trio

from p2pbackup.bench.cpu import own
from p2pbackup.core import head as heads
from p2pbackup.engine.backup import Backup, Settings
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import publish, read_head
from p2pbackup.engine.prune import needed_records, prune
from p2pbackup.engine.repack import MAX_TEXT, Meter, RepackBudget, repack
from p2pbackup.engine.restore import load_manifest
from p2pbackup.engine.scanner import root_labels
from p2pbackup.engine.uploader import Uploader

if TYPE_CHECKING:
    from p2pbackup.bench.upkeep import Grid

MiB = 1 << 20
EDITED = 2  # 64 MiB files rewritten
LARGE = MAX_TEXT + 16 * MiB  # the file over the old limit


def _rewrite(path: str, rng: random.Random, size: int | None = None) -> None:
    """70 % of the file new (all of it if it is new): too much for a second delta."""
    if size is not None:
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        return
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size * 3 // 10)
        f.write(rng.randbytes(size - size * 3 // 10))


async def _backup_again(grid: Grid) -> None:
    grid.state.load_files(root_labels([grid.source]))
    room = {name: (await store.stat()).free for name, store in grid.stores.items()}
    backup = Backup(grid.keys, grid.stores, grid.state, Settings(), grid.events.append,
                    room=room)  # fmt: skip
    await backup.run([grid.source])


async def repack_phase(grid: Grid) -> dict:
    rng = random.Random(3)
    names = sorted(n for n in os.listdir(grid.source)
                   if os.path.getsize(os.path.join(grid.source, n)) == 64 * MiB)  # fmt: skip
    edited = [os.path.join(grid.source, n) for n in names[:EDITED]]
    large = os.path.join(grid.source, "over-the-old-limit")
    _rewrite(large, rng, LARGE)
    await _backup_again(grid)  # the large file's first version, and the first to forget
    for _ in range(2):
        for path in [*edited, large]:
            _rewrite(path, rng)
        await _backup_again(grid)

    _, body = await read_head(grid.keys, grid.stores)
    refs = sorted(body.tips, key=lambda r: r.created_at_ns)
    gone, kept_refs = refs[:-2], refs[-2:]  # as 'keep the last two' would
    meter = Meter()
    stores = RepackBudget().stores(grid.stores, meter)
    workers = trio.CapacityLimiter(2)
    fetcher = Fetcher(grid.keys, stores, grid.events.append, workers)
    manifests = {r.snapshot_id: (await load_manifest(fetcher, r))[0] for r in refs}
    meter.read = 0  # the manifests are the listing's, not the repack's
    change = heads.HeadBody(frozenset(), frozenset(r.snapshot_id for r in gone), frozenset(),
                            None)  # fmt: skip
    await publish(grid.keys, grid.stores, grid.state, change)
    room = {name: (await store.stat()).free for name, store in grid.stores.items()}
    uploader = Uploader(grid.keys, stores, grid.state, grid.events.append, k=Settings().k,
                        n=Settings().n, survive=1, room=room, workers=workers)  # fmt: skip
    stored_before = grid.stored
    grid.state.load_files()
    start, cpu = time.perf_counter(), own()
    report, rewritten = await repack(
        grid.keys, grid.stores, grid.state, uploader, fetcher,
        [(r, manifests[r.snapshot_id]) for r in kept_refs], frozenset(),
        scratch=os.path.dirname(grid.source),
    )  # fmt: skip
    repack_s, repack_cpu = time.perf_counter() - start, own() - cpu
    needed = needed_records([m for _, m in rewritten], [r.manifest.record_id for r, _ in rewritten])
    known = needed_records([manifests[r.snapshot_id] for r in gone],
                           [r.manifest.record_id for r in gone])  # fmt: skip
    pruned = await prune(grid.stores, grid.state, needed, known, grid.events.append)
    return {
        "files_repacked": len(edited) + 1,
        "largest_file_bytes": LARGE,
        "revisions": report.revisions,
        "snapshots_rewritten": report.snapshots,
        "repack_s": round(repack_s, 2),
        "repack_cpu_s": round(repack_cpu, 2),
        "bytes_read": meter.read,
        "bytes_sent": meter.sent,
        "prune_s": round(time.perf_counter() - start - repack_s, 2),
        "removed_records": len(pruned.removed_records),
        "freed_at_friends_bytes": stored_before + meter.sent - grid.stored,
    }
