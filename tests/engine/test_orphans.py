"""Shares left at friends by uploads that never finished are reclaimed by prune, and
nothing a kept snapshot needs, or another device may be sending, is touched."""

from __future__ import annotations

import random

import pytest
import trio

from p2pbackup.cli.demo import same_tree
from p2pbackup.core import erasure
from p2pbackup.core.seal import SEGMENT_SIZE, Kind
from p2pbackup.engine.backup import STREAM_FILE
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import read_head
from p2pbackup.engine.prune import needed_records, prune
from p2pbackup.engine.restore import load_manifest
from p2pbackup.engine.streaming import BATCH_SEGMENTS
from p2pbackup.engine.uploader import Uploader
from p2pbackup.errors import PeerError
from p2pbackup.storage.store import ShareKey
from tests.engine.conftest import Grid
from tests.engine.test_friend_failure import Dying

pytestmark = pytest.mark.trio


class _Interrupt:
    """Stops a backup (as Ctrl-C would) once ``landed`` records are on friends and ``stuck``
    others are half-sent: friend3 took the shares of the first records it was sent and
    holds back every later one, whose shares on the other friends are out already."""

    def __init__(self, scope: trio.CancelScope, landed: int = 2, stuck: int = 2) -> None:
        self.scope, self.landed, self.stuck = scope, landed, stuck
        self.stored = 0
        self.admitted: set[bytes] = set()
        self.held_back: set[bytes] = set()

    def _check(self) -> None:
        if self.stored >= self.landed and len(self.held_back) >= self.stuck:
            self.scope.cancel()

    def event(self, event) -> None:
        if type(event).__name__ == "RecordStored":
            self.stored += 1
            self._check()

    async def gate(self, record_id: bytes) -> None:
        if record_id in self.admitted or len(self.admitted) < self.landed:
            self.admitted.add(record_id)
            return
        self.held_back.add(record_id)
        self._check()
        await trio.sleep_forever()


class _Events(list):
    def __init__(self, hook) -> None:
        super().__init__()
        self.hook = hook

    def append(self, event) -> None:
        super().append(event)
        self.hook(event)


class _Gated:
    def __init__(self, store, interrupt: _Interrupt) -> None:
        self.store, self.name, self.interrupt = store, store.name, interrupt

    def __getattr__(self, op):
        return getattr(self.store, op)

    async def put(self, key, share):
        await self.interrupt.gate(key.record_id)
        return await self.store.put(key, share)

    async def put_part(self, key, *args):
        await self.interrupt.gate(key.record_id)
        return await self.store.put_part(key, *args)


def _write(folder, seed: int, sizes: list[int]) -> None:
    rng = random.Random(seed)
    folder.mkdir(exist_ok=True)
    for number, size in enumerate(sizes):
        (folder / f"{seed}-{number}.bin").write_bytes(rng.randbytes(size))


async def _needed(grid: Grid) -> set[bytes]:
    """Every record a snapshot in the friends' head needs (what forget --prune keeps)."""
    fetcher = Fetcher(grid.keys, grid.stores, grid.events.append, trio.CapacityLimiter(2))
    _, body = await read_head(grid.keys, grid.stores)
    refs = list(body.tips)
    manifests = [(await load_manifest(fetcher, ref))[0] for ref in refs]
    return needed_records(manifests, [ref.manifest.record_id for ref in refs])


async def _prune(grid: Grid, away: tuple[str, ...] = ()):
    """forget --prune, with ``away`` friends not reached when the job began (the daemon
    passes only the friends that answered)."""
    grid.restart()  # a new process, as after Ctrl-C: only what state.sqlite committed
    grid.state.load_files()  # as forget --prune does
    needed = await _needed(grid)
    online = {name: store for name, store in grid.stores.items() if name not in away}
    return needed, await prune(online, grid.state, needed, set(), grid.events.append)


