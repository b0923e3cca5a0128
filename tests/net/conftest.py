"""Real libp2p hosts on 127.0.0.1: an owner's device and a friend's node."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from p2pbackup.core.certificate import issue_certificate
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.net.client import remote_store
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs
from p2pbackup.net.service import PROTOCOL, StorageService
from p2pbackup.storage.sharepool import SharePool

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
OWNER = OwnerKeys.from_secret(bytes(range(32)))
STRANGER = OwnerKeys.from_secret(bytes(32))


class Friend:
    """A friend's node that stores shares for the owners it knows."""

    def __init__(self, root: str, quotas: dict[bytes, int]) -> None:
        self.identity = NodeIdentity.from_seed(b"f" * 32)
        self.host = build_host(self.identity)
        self.quotas = quotas
        self.pool = SharePool(root, lambda owner: quotas.get(owner, 0))
        self.service = StorageService(self.pool, quotas.get, self.identity.node_key)
        self.host.set_stream_handler(PROTOCOL, self.service.handle)

    @property
    def info(self):
        from libp2p.peer.peerinfo import info_from_p2p_addr

        return info_from_p2p_addr(self.host.get_addrs()[0])


@asynccontextmanager
async def device(keys: OwnerKeys, friend: Friend, seed: bytes = b"d" * 32, name="laptop"):
    """An owner's device connected to ``friend``: yields its RemoteShareStore."""
    identity = NodeIdentity.from_seed(seed)
    host = build_host(identity)
    cert = issue_certificate(keys, identity.node_key, name, 1_764_000_000)
    async with (
        host.run(listen_addrs(LOOPBACK)),
        remote_store(host, friend.info, "friend", cert, keys.signing_key) as store,
    ):
        yield store


@pytest.fixture
async def friend(tmp_path):
    node = Friend(str(tmp_path / "pool"), {OWNER.owner_id: 1 << 20})
    async with node.host.run(listen_addrs(LOOPBACK)):
        yield node
