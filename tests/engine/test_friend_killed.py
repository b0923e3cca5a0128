"""A real friend's node, over libp2p on 127.0.0.1, stops dead in the middle of a large upload.

The owner's backup must go on without it (its shares placed on the others),
name it, and restore byte-exact from the friends that are left.
"""

from __future__ import annotations

import random
from contextlib import AsyncExitStack

import pytest
import trio

from p2pbackup.cli.demo import same_tree
from p2pbackup.core.certificate import issue_certificate
from p2pbackup.core.seal import SEGMENT_SIZE
from p2pbackup.engine import events as ev
from p2pbackup.engine.backup import STREAM_FILE, Backup, Settings
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import read_head
from p2pbackup.engine.restore import Restorer, load_manifest
from p2pbackup.engine.state import BackupState
from p2pbackup.engine.streaming import BATCH_SEGMENTS
from p2pbackup.net.client import remote_store
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs
from p2pbackup.net.service import PROTOCOL, StorageService
from p2pbackup.storage import sharepool
from p2pbackup.storage.sharepool import SharePool
from tests.engine.test_friend_failure import FullDisk
from tests.net.conftest import LOOPBACK, OWNER

pytestmark = pytest.mark.trio


class _Node:
    """A friend's node; ``kill_after`` share pieces received, it stops answering and its
    host goes down, connections and all."""

    def __init__(self, root: str, seed: bytes, kill_after: int | None = None) -> None:
        self.host = build_host(NodeIdentity.from_seed(seed))
        self.pool = SharePool(root, lambda owner: 1 << 30)
        self.pieces = 0
        self.killed = trio.Event()
        self.scope = trio.CancelScope()
        put_part = self.pool.put_part
        token = trio.lowlevel.current_trio_token()

        def _put_part(*args):  # the service runs it in a worker thread
            if kill_after is not None and self.pieces >= kill_after:
                trio.from_thread.run_sync(self.scope.cancel, trio_token=token)
                raise RuntimeError("killed")  # never answered: the host is going down
            self.pieces += 1
            return put_part(*args)

        self.pool.put_part = _put_part
        service = StorageService(self.pool, lambda owner: 1 << 30, b"")
        self.host.set_stream_handler(PROTOCOL, service.handle)

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with self.scope:
            async with self.host.run(listen_addrs(LOOPBACK)):
                task_status.started()
                await trio.sleep_forever()

    @property
    def info(self):
        from libp2p.peer.peerinfo import info_from_p2p_addr

        return info_from_p2p_addr(self.host.get_addrs()[0])


async def _backup_and_restore(tmp_path, nodes: dict[str, _Node], failing: str) -> str:
    """Back up a large file to ``nodes`` over libp2p, restore it without ``failing``; the
    reason the owner was given for ``failing``."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(random.Random(3).randbytes(STREAM_FILE + 5_000_000))
    identity = NodeIdentity.from_seed(b"d" * 32)
    host = build_host(identity)
    cert = issue_certificate(OWNER, identity.node_key, "laptop", 1_764_000_000)
    events: list = []
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        for node in nodes.values():
            await nursery.start(node.run)
        await stack.enter_async_context(host.run(listen_addrs(LOOPBACK)))
        stores = {
            name: await stack.enter_async_context(
                remote_store(host, node.info, name, cert, OWNER.signing_key)
            )
            for name, node in nodes.items()
        }
        state = BackupState()
        room = {name: (await store.stat()).free for name, store in stores.items()}
        backup = Backup(OWNER, stores, state, Settings(), events.append, room=room)
        with trio.fail_after(60):
            report = await backup.run([str(src)])
        assert report.files == 1
        (trouble,) = [e for e in events if isinstance(e, ev.FriendTrouble)]
        assert trouble.friend == failing and failing in trouble.reason
        assert not trouble.reason.endswith(": .")  # a reason, not an empty exception
        for record in state.records.values():
            assert failing not in record.placement.values()

        del stores[failing]  # restore from the three left, from nothing but the keys
        fetcher = Fetcher(OWNER, stores, events.append, trio.CapacityLimiter(2))
        _, body = await read_head(OWNER, stores)
        (ref,) = body.tips
        manifest, _ = await load_manifest(fetcher, ref)
        await Restorer(fetcher).restore(manifest, str(tmp_path / "restored"))
        assert same_tree(str(src), str(tmp_path / "restored" / "src"))
        nursery.cancel_scope.cancel()
    return trouble.reason


def _nodes(tmp_path, kill: str | None = None) -> dict[str, _Node]:
    return {
        f"friend{i}": _Node(str(tmp_path / f"pool{i}"), bytes([65 + i]) * 32,
                            kill_after=2 if f"friend{i}" == kill else None)
        for i in range(4)
    }  # fmt: skip


async def test_a_friend_killed_mid_stream(tmp_path):
    nodes = _nodes(tmp_path, kill="friend1")
    await _backup_and_restore(tmp_path, nodes, "friend1")
    assert nodes["friend1"].scope.cancel_called  # it really died mid-stream
    assert nodes["friend1"].pieces == 2


async def test_a_friend_whose_disk_fills_mid_stream(tmp_path, monkeypatch):
    nodes = _nodes(tmp_path)
    # friend2's disk takes the first piece of its share (a batch's share: 1 MiB), then
    # is full.
    piece = BATCH_SEGMENTS * SEGMENT_SIZE // 2  # k = 2
    monkeypatch.setattr(sharepool, "open", FullDisk(piece * 3 // 2, str(tmp_path / "pool2")),
                        raising=False)  # fmt: skip
    reason = await _backup_and_restore(tmp_path, nodes, "friend2")
    assert reason.startswith("Friend friend2: No room") and "disk is full" in reason
    assert nodes["friend2"].pieces == 2  # the first piece was stored, the second failed
    assert nodes["friend2"].pool.used(OWNER.owner_id) == 0  # nothing half-written is kept
