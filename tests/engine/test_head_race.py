"""Two devices of one owner publish at the same moment: the compare-and-swap retry merges.

The collision is forced, not hoped for: device A's stores run device B's whole backup
after A has read the friends' heads and before A's first put of that head lands. So
every friend already holds B's head at the number A chose, refuses A's (no rollback),
and A must read again, merge and publish higher, losing neither device's snapshot.
"""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable

import pytest
import trio

from p2pbackup.cli.demo import same_tree
from p2pbackup.core import head as heads
from p2pbackup.engine.backup import Settings
from p2pbackup.engine.headstore import PUBLISH_TRIES, read_head
from p2pbackup.errors import PeerError

pytestmark = pytest.mark.trio


class _Collisions:
    """Before the first put of each new head, the next queued action (another device
    publishing) runs to its end; the other puts of that head wait for it."""

    def __init__(self, actions: list[Callable[[], Awaitable[object]]]) -> None:
        self._actions = list(actions)
        self._lock = trio.Lock()
        self._round: bytes | None = None
        self.happened = 0

    async def before_put(self, head: bytes) -> None:
        async with self._lock:
            if head == self._round:
                return
            self._round = head
            if self._actions:
                try:
                    await self._actions.pop(0)()
                except Exception as exc:  # not a PeerError that publish would take for A's
                    raise AssertionError(f"the other device failed: {exc!r}") from exc
                self.happened += 1


class _Racing:
    """A friend's store as device A reaches it: put_head meets the collisions first."""

    def __init__(self, store, collisions: _Collisions) -> None:
        self._store = store
        self._collisions = collisions
        self.name = store.name

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    async def put_head(self, head: bytes) -> None:
        await self._collisions.before_put(head)
        await self._store.put_head(head)


def _folder(root, seed: int):
    root.mkdir(parents=True)
    rng = random.Random(seed)
    for i in range(3):
        (root / f"f{i}.bin").write_bytes(rng.randbytes(50_000 + i))
    return root


def _devices(make_grid, actions_of):
    """Device A (stores racing B) and device B: one owner, the same four friends."""
    a, b = make_grid(), make_grid()
    b.stores = dict(a.stores)
    collisions = _Collisions(actions_of(b))
    a.stores = {name: _Racing(store, collisions) for name, store in b.stores.items()}
    return a, b, collisions


async def _friends_heads(grid) -> list[tuple[int, heads.HeadBody]]:
    return [
        heads.open_head(await store.get_head(), grid.keys.owner_id, grid.keys.head_key)
        for store in grid.stores.values()
    ]


def _b_backs_up(b, folder, times: int):
    async def once() -> None:
        (folder / "edit").write_bytes(os.urandom(1000))  # a new snapshot each time
        await b.backup(folder, settings=Settings(device="B"))

    return [once] * times


@pytest.mark.parametrize("collisions", [1, PUBLISH_TRIES - 1])
async def test_a_head_published_between_our_read_and_our_put_is_merged_not_lost(
    make_grid, tmp_path, collisions
):
    folder_b = _folder(tmp_path / "b" / "pics", 2)
    a, _, race = _devices(make_grid, lambda b: _b_backs_up(b, folder_b, collisions))
    folder_a = _folder(tmp_path / "a" / "docs", 1)
    report = await a.backup(folder_a, settings=Settings(device="A"))
    assert race.happened == collisions  # A's head was refused that many times, then kept

    # Every friend holds one head, the last A published, listing both devices' snapshots.
    held = await _friends_heads(a)
    assert len({seq for seq, _ in held}) == 1 and len({body for _, body in held}) == 1
    seq, body = held[0]
    assert seq == collisions + 1  # B's heads took 1..collisions; A's retry is above them
    assert report.manifest.snapshot_id in {ref.snapshot_id for ref in body.tips}
    assert len(body.tips) == collisions + 1
    assert a.state.head == body and a.state.head_seq == seq

    manifests = await a.restore_all(tmp_path / "out")  # oldest first: A's, then B's
    assert [m.device for m in manifests] == ["A"] + ["B"] * collisions
    assert same_tree(str(folder_a), str(tmp_path / "out" / "snap0" / "docs"))
    assert same_tree(str(folder_b), str(tmp_path / "out" / f"snap{collisions}" / "pics"))


async def test_a_collision_on_some_friends_only_is_merged_too(make_grid, tmp_path):
    """B reaches two of the four friends: A's head lands on the other two, is refused on
    B's two, and the retry puts one merged head above both everywhere."""
    folder_b = _folder(tmp_path / "b" / "pics", 2)

    def b_on_two_friends(b):
        async def once() -> None:
            b.stores = {name: b.stores[name] for name in ("friend0", "friend1")}
            await b.backup(folder_b, settings=Settings(device="B", k=1, n=2))

        return [once]

    a, _, race = _devices(make_grid, b_on_two_friends)
    folder_a = _folder(tmp_path / "a" / "docs", 1)
    await a.backup(folder_a, settings=Settings(device="A"))
    assert race.happened == 1
    held = await _friends_heads(a)
    assert {seq for seq, _ in held} == {2} and len({body for _, body in held}) == 1
    manifests = await a.restore_all(tmp_path / "out")
    assert sorted(m.device for m in manifests) == ["A", "B"]


async def test_a_collision_every_time_is_a_clear_error_and_loses_nothing(make_grid, tmp_path):
    folder_b = _folder(tmp_path / "b" / "pics", 2)
    a, _, race = _devices(make_grid, lambda b: _b_backs_up(b, folder_b, PUBLISH_TRIES))
    folder_a = _folder(tmp_path / "a" / "docs", 1)
    with pytest.raises(PeerError, match="Another device"):
        await a.backup(folder_a, settings=Settings(device="A"))
    assert race.happened == PUBLISH_TRIES
    held = await _friends_heads(a)
    assert {len(body.tips) for _, body in held} == {PUBLISH_TRIES}  # every one of B's

    # The next backup of A, with no one racing it, publishes A's snapshot; all restore.
    report = await a.backup(folder_a, settings=Settings(device="A"))
    assert report.changed == 0  # what the failed run stored is still known, not sent again
    manifests = await a.restore_all(tmp_path / "out")  # A's first, made before B's
    assert [m.device for m in manifests] == ["B"] * PUBLISH_TRIES + ["A"]
    assert same_tree(str(folder_a), str(tmp_path / "out" / f"snap{PUBLISH_TRIES}" / "docs"))
    assert same_tree(str(folder_b), str(tmp_path / "out" / f"snap{PUBLISH_TRIES - 1}" / "pics"))


async def test_a_friend_whose_head_is_damaged_is_not_taken_for_another_device(grid, tmp_path):
    """A friend refuses every new head because the one it holds no longer verifies (a bit
    flipped on its disk) or because it lies: that is no race, and retrying cannot help.
    The others take the head and the backup completes."""
    folder = _folder(tmp_path / "docs", 1)
    await grid.backup(folder)
    damaged = grid.stores["friend0"]
    damaged._head = damaged._head[:-1] + bytes([damaged._head[-1] ^ 1])
    (folder / "new").write_bytes(b"after the damage")
    report = await grid.backup(folder)
    seq, body = await read_head(grid.keys, grid.stores)
    assert seq == 2 and report.manifest.snapshot_id in {r.snapshot_id for r in body.tips}
    manifests = await grid.restore_all(tmp_path / "out")
    assert same_tree(str(folder), str(tmp_path / "out" / f"snap{len(manifests) - 1}" / "docs"))
