"""A whole grid of friends in one process: no network, real everything else.

Every test that takes ``grid`` (or ``make_grid``) runs twice: with the state in
memory, and with it in a real ``state.sqlite`` that is closed and read back from
disk before each backup, as a daemon restarted between jobs would. So what the
database forgets, or keeps wrongly, fails the same tests as a wrong backup.
"""

from __future__ import annotations

import pytest
import trio

from p2pbackup.core.keys import OwnerKeys
from p2pbackup.engine.backup import Backup, Settings
from p2pbackup.engine.events import Event
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import read_head
from p2pbackup.engine.restore import Restorer, load_manifest
from p2pbackup.engine.scanner import root_labels
from p2pbackup.engine.state import BackupState
from p2pbackup.storage.memorystore import MemoryShareStore
from p2pbackup.storage.statedb import StateDB


class Grid:
    """``db_path``: keep the state in a StateDB there (None: in memory, as before)."""

    def __init__(self, friends: int = 4, quota: int = 1 << 30, db_path: str | None = None) -> None:
        self.keys = OwnerKeys.from_secret(bytes(range(32)))
        self.stores = {
            f"friend{i}": MemoryShareStore(f"friend{i}", quota, self.keys.owner_id)
            for i in range(friends)
        }
        self.db_path = db_path
        self._db: StateDB | None = None
        self.state = self._open_state()
        self.events: list[Event] = []

    def _open_state(self) -> BackupState:
        if self.db_path is None:
            return BackupState()
        self._db = StateDB(self.db_path)  # as daemon/session.py opens it
        return BackupState(self._db)

    def restart(self) -> None:
        """A new process: the sqlite grid reads its state back from disk; in memory, the
        state simply stays (there is no disk to lose it to)."""
        if self._db is not None:
            self._db.close()
            self.state = self._open_state()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def backup(self, *roots, settings: Settings | None = None, room=None, **kwargs):
        self.restart()
        self.state.load_files(root_labels([str(r) for r in roots]))  # as daemon/jobs.py does
        room = room or {n: (await s.stat()).free for n, s in self.stores.items()}
        backup = Backup(
            self.keys,
            self.stores,
            self.state,
            settings or Settings(),
            self.events.append,
            room=room,
        )
        return await backup.run([str(r) for r in roots], **kwargs)

    async def restore_all(self, dest, keys: OwnerKeys | None = None) -> list:
        """Restore every snapshot the friends' head lists, oldest first, from nothing but keys."""
        keys = keys or self.keys
        fetcher = Fetcher(keys, self.stores, self.events.append, trio.CapacityLimiter(2))
        restorer = Restorer(fetcher)
        _, body = await read_head(keys, self.stores)
        manifests = []
        for number, ref in enumerate(sorted(body.tips, key=lambda r: r.created_at_ns)):
            manifest, data = await load_manifest(fetcher, ref)
            assert manifest.to_bytes() == data  # one encoding: the session caches these bytes
            await restorer.restore(manifest, str(dest / f"snap{number}"))
            manifests.append(manifest)
        return manifests


@pytest.fixture(params=["memory", "sqlite"])
def make_grid(request, tmp_path):
    """Makes grids whose state is in memory, or in a real state.sqlite in tmp_path."""
    made: list[Grid] = []

    def make(**kwargs) -> Grid:
        db_path = None
        if request.param == "sqlite":
            db_path = str(tmp_path / f"state-{len(made)}.sqlite")
        made.append(Grid(db_path=db_path, **kwargs))
        return made[-1]

    yield make
    for grid in made:
        grid.close()


@pytest.fixture
def grid(make_grid) -> Grid:
    return make_grid()
