"""The node identity: persisted privately, stable across restarts, refused when damaged."""

from __future__ import annotations

import os
import stat

import pytest

from p2pbackup.errors import ConfigError, PeerError
from p2pbackup.net.host import NodeIdentity, listen_addrs, node_key_of


def test_the_node_key_is_private_and_stable(tmp_path):
    path = str(tmp_path / "node.key")
    first = NodeIdentity.load_or_create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = NodeIdentity.load_or_create(path)
    assert again.peer_id == first.peer_id
    assert node_key_of(first.peer_id) == first.node_key


def test_a_damaged_node_key_is_a_clear_error(tmp_path):
    path = tmp_path / "node.key"
    path.write_bytes(b"short")
    with pytest.raises(ConfigError, match="damaged"):
        NodeIdentity.load_or_create(str(path))


def test_bad_listen_addresses_and_peer_ids_are_refused():
    with pytest.raises(ConfigError, match="listen address"):
        listen_addrs(["not an address"])
    from libp2p.crypto.secp256k1 import create_new_key_pair
    from libp2p.peer.id import ID

    with pytest.raises(PeerError):
        node_key_of(ID.from_pubkey(create_new_key_pair().public_key))


def test_listening_everywhere_is_announced_per_interface():
    from multiaddr import Multiaddr

    from p2pbackup.net.host import expand_unspecified, interface_addresses

    addrs = [Multiaddr("/ip4/0.0.0.0/tcp/4001"), Multiaddr("/ip4/10.1.2.3/tcp/5")]
    assert [str(a) for a in expand_unspecified(addrs, ["192.168.1.9", "127.0.0.1"])] == [
        "/ip4/192.168.1.9/tcp/4001",
        "/ip4/127.0.0.1/tcp/4001",
        "/ip4/10.1.2.3/tcp/5",
    ]
    found = interface_addresses()
    assert "127.0.0.1" in found and found[-1].startswith("127.")
