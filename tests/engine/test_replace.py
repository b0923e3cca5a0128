"""engine/replace.py on its own: large shares made again a batch of segments at a time, a
friend back that fails a proof keeps the extras, and a copy made for a friend that was
itself an extra still stands in for the first one."""

from __future__ import annotations

from collections import Counter

import pytest
import trio

from p2pbackup.core import erasure
from p2pbackup.engine.rebuild import REBUILD_SEGMENTS
from p2pbackup.engine.replace import Replacement
from p2pbackup.engine.state import BackupState
from p2pbackup.engine.verify import WHOLE_SHARE, Verifier
from p2pbackup.storage.statedb import StateDB
from p2pbackup.storage.store import ShareKey
from tests.engine.test_verify_streaming import Counting, _backed_up_large

pytestmark = pytest.mark.trio


async def _run(grid, gone=(), stores=None):
    online = stores or {k: s for k, s in grid.stores.items() if s.online}
    usage = {k: await s.stat() for k, s in online.items()}
    work = Replacement(online, usage, grid.state, grid.events.append, trio.CapacityLimiter(2))
    return await work.run(set(gone), grid.stores)


async def _worst(grid) -> int:
    online = {k: s for k, s in grid.stores.items() if s.online}
    verifier = Verifier(online, grid.state, grid.events.append, trio.CapacityLimiter(2))
    report = await verifier.verify([r.descriptor for r in grid.state.records.values()], False)
    return min(h.safe_losses for h in report.records.values())


async def test_a_large_record_is_placed_again_by_segments_never_whole(grid, tmp_path):
    d, placed = await _backed_up_large(grid, tmp_path)
    share = erasure.share_size(d.length, d.k)
    assert share > WHOLE_SHARE
    for index in (0, 1):
        grid.stores[placed[index]].online = False
    counting = {k: Counting(s) for k, s in grid.stores.items() if s.online}
    done = await _run(grid, {placed[0], placed[1]}, counting)
    assert done.shares >= 2 and done.unplaced == 0
    calls = sum((c.calls for c in counting.values()), Counter())
    assert calls["get"] == calls["put"] == 0 and calls["put_part"] > 2
    segment_block = erasure.block_size_of((await grid.stores[placed[2]].get(
        ShareKey(d.record_id, 2)))[: erasure.HEADER_SIZE])  # fmt: skip
    largest = max(c.largest_range for c in counting.values())
    assert largest <= REBUILD_SEGMENTS * segment_block < share
    assert await _worst(grid) == 1


async def test_a_friend_back_that_fails_a_proof_keeps_the_extras(grid, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("hello\n" * 1000)
    await grid.backup(src)
    gone = ["friend1", "friend2"]
    for name in gone:
        grid.stores[name].online = False
    made = await _run(grid, gone)
    assert made.shares and len(grid.state.extras) == made.shares
    for name in gone:
        store = grid.stores[name]
        store.online = True
        for key, share in list(store._shares.items()):
            store._shares[key] = bytes(len(share))  # lists them all, holds none of them
    back = await _run(grid)
    assert back.dropped == 0 and sorted(back.distrusted) == gone
    assert len(grid.state.extras) == made.shares  # kept: the copies that are right
    assert await _worst(grid) >= 1


async def test_a_copy_made_for_an_extra_stands_in_for_the_first_friend(grid, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("hello\n" * 1000)
    await grid.backup(src)
    grid.stores["friend1"].online = False
    await _run(grid, ["friend1"])
    stand_ins = {key: holder for key, (holder, _) in grid.state.extras.items()}
    assert stand_ins and set(f for _, f in grid.state.extras.values()) == {"friend1"}
    holder = sorted(set(stand_ins.values()))[0]  # a friend holding an extra goes too
    grid.stores[holder].online = False
    await _run(grid, ["friend1", holder])
    assert {f for _, f in grid.state.extras.values()} >= {"friend1"}
    for (rid, index), (now, instead_of) in grid.state.extras.items():
        if stand_ins.get((rid, index)) == holder:
            assert instead_of == "friend1" and now != holder
            assert (rid, index, holder) in grid.state.in_flight()  # its copy: prune's to remove
    assert await _worst(grid) >= 1


async def test_extras_are_kept_as_pinned_json_and_a_bad_value_reads_as_none(tmp_path):
    path = str(tmp_path / "state.sqlite")
    db = StateDB(path)
    db.put_extras({(b"\x01" * 32, 2): ("aa" * 32, "bb" * 32)})
    assert db.meta("extras") == (
        b'[["' + b"01" * 32 + b'", 2, "' + b"aa" * 32 + b'", "' + b"bb" * 32 + b'"]]'
    )
    db.close()
    assert BackupState(StateDB(path)).extras == {(b"\x01" * 32, 2): ("aa" * 32, "bb" * 32)}
    for bad in (b"{", b"null", b"[1]", b"[[1, 2]]", b'{"a": 1}', b'[["zz", 1, "a", "b"]]'):
        db = StateDB(path)
        db._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("extras", bad))
        assert db.extras() == {}
        db.close()


async def test_a_run_stops_starting_records_at_its_time_limit_and_the_next_goes_on(grid, tmp_path):
    """So a backup waiting for the job lock gets it between two runs (daemon/replacer.py)."""
    _, placed = await _backed_up_large(grid, tmp_path)
    records = len(grid.state.records)
    grid.stores[placed[0]].online = grid.stores[placed[1]].online = False
    first = await _run_until(grid, {placed[0], placed[1]}, trio.current_time())
    assert first.more and first.records == 0 and not first.unplaced
    second = await _run_until(grid, {placed[0], placed[1]}, None)
    assert not second.more and second.records == records
    assert await _worst(grid) == 1


async def _run_until(grid, gone, until):
    online = {k: s for k, s in grid.stores.items() if s.online}
    usage = {k: await s.stat() for k, s in online.items()}
    work = Replacement(online, usage, grid.state, grid.events.append, trio.CapacityLimiter(2))
    return await work.run(gone, grid.stores, until)
