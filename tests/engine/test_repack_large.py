"""Repack of files too large to rebuild in memory: their texts are rebuilt on disk and
their reverse deltas streamed, so memory stays bounded and every kept version restores.
The limit is a parameter here (``max_text``) so the files stay small; the slow test runs
the real limit."""

from __future__ import annotations

import os
import random
import tracemalloc

import pytest
import trio

from p2pbackup.core.refs import StorageKind
from p2pbackup.engine import repack as repacking
from p2pbackup.engine.backup import Settings
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import read_head
from p2pbackup.engine.repack import RepackBudget, repack
from p2pbackup.engine.restore import Restorer, load_manifest
from p2pbackup.engine.uploader import Uploader
from p2pbackup.storage.sharepool import SharePool
from tests.engine.conftest import Grid
from tests.engine.test_friend_failure import _PoolAsStore

pytestmark = pytest.mark.trio
MIB = 1024 * 1024


def _on_disk(root) -> Grid:
    """A grid whose friends keep shares on disk, as real ones do: what memory a repack
    takes is then the repack's own, not the friends'."""
    grid = Grid(friends=3)
    grid.stores = {
        name: _PoolAsStore(name, SharePool(str(root / name), lambda owner: 1 << 34),
                           grid.keys.owner_id)
        for name in grid.stores
    }  # fmt: skip
    return grid


async def _three_versions(grid: Grid, root, size: int, names=("big.bin",)) -> list:
    """Files backed up three times, 70% rewritten each time: a full text, a delta on it,
    then a full text again (a second delta would make too costly a chain). The first
    file's texts, oldest first."""
    folder = root / "src"
    folder.mkdir()
    rngs = {name: random.Random(name) for name in names}
    texts = {name: bytearray(rngs[name].randbytes(size)) for name in names}
    expected = []
    for number in range(3):
        for name in names:
            text = texts[name]
            if number:
                cut = size * 3 // 10
                text[cut:] = rngs[name].randbytes(size - cut)
            (folder / name).write_bytes(text)
            os.utime(folder / name, ns=(number * 10**9, number * 10**9))
        await grid.backup(folder, settings=Settings(k=2, n=3))
        expected.append(bytes(texts[names[0]]))
    return expected


async def _repack(grid: Grid, scratch, **kwargs):
    grid.restart()
    grid.state.load_files()
    _, body = await read_head(grid.keys, grid.stores)
    fetcher = Fetcher(grid.keys, grid.stores, grid.events.append, trio.CapacityLimiter(2))
    kept = [(r, (await load_manifest(fetcher, r))[0])
            for r in sorted(body.tips, key=lambda r: r.created_at_ns)]  # fmt: skip
    room = {n: (await st.stat()).free for n, st in grid.stores.items()}
    uploader = Uploader(grid.keys, grid.stores, grid.state, grid.events.append, k=2, n=3,
                        survive=1, room=room, workers=trio.CapacityLimiter(2))  # fmt: skip
    return await repack(grid.keys, grid.stores, grid.state, uploader, fetcher, kept,
                        frozenset(), scratch=str(scratch), **kwargs)  # fmt: skip


async def _restores(grid: Grid, rewritten, expected, dest) -> None:
    restorer = Restorer(Fetcher(grid.keys, grid.stores, grid.events.append,
                                trio.CapacityLimiter(2)))  # fmt: skip
    for number, (_, manifest) in enumerate(rewritten):
        await restorer.restore(manifest, str(dest / f"v{number}"))
        assert (dest / f"v{number}" / "src" / "big.bin").read_bytes() == expected[number]


