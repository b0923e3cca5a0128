from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from p2pbackup.core.peerid import base58, peer_id


@given(st.binary(min_size=32, max_size=32))
def test_the_peer_id_is_libp2ps(seed):
    keys = create_new_key_pair(seed)
    assert peer_id(keys.public_key.to_bytes()) == ID.from_pubkey(keys.public_key).to_base58()


def test_fixed_vector_and_base58_edges():
    assert peer_id(bytes(32)) == "12D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN2Nz9ttwiw"
    assert base58(b"") == "" and base58(b"\0\0\1") == "112"
    assert base58(b"hello world") == "StV1DL6CwTryKyV"
