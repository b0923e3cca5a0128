"""A device's libp2p peer id, from its Ed25519 public key, without libp2p.

Commands that only say who this node is (``init``, ``id``) need the id but not
the network, and importing py-libp2p costs about a second. The id is libp2p's
identity multihash of the key's protobuf form, in base58btc::

    0x00 (identity) | 0x24 (36 bytes) | 0x08 0x01 (KeyType Ed25519) | 0x12 0x20 | key 32

so every Ed25519 peer id starts ``12D3KooW``. ``tests/core/test_peerid.py`` checks
it against py-libp2p's own ``ID.from_pubkey``.
"""

from __future__ import annotations

_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def peer_id(node_key: bytes) -> str:
    """The base58 peer id of a raw 32-byte Ed25519 public key."""
    if len(node_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return base58(_PREFIX + node_key)


def base58(data: bytes) -> str:
    """Bitcoin's base58: leading zero bytes become '1's."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 58)
        digits.append(_ALPHABET[rest])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))