async def _repack_measured(grid: Grid, scratch, **kwargs):
    tracemalloc.start()
    try:
        report, rewritten = await _repack(grid, scratch, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return report, rewritten, peak


async def test_a_file_over_the_limit_is_repacked_on_disk_to_the_same_records(tmp_path):
    """Over ``max_text`` (before: left as it was), the file's texts are rebuilt on disk:
    the same reverse deltas as in memory, with far less memory, and every version
    restores."""
    made = {}
    for limit in (1 * MIB, repacking.MAX_TEXT):
        root = tmp_path / str(limit)
        root.mkdir()
        grid = _on_disk(root)
        expected = await _three_versions(grid, root, 6 * MIB)
        kinds = sorted(r.kind.name for r in grid.state.revlog("src/big.bin"))
        assert kinds == ["DELTA", "FULL", "FULL"]
        scratch = root / "scratch"
        scratch.mkdir()
        report, rewritten, peak = await _repack_measured(grid, scratch, max_text=limit)
        assert report.revisions == 2 and report.snapshots == 2
        revlog = grid.state.revlog("src/big.bin")
        assert sorted(r.kind.name for r in revlog) == ["FULL", "REVERSE", "REVERSE"]
        assert os.listdir(scratch) == []  # its texts on disk are gone
        await _restores(grid, rewritten, expected, root / "r")
        made[limit] = (
            sorted(r.blob.record_id for r in revlog if r.kind is StorageKind.REVERSE),
            peak,
        )
    (on_disk, disk_peak), (in_memory, memory_peak) = made.values()
    assert on_disk == in_memory  # the same bytes: the same ids
    # In memory: both texts and their delta at once. On disk: what streaming holds.
    assert disk_peak < memory_peak / 2, (disk_peak, memory_peak)


async def test_a_budget_rests_in_proportion_to_cpu_and_meters_reads_and_writes(
    tmp_path, monkeypatch
):
    budget = RepackBudget(cpu=0.25)
    assert budget.rest_after(1.0) == pytest.approx(3.0)
    assert RepackBudget().rest_after(5.0) == 0
    with pytest.raises(ValueError):
        RepackBudget(cpu=0)
    taken: list[int] = []

    class Counted(repacking.Throttle):
        async def take(self, size: int) -> None:
            taken.append(size)
            await super().take(size)

    monkeypatch.setattr(repacking, "Throttle", Counted)
    grid = Grid(friends=3)
    await _three_versions(grid, tmp_path, 2 * MIB)
    rate = 2 * MIB  # a second's worth goes at once; the rest waits for the bucket
    meter = repacking.Meter()
    grid.stores = RepackBudget(rate=rate).stores(grid.stores, meter)
    started = trio.current_time()
    report, _ = await _repack(grid, tmp_path, max_text=1 * MIB)
    assert report.revisions == 2
    moved = sum(taken)
    assert moved == meter.read + meter.sent and meter.sent > 0
    assert meter.read > 3 * MIB  # reads count, not only what is sent
    assert trio.current_time() - started >= (moved - rate) / rate


@pytest.mark.slow
async def test_the_real_limit_a_file_over_64_mib_is_repacked_in_bounded_memory(tmp_path):
    grid = _on_disk(tmp_path)
    expected = await _three_versions(grid, tmp_path, repacking.MAX_TEXT + MIB)
    report, rewritten, peak = await _repack_measured(grid, tmp_path)
    assert report.revisions == 2
    # In memory it would be two 65 MiB texts and their delta; streaming holds a few
    # batches of segments, whatever the file's size.
    assert peak < 40 * MIB, peak
    await _restores(grid, rewritten, expected, tmp_path / "r")


async def test_out_of_time_a_repack_stops_between_files_and_the_next_goes_on(tmp_path):
    grid = Grid(friends=3)
    expected = await _three_versions(grid, tmp_path, 1 * MIB, names=("big.bin", "other.bin"))
    hurried = RepackBudget(seconds=0)
    first, _ = await _repack(grid, tmp_path, budget=hurried)
    assert (first.revisions, first.left_for_later) == (2, True)  # one file, then out of time
    second, rewritten = await _repack(grid, tmp_path, budget=hurried)
    assert (second.revisions, second.left_for_later) == (2, False)  # the other; nothing left
    await _restores(grid, rewritten, expected, tmp_path / "r")  # every version, both rounds
    third, _ = await _repack(grid, tmp_path, budget=hurried)
    assert third.revisions == 0
    kinds = {p: sorted(r.kind.name for r in grid.state.revlog(p)) for p in grid.state.files}
    assert kinds["src/big.bin"] == kinds["src/other.bin"] == ["FULL", "REVERSE", "REVERSE"]
