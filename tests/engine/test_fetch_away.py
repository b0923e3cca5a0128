"""Too few shares because friends are away is a PeerError naming them (exit 4); too few on
friends who all answered is damage, an IntegrityError (exit 3)."""

from __future__ import annotations

import pytest
import trio

from p2pbackup.core.seal import Kind
from p2pbackup.engine import events as ev
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import read_head
from p2pbackup.errors import IntegrityError, PeerError

pytestmark = pytest.mark.trio


class _Asleep:
    """A friend's store whose node stopped answering after the job connected."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def list(self):
        raise PeerError(f"Friend {self.name} cannot be reached: connection refused.")

    async def get(self, key):
        raise PeerError(f"Friend {self.name} cannot be reached: connection refused.")


async def _manifest_ref(grid, tmp_path):
    src = tmp_path / "docs"
    src.mkdir()
    (src / "a.txt").write_bytes(b"hello\n" * 100)
    await grid.backup(src)
    _, body = await read_head(grid.keys, grid.stores)
    return max(body.tips, key=lambda r: r.created_at_ns).manifest


def _fetcher(grid, stores, away=()):
    return Fetcher(grid.keys, stores, ev.ignore, trio.CapacityLimiter(2), away)


async def test_friends_away_are_a_peer_error_that_names_them(grid, tmp_path):
    descriptor = await _manifest_ref(grid, tmp_path)
    assert descriptor.k == 2 and len(grid.stores) == 4
    one = {"friend0": grid.stores["friend0"]}  # the others did not answer when connecting
    with pytest.raises(PeerError) as caught:
        await _fetcher(grid, one, ["friend1", "friend2", "friend3"]).fetch(
            descriptor, Kind.MANIFEST
        )
    assert "away (friend1, friend2, friend3)" in caught.value.message
    assert caught.value.exit_code == 4
    # Online when the job started, away when asked: the same.
    asleep = {"friend0": grid.stores["friend0"], "friend1": _Asleep("friend1")}
    with pytest.raises(PeerError, match=r"away \(friend1, friend2, friend3\)"):
        await _fetcher(grid, asleep, ["friend2", "friend3"]).fetch(descriptor, Kind.MANIFEST)


async def test_shares_missing_on_friends_who_answered_are_damage(grid, tmp_path):
    descriptor = await _manifest_ref(grid, tmp_path)
    for name in ("friend1", "friend2", "friend3"):
        store = grid.stores[name]
        for key in await store.list():
            if key.record_id == descriptor.record_id:
                await store.remove(key)
    with pytest.raises(IntegrityError) as caught:
        await _fetcher(grid, grid.stores).fetch(descriptor, Kind.MANIFEST)
    assert "only 1 good shares of the 2 needed" in caught.value.message
    assert caught.value.exit_code == 3