def _live(grid: Grid, needed: set[bytes]) -> dict[str, frozenset[ShareKey]]:
    """What each friend must hold: the shares of needed records where they were placed."""
    live: dict[str, set[ShareKey]] = {name: set() for name in grid.stores}
    for rid in needed:
        for index, friend in grid.state.records[rid].placement.items():
            live[friend].add(ShareKey(rid, index))
    return {name: frozenset(keys) for name, keys in live.items()}


async def _held(grid: Grid) -> dict[str, frozenset[ShareKey]]:
    return {name: await store.list() for name, store in grid.stores.items()}


@pytest.mark.parametrize("away", [False, True], ids=["all-friends", "one-away-at-first"])
async def test_an_interrupted_backup_leaves_nothing_after_prune(make_grid, tmp_path, away):
    grid = make_grid()
    src = tmp_path / "src"
    _write(src, 1, [1 << 20, STREAM_FILE + 2_000_000, 300_000, 5_000])
    await grid.backup(src)
    # The second backup stops after two records landed; others, small and streamed, are
    # half-sent: some of their shares are on friends, their records stored nowhere.
    _write(src, 2, [1 << 20] * 6 + [STREAM_FILE + 3_000_000] * 2 + [400_000] * 3)
    stores = grid.stores
    with trio.CancelScope() as scope:
        interrupt = _Interrupt(scope)
        grid.stores = {**stores, "friend3": _Gated(stores["friend3"], interrupt)}
        grid.events = _Events(interrupt.event)
        await grid.backup(src)
    assert scope.cancelled_caught and interrupt.stored >= 2
    grid.events, grid.stores = [], stores
    needed = await _needed(grid)
    held = await _held(grid)
    orphans = {k.record_id for keys in held.values() for k in keys} - needed
    assert orphans - set(grid.state.records)  # some records were never finished: orphans

    if away:  # a friend not reached: the others are cleaned, it is cleaned next time
        _, report = await _prune(grid, away=("friend0",))
        assert report.unreachable == ["friend0"]
        assert (await _held(grid))["friend0"] != _live(grid, needed)["friend0"]
    needed, report = await _prune(grid)
    assert await _held(grid) == _live(grid, needed)  # exactly what kept snapshots need
    assert report.removed_records <= orphans
    if not away:
        assert report.removed_records == orphans
    assert grid.state.in_flight() == set()
    assert not report.unknown_shares

    # And the next backup stores everything again, whole.
    await grid.backup(src)
    manifests = await grid.restore_all(tmp_path / "restored")
    assert len(manifests) == 2
    assert same_tree(str(src), str(tmp_path / "restored" / "snap1" / "src"))


