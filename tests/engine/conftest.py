"""A whole grid of friends in one process: no network, real everything else."""

from __future__ import annotations

import pytest
import trio

from p2pbackup.core.keys import OwnerKeys
from p2pbackup.engine.backup import Backup, Settings
from p2pbackup.engine.events import Event
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import read_head
from p2pbackup.engine.restore import Restorer, load_manifest
from p2pbackup.engine.state import BackupState
from p2pbackup.storage.memorystore import MemoryShareStore


class Grid:
    def __init__(self, friends: int = 4, quota: int = 1 << 30) -> None:
        self.keys = OwnerKeys.from_secret(bytes(range(32)))
        self.stores = {
            f"friend{i}": MemoryShareStore(f"friend{i}", quota, self.keys.owner_id)
            for i in range(friends)
        }
        self.state = BackupState()
        self.events: list[Event] = []

    async def backup(self, *roots, settings: Settings | None = None, room=None, **kwargs):
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


@pytest.fixture
def grid() -> Grid:
    return Grid()
