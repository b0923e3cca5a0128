"""What a job leaves in the state is what the next process reads back from state.sqlite.

Runs on both grids; in memory a restart keeps the very objects, so it is the sqlite grid
that this checks: every field the engine decides by, after a backup, a second backup
(a delta, with its parent), and a forget with prune.
"""

from __future__ import annotations

import os

import pytest

from p2pbackup.core import head as heads
from p2pbackup.engine.headstore import publish, read_head
from p2pbackup.engine.prune import needed_records, prune

pytestmark = pytest.mark.trio


def _remembered(state) -> dict:
    state.load_files()
    return {
        "records": dict(state.records),  # descriptors and where each share went
        "head": (state.head_seq, state.head),
        "last_snapshot": state.last_snapshot,
        "files": dict(state.files),
        "contents": dict(state.contents),
        "garbage": state.garbage(),
        "revlogs": {path: state.revlog(path).to_bytes() for path in state.files},
    }


def _survives_a_restart(grid) -> None:
    before = _remembered(grid.state)
    grid.restart()
    after = _remembered(grid.state)
    # Revisions files no longer have are not stored: a file returning to one of them after
    # a restart is sent again as a delta, not by reference. Those of today's files are.
    contents = before.pop("contents")
    assert after.pop("contents").items() <= contents.items()
    for field, value in before.items():
        assert after[field] == value, f"{field} changed across a restart"
    current = {fs.entry.rev_id for fs in grid.state.files.values() if fs.entry.chain}
    assert current <= set(grid.state.contents)


async def test_the_state_a_restart_reads_is_the_state_the_jobs_left(grid, tmp_path):
    src = tmp_path / "docs"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(600_000))
    (src / "small.txt").write_bytes(b"small\n")
    first = await grid.backup(src)
    _survives_a_restart(grid)

    (src / "big.bin").write_bytes(b"in front" + (src / "big.bin").read_bytes())
    second = await grid.backup(src)
    assert second.manifest.parents == (first.manifest.snapshot_id,)  # last_snapshot kept
    _survives_a_restart(grid)

    # forget the first snapshot and prune, as `forget --prune` does
    _, body = await read_head(grid.keys, grid.stores)
    refs = {ref.snapshot_id: ref for ref in body.tips}
    gone, kept = refs[first.manifest.snapshot_id], refs[second.manifest.snapshot_id]
    change = heads.HeadBody(frozenset(), frozenset({gone.snapshot_id}), frozenset(), None)
    await publish(grid.keys, grid.stores, grid.state, change)
    grid.state.load_files()
    needed = needed_records([second.manifest], [kept.manifest.record_id])
    known = needed_records([first.manifest], [gone.manifest.record_id])
    report = await prune(grid.stores, grid.state, needed, known, grid.events.append)
    assert report.removed_records  # the first version's blob at least
    assert not report.removed_records & set(grid.state.records)
    _survives_a_restart(grid)
    assert not report.removed_records & set(grid.state.records)  # forgotten for good

    grid.events.clear()
    third = await grid.backup(src)  # after all that, nothing is read or sent again
    assert third.changed == 0
    await grid.restore_all(tmp_path / "out")