async def test_a_share_left_on_a_friend_that_failed_is_removed_once_it_is_back(make_grid, tmp_path):
    grid = make_grid()
    stores = grid.stores
    # friend1 stores its last piece of the streamed share, then its connection dies: the
    # share is whole there, but the record was placed without it.
    size = STREAM_FILE + 5_000_000
    segments = -(-size // SEGMENT_SIZE)
    pieces = -(-segments // BATCH_SEGMENTS)  # one per batch of segments
    grid.stores = {**stores, "friend1": Dying(stores["friend1"], pieces - 1, landed=True)}
    src = tmp_path / "src"
    _write(src, 3, [size])
    await grid.backup(src)
    grid.stores = stores
    stores["friend1"].online = True  # its node restarted
    (record,) = [r for r in grid.state.records.values() if r.descriptor.length > STREAM_FILE]
    stray = {
        k for k in await stores["friend1"].list() if k.record_id == record.descriptor.record_id
    }
    assert len(stray) == 1 and "friend1" not in record.placement.values()

    # While it is away nothing can be done there: the note stays for the next prune.
    stores["friend1"].online = False
    needed, report = await _prune(grid)
    assert report.unreachable == ["friend1"] and len(grid.state.in_flight()) == 1
    stores["friend1"].online = True
    needed, report = await _prune(grid)
    assert await _held(grid) == _live(grid, needed)
    assert report.removed_shares == 1 and not report.removed_records
    assert grid.state.in_flight() == set()
    await grid.restore_all(tmp_path / "restored")


async def test_shares_this_device_never_sent_are_counted_not_removed(make_grid, tmp_path):
    grid = make_grid()
    src = tmp_path / "src"
    _write(src, 4, [100_000])
    await grid.backup(src)
    # Another device of the same owner is half-way through its backup: one of its records
    # has shares on two friends, in no snapshot yet.
    rid = bytes(range(32))
    _, shares = erasure.encode(rid, b"another device's record" * 1000, 2, 4)
    await grid.stores["friend0"].put(ShareKey(rid, 0), shares[0])
    await grid.stores["friend2"].put(ShareKey(rid, 1), shares[1])
    _, report = await _prune(grid)
    assert dict(report.unknown_shares) == {"friend0": 1, "friend2": 1}
    assert ShareKey(rid, 0) in await grid.stores["friend0"].list()
    assert ShareKey(rid, 1) in await grid.stores["friend2"].list()


async def test_a_record_a_kept_snapshot_uses_is_never_taken_for_an_orphan(make_grid, tmp_path):
    """A record this device began to send and never finished, which another device stored
    and published: its shares are good copies, kept; the note is settled."""
    grid = make_grid()
    src = tmp_path / "src"
    _write(src, 5, [300_000])
    await grid.backup(src)
    needed = await _needed(grid)
    rid = sorted(needed)[0]
    grid.state.sending(rid, {0: "friend3"})  # as an interrupted run of this device left it
    grid.state.forget_records([rid])  # and it never recorded the record as stored
    before = await _held(grid)
    _, report = await _prune(grid)
    assert await _held(grid) == before and not report.removed_shares
    assert grid.state.in_flight() == set()


async def test_the_small_path_notes_shares_before_they_leave(make_grid):
    """The note is committed before the first byte goes out, so a kill at any moment
    after it leaves nothing prune cannot find."""
    grid = make_grid()
    seen: list[set] = []

    class _Watching:
        def __init__(self, store) -> None:
            self.store, self.name = store, store.name

        def __getattr__(self, op):
            return getattr(self.store, op)

        async def put(self, key, share):
            seen.append(grid.state.in_flight())
            await self.store.put(key, share)

    stores = {n: _Watching(s) for n, s in grid.stores.items()}
    room = {n: 1 << 30 for n in stores}
    uploader = Uploader(grid.keys, stores, grid.state, grid.events.append, k=2, n=4,
                        survive=1, room=room, workers=trio.CapacityLimiter(2))  # fmt: skip
    rid = bytes(32)
    await uploader.store(Kind.FULL, rid, [b"some bytes"])
    assert len(seen) == 4 and all(len(s) == 4 for s in seen)
    assert grid.state.in_flight() == set()  # landed: settled with the stored record


class _RemoveFailsOnce:
    """A friend that lists its shares, then drops the connection on the first remove."""

    def __init__(self, store) -> None:
        self.store, self.name, self.failed = store, store.name, False

    def __getattr__(self, op):
        return getattr(self.store, op)

    async def remove(self, key):
        if not self.failed:
            self.failed = True
            raise PeerError(f"The connection to friend {self.name} broke: StreamReset.")
        await self.store.remove(key)


async def test_garbage_a_friend_failed_to_remove_is_removed_by_the_next_prune(make_grid, tmp_path):
    grid = make_grid()
    src = tmp_path / "src"
    _write(src, 6, [300_000, 400_000])
    await grid.backup(src)
    grid.state.load_files()
    stores = {**grid.stores, "friend2": _RemoveFailsOnce(grid.stores["friend2"])}
    events = grid.events.append
    # Every snapshot forgotten: everything this device stored is garbage.
    await prune(stores, grid.state, set(), set(), events)
    assert len(await grid.stores["friend2"].list()) == 1  # one remove failed there
    await prune(stores, grid.state, set(), set(), events)
    assert not any([await store.list() for store in grid.stores.values()])
