"""Pruning never breaks a kept snapshot, whatever the history of edits and forgets."""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import tempfile

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pbackup.cli.demo import same_tree
from p2pbackup.core import head as heads
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import publish, read_head
from p2pbackup.engine.prune import needed_records, prune
from p2pbackup.engine.repack import repack
from p2pbackup.engine.restore import Restorer, load_manifest
from p2pbackup.engine.uploader import Uploader
from tests.engine.conftest import Grid

NAMES = ("a.bin", "b.txt", "c/d.bin", "c/e.txt")
PRUNED: list[int] = []  # records removed by each prune, over all examples
REPACKED: list[int] = []  # revisions turned into reverse deltas

steps = st.lists(
    st.one_of(
        st.tuples(st.just("edit"), st.integers(0, 2**32 - 1)),
        st.tuples(st.just("forget"), st.integers(0, 2**32 - 1)),
    ),
    min_size=2,
    max_size=8,
)


def _edit(folder: str, seed: int) -> None:
    rng = random.Random(seed)
    for name in rng.sample(NAMES, rng.randint(1, len(NAMES))):
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        action = rng.choice(["new", "insert", "append", "delete"])
        old = pathlib.Path(path).read_bytes() if os.path.exists(path) else b""
        if action == "delete" and old:
            os.unlink(path)
            continue
        if action == "insert":
            data = rng.randbytes(rng.randint(1, 5000)) + old
        elif action == "append":
            data = old + rng.randbytes(rng.randint(1, 300_000))
        else:
            data = rng.randbytes(rng.randint(0, 400_000))
        with open(path, "wb") as f:
            f.write(data)


async def _history(root: str, plan, state: str) -> None:
    grid = Grid(
        friends=3, db_path=os.path.join(root, "state.sqlite") if state == "sqlite" else None
    )
    try:
        await _steps(grid, root, plan)
    finally:
        grid.close()


async def _steps(grid: Grid, root: str, plan) -> None:
    folder = os.path.join(root, "src")
    os.makedirs(folder)
    expected: dict[bytes, str] = {}
    for number, (kind, seed) in enumerate(plan):
        if kind == "edit" or not expected:
            _edit(folder, seed)
            report = await grid.backup(folder)
            copy = os.path.join(root, f"expected-{number}")
            shutil.copytree(folder, os.path.join(copy, "src"))
            expected[report.manifest.snapshot_id] = copy
            continue
        rng = random.Random(seed)
        grid.restart()  # forget --prune is a job of its own, maybe after a restart
        grid.state.load_files()  # every folder's, as daemon/jobs.py loads them to prune
        _, body = await read_head(grid.keys, grid.stores)
        refs = sorted(body.tips, key=lambda r: r.created_at_ns)
        kept = rng.sample(refs, rng.randint(1, len(refs)))
        gone = [r for r in refs if r not in kept]
        fetcher = Fetcher(grid.keys, grid.stores, grid.events.append, trio.CapacityLimiter(2))
        manifests = {r.snapshot_id: (await load_manifest(fetcher, r))[0] for r in refs}
        change = heads.HeadBody(
            frozenset(), frozenset(r.snapshot_id for r in gone), frozenset(), None
        )
        await publish(grid.keys, grid.stores, grid.state, change)
        room = {n: (await st.stat()).free for n, st in grid.stores.items()}
        uploader = Uploader(grid.keys, grid.stores, grid.state, grid.events.append, k=2, n=4,
                            survive=1, room=room, workers=trio.CapacityLimiter(2))  # fmt: skip
        report, rewritten = await repack(
            grid.keys, grid.stores, grid.state, uploader, fetcher,
            [(r, manifests[r.snapshot_id]) for r in kept], frozenset(),
        )  # fmt: skip
        REPACKED.append(report.revisions)
        kept = [ref for ref, _ in rewritten]
        manifests.update({ref.snapshot_id: m for ref, m in rewritten})
        needed = needed_records(
            [manifests[r.snapshot_id] for r in kept], [r.manifest.record_id for r in kept]
        )
        known = needed_records(
            [manifests[r.snapshot_id] for r in gone], [r.manifest.record_id for r in gone]
        )
        report = await prune(grid.stores, grid.state, needed, known, grid.events.append)
        PRUNED.append(len(report.removed_records))
        for ref in gone:
            del expected[ref.snapshot_id]
        # Every kept snapshot restores exactly, from the friends alone.
        fetcher = Fetcher(grid.keys, grid.stores, grid.events.append, trio.CapacityLimiter(2))
        restorer = Restorer(fetcher)
        for ref in kept:
            target = os.path.join(root, f"check-{number}-{ref.snapshot_id.hex()}")
            await restorer.restore(manifests[ref.snapshot_id], target)
            assert same_tree(expected[ref.snapshot_id], target)
    # And the last word: every snapshot still listed restores.
    _, body = await read_head(grid.keys, grid.stores)
    assert {r.snapshot_id for r in body.tips} == set(expected)


def _histories(state: str):
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps)
    def run(plan):
        with tempfile.TemporaryDirectory() as root:
            trio.run(_history, root, plan, state)

    return run


@pytest.mark.parametrize("state", ["memory", "sqlite"])  # the sqlite one restarts each job
def test_prune_never_breaks_a_kept_snapshot(state):
    PRUNED.clear()
    REPACKED.clear()
    _histories(state)()
    assert sum(PRUNED) > 0  # the histories did prune something
    assert sum(REPACKED) > 0  # and repacked some chains
