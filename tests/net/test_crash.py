"""A friend's node killed with SIGKILL in the middle of puts restarts with no torn share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import trio
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from p2pbackup.core import erasure
from p2pbackup.core.certificate import issue_certificate
from p2pbackup.errors import P2PBackupError
from p2pbackup.net.client import remote_store
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs
from p2pbackup.storage.catalog import Catalog
from p2pbackup.storage.sharepool import SharePool
from p2pbackup.storage.store import ShareKey
from tests.net.conftest import OWNER

pytestmark = pytest.mark.trio
CLI = [sys.executable, "-m", "p2pbackup.cli.main"]


def _start(home: str) -> tuple[subprocess.Popen, str]:
    daemon = subprocess.Popen(
        [*CLI, "--home", home, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    daemon.stdout.readline()
    line = subprocess.run([*CLI, "--home", home, "id"], capture_output=True, text=True).stdout
    return daemon, next(w for w in line.split() if w.startswith("/ip4/"))


async def test_sigkill_during_puts_leaves_whole_shares_only(tmp_path):
    home = str(tmp_path / "friend")
    subprocess.run([*CLI, "--home", home, "init"], check=True, capture_output=True)
    catalog = Catalog(os.path.join(home, "catalog.sqlite"))
    catalog.add_friend(OWNER.owner_id, "owner", "", [], b"", 1 << 30, 0)
    catalog.close()
    daemon, address = _start(home)
    identity = NodeIdentity.from_seed(b"k" * 32)
    cert = issue_certificate(OWNER, identity.node_key, "laptop", int(time.time()))
    host = build_host(identity)
    shares = [erasure.encode(bytes([i]) * 32, os.urandom(3 << 20), 1, 1)[1][0] for i in range(24)]
    async with host.run(listen_addrs(["/ip4/127.0.0.1/tcp/0"])):
        peer = info_from_p2p_addr(Multiaddr(address))
        async with remote_store(host, peer, "friend", cert, OWNER.signing_key) as store:
            await store.stat()

            async def kill_soon() -> None:
                await trio.sleep(0.15)
                daemon.send_signal(signal.SIGKILL)

            failed = None
            async with trio.open_nursery() as nursery:
                nursery.start_soon(kill_soon)
                try:
                    for i, share in enumerate(shares):
                        await store.put(ShareKey(bytes([i]) * 32, 0), share)
                except P2PBackupError as exc:
                    failed = exc
            assert failed is not None, "the friend died mid-upload: the put must fail cleanly"
    daemon.wait()
    leftovers = [n for _, _, names in os.walk(home) for n in names if n.startswith(".tmp-")]
    pool = SharePool(os.path.join(home, "pool"), lambda owner: 1 << 30)  # what a restart does
    assert not [n for _, _, names in os.walk(home) for n in names if n.startswith(".tmp-")]
    kept = pool.list(OWNER.owner_id)
    for key in kept:
        erasure.parse_share(pool.get(OWNER.owner_id, key))  # whole and self-consistent
    assert len(kept) < len(shares), "the kill came before the last put"
    # Restarted, the node serves again and the interrupted upload can resume.
    daemon, address = _start(home)
    try:
        host = build_host(identity)
        async with host.run(listen_addrs(["/ip4/127.0.0.1/tcp/0"])):
            peer = info_from_p2p_addr(Multiaddr(address))
            async with remote_store(host, peer, "friend", cert, OWNER.signing_key) as store:
                for i, share in enumerate(shares):
                    await store.put(ShareKey(bytes([i]) * 32, 0), share)
                assert len(await store.list()) == len(shares)
    finally:
        daemon.kill()
    print(f"{len(kept)} shares had landed; {len(leftovers)} temporary files were cleaned")
