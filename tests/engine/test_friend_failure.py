"""A friend failing during a streamed upload: the backup goes on without it, as for small files.

The failure comes through the real nesting of ``streaming.upload_stream`` (a
nursery of senders inside the nursery that also runs the producer), so the
``FriendFailed`` reaches the uploader wrapped twice, as it does in a daemon.
"""

from __future__ import annotations

import builtins
import errno
import random

import pytest

from p2pbackup.cli.demo import same_tree
from p2pbackup.engine import events as ev
from p2pbackup.engine import streaming
from p2pbackup.engine.backup import STREAM_FILE
from p2pbackup.engine.failures import leaves
from p2pbackup.errors import PeerError, PlacementError, StorageError
from p2pbackup.storage import sharepool
from p2pbackup.storage.sharepool import SharePool
from p2pbackup.storage.store import ShareKey
from tests.engine.conftest import Grid

pytestmark = pytest.mark.trio

SIZE = STREAM_FILE + 5_000_000  # 9 segments of 1 MiB: 3 pieces per share (4, 4 and 1 segments)


class Dying:
    """A friend whose connection dies after ``pieces`` share pieces: every call then raises
    what a dropped connection raises (``RemoteShareStore._drop``: PeerError). With
    ``landed``, the piece that kills it is stored first (the answer is what gets lost)."""

    def __init__(self, store, pieces: int, landed: bool = False) -> None:
        self.store, self.name = store, store.name
        self.left, self.landed = pieces, landed

    def __getattr__(self, op):
        return getattr(self.store, op)

    async def put_part(self, key, offset, reserve, last, piece):
        if self.left == 0 or not self.store.online:
            if self.landed and self.store.online:
                await self.store.put_part(key, offset, reserve, last, piece)
            self.store.online = False
            raise PeerError(f"Friend {self.name} closed the connection.")
        self.left -= 1
        return await self.store.put_part(key, offset, reserve, last, piece)


def _source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(random.Random(9).randbytes(SIZE))
    (src / "small.txt").write_bytes(b"a small file beside it")
    return src


def _streamed(grid: Grid):
    (record,) = [r for r in grid.state.records.values() if r.descriptor.length > STREAM_FILE]
    return record


async def _restores_without(grid: Grid, src, tmp_path, *dead: str) -> None:
    for name in dead:
        grid.stores[name].online = False
    await grid.restore_all(tmp_path / "restored")
    assert same_tree(str(src), str(tmp_path / "restored" / "snap0" / "src"))


@pytest.mark.parametrize(
    ("pieces", "landed"),
    [(0, False), (2, False), (2, True)],
    ids=["on-the-first-piece", "after-two-pieces", "after-its-last-piece-landed"],
)
async def test_a_friend_dying_mid_stream_is_left_out_and_the_backup_succeeds(
    tmp_path, pieces, landed
):
    grid = Grid()
    dying = Dying(grid.stores["friend1"], pieces, landed)
    stores = grid.stores
    grid.stores = {**stores, "friend1": dying}
    src = _source(tmp_path)
    report = await grid.backup(src)
    grid.stores = stores

    assert report.files == 2
    trouble = [e for e in grid.events if isinstance(e, ev.FriendTrouble)]
    assert [(e.friend, e.reason) for e in trouble] == [
        ("friend1", "Friend friend1 closed the connection.")
    ]
    record = _streamed(grid)
    # Every share index is placed, none on the dead friend (its partial or whole share
    # does not count), each held whole where the placement says, within the safety rule.
    assert sorted(record.placement) == [0, 1, 2, 3]
    assert "friend1" not in record.placement.values()
    for index, friend in record.placement.items():
        key = ShareKey(record.descriptor.record_id, index)
        assert key in await grid.stores[friend].list()
    assert len(set(record.placement.values())) == 3
    await _restores_without(grid, src, tmp_path, "friend1")


async def test_two_friends_dying_in_the_same_batch_are_both_named(tmp_path):
    grid = Grid()
    stores = grid.stores
    grid.stores = {**stores, "friend0": Dying(stores["friend0"], 1),
                   "friend2": Dying(stores["friend2"], 1)}  # fmt: skip
    src = _source(tmp_path)
    await grid.backup(src)
    grid.stores = stores
    trouble = {e.friend for e in grid.events if isinstance(e, ev.FriendTrouble)}
    assert trouble == {"friend0", "friend2"}
    assert set(_streamed(grid).placement.values()) == {"friend1", "friend3"}
    await _restores_without(grid, src, tmp_path, "friend0", "friend2")


async def test_with_too_few_friends_left_the_error_names_who_failed_and_why(tmp_path):
    grid = Grid(friends=3)
    stores = grid.stores
    grid.stores = {**stores, "friend0": Dying(stores["friend0"], 1),
                   "friend1": Dying(stores["friend1"], 1)}  # fmt: skip
    with pytest.raises(PlacementError) as caught:
        await grid.backup(_source(tmp_path))
    message = caught.value.message
    assert "friend0: Friend friend0 closed the connection." in message
    assert "friend1: Friend friend1 closed the connection." in message


class _PoolAsStore:
    """A friend's disk pool, as its storage service serves it to one owner."""

    def __init__(self, name: str, pool: SharePool, owner_id: bytes) -> None:
        self.name, self._pool, self._owner = name, pool, owner_id

    def __getattr__(self, op):
        method = getattr(self._pool, op)

        async def call(*args):
            return method(self._owner, *args)

        return call


class FullDisk:
    """``open`` for the pool module: files written under ``under`` (anywhere: None) take
    ``room`` bytes between them, then ENOSPC."""

    def __init__(self, room: int, under: str | None = None) -> None:
        self.room, self.under = room, under

    def __call__(self, path, mode="r", *args, **kwargs):
        f = builtins.open(path, mode, *args, **kwargs)  # noqa: SIM115 (the caller closes it)
        if "a" not in mode and "w" not in mode:
            return f
        if self.under is not None and not str(path).startswith(self.under):
            return f
        disk, write = self, f.write

        def limited(data):
            if len(data) > disk.room:
                raise OSError(errno.ENOSPC, "No space left on device")
            disk.room -= len(data)
            return write(data)

        f.write = limited
        return f


@pytest.mark.parametrize("room", [0, 3 << 20], ids=["at-once", "after-some-pieces"])
async def test_a_friend_whose_disk_fills_is_left_out_with_no_room_as_the_reason(
    tmp_path, monkeypatch, room
):
    grid = Grid()
    pool = SharePool(str(tmp_path / "pool"), lambda owner: 1 << 30)
    grid.stores["friend2"] = _PoolAsStore("friend2", pool, grid.keys.owner_id)
    monkeypatch.setattr(sharepool, "open", FullDisk(room), raising=False)
    src = _source(tmp_path)
    report = await grid.backup(src)
    monkeypatch.undo()

    assert report.files == 2
    (trouble,) = [e for e in grid.events if isinstance(e, ev.FriendTrouble)]
    assert trouble.friend == "friend2" and "no room" in trouble.reason.lower()
    assert "disk is full" in trouble.reason
    assert "friend2" not in _streamed(grid).placement.values()
    # Nothing half-written stays at the full friend, and its room is given back.
    assert pool.list(grid.keys.owner_id) == frozenset()
    assert pool.used(grid.keys.owner_id) == 0
    del grid.stores["friend2"]
    await _restores_without(grid, src, tmp_path)


class _Shrinking:
    """Truncates a source file when its first share piece goes out: the producer, a batch
    ahead in the nursery beside the senders, then fails reading it."""

    def __init__(self, store, path) -> None:
        self.store, self.name, self.path = store, store.name, path

    def __getattr__(self, op):
        return getattr(self.store, op)

    async def put_part(self, *args):
        if self.path.stat().st_size:
            self.path.write_bytes(b"")
        return await self.store.put_part(*args)


async def test_a_large_file_shrinking_mid_stream_is_skipped_not_the_backup(tmp_path):
    grid = Grid()
    src = tmp_path / "src"
    src.mkdir()
    big = src / "big.bin"
    big.write_bytes(random.Random(4).randbytes(20 << 20))  # 5 batches: some left to read
    (src / "small.txt").write_bytes(b"kept")
    grid.stores["friend0"] = _Shrinking(grid.stores["friend0"], big)
    report = await grid.backup(src)
    assert [s.path for s in report.skipped] == ["src/big.bin"]
    assert "shrank" in report.skipped[0].reason
    assert [e.path for e in report.manifest.entries if e.size] == ["src/small.txt"]
    assert not [e for e in grid.events if isinstance(e, ev.FriendTrouble)]


class _BadDisk:
    """A friend whose disk fails reading: its node answers GET_RANGE with a storage error."""

    def __init__(self, store) -> None:
        self.store, self.name = store, store.name

    def __getattr__(self, op):
        return getattr(self.store, op)

    async def get_range(self, key, offset, length):
        raise StorageError("Could not read a friend's share: Input/output error.")


async def test_a_friend_failing_to_read_during_a_streamed_restore_is_passed_over(tmp_path):
    grid = Grid()
    src = _source(tmp_path)
    await grid.backup(src)
    grid.stores["friend0"] = _BadDisk(grid.stores["friend0"])
    await grid.restore_all(tmp_path / "restored")
    assert same_tree(str(src), str(tmp_path / "restored" / "snap0" / "src"))
    assert any(
        isinstance(e, ev.FriendTrouble) and e.friend == "friend0" and "Input/output" in e.reason
        for e in grid.events
    )


async def test_the_nested_group_settles_into_the_friends_that_failed():
    """The shapes upload_stream's two nurseries make, reduced to what the uploader needs."""
    a, b = streaming.FriendFailed("a", "gone"), streaming.FriendFailed("b", "full")
    nested = ExceptionGroup("outer", [ExceptionGroup("senders", [a, b])])
    settled = streaming._settle(nested)
    assert isinstance(settled, streaming.FriendsFailed) and settled.failures == (a, b)
    shrank = OSError("big.bin shrank while it was being backed up")
    assert streaming._settle(ExceptionGroup("outer", [shrank, ExceptionGroup("s", [a])])) is shrank
    # Interrupted meanwhile: only the interruption goes on, so no FriendFailed is left
    # behind once trio takes its Cancelled (here: KeyboardInterrupt) out of the group.
    stop = KeyboardInterrupt()
    rest = streaming._settle(BaseExceptionGroup("outer", [ExceptionGroup("s", [a]), stop]))
    assert list(leaves(rest)) == [stop]
