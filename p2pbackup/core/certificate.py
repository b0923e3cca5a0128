"""Device certificates: the owner key vouches for a device's node key.

Each device has its own random libp2p Ed25519 key. Friends accept any device
whose certificate is signed by an owner they paired with, which is how a new
laptop restored from the phrase is recognised.

Layout::

    offset  size  field
    0       4     magic b"P2BC"
    4       1     version = 1
    5       32    owner id (Ed25519 public key)
    37      32    node key (Ed25519 public key of the device's libp2p identity)
    69      8     issued at, unix seconds (u64)
    77      var   device name (varint length + UTF-8, 1..64 bytes)
    end-64  64    Ed25519 signature by the owner, domain "device-cert_v1",
                  over every byte before it
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pbackup.core import signing
from p2pbackup.core.codec import Reader, Writer
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.errors import IntegrityError

MAGIC = b"P2BC"
VERSION = 1
DOMAIN = b"device-cert_v1"  # frozen: changing it invalidates every certificate
MAX_NAME = 64


@dataclass(frozen=True)
class DeviceCertificate:
    owner_id: bytes
    node_key: bytes
    device_name: str
    issued_at: int


def _check_name(name: str) -> None:
    encoded = name.encode("utf-8")
    if not 1 <= len(encoded) <= MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(f"a device name is 1..{MAX_NAME} bytes of printable text")


def issue_certificate(keys: OwnerKeys, node_key: bytes, device_name: str, issued_at: int) -> bytes:
    if len(node_key) != 32:
        raise ValueError("a node key is a 32-byte Ed25519 public key")
    _check_name(device_name)
    body = (
        Writer()
        .raw(MAGIC)
        .u8(VERSION)
        .raw(keys.owner_id)
        .raw(node_key)
        .u64(issued_at)
        .text(device_name)
        .getvalue()
    )
    return body + signing.sign(keys.signing_key, DOMAIN, body)


def verify_certificate(data: bytes, owner_id: bytes | None = None) -> DeviceCertificate:
    r = Reader(data, "device certificate")
    r.magic(MAGIC)
    r.version(VERSION)
    owner = r.raw(32, "owner id")
    node_key = r.raw(32, "node key")
    issued_at = r.u64("issued at")
    name = r.text("device name", MAX_NAME)
    body_end = r.pos
    signature = r.raw(signing.SIGNATURE_SIZE, "signature")
    r.end()
    signing.verify(owner, DOMAIN, bytes(data[:body_end]), signature, "device certificate")
    if owner_id is not None and owner != owner_id:
        raise IntegrityError("This device certificate belongs to another owner.")
    try:
        _check_name(name)
    except ValueError:
        raise IntegrityError("The device certificate has an invalid device name.") from None
    return DeviceCertificate(owner, node_key, name, issued_at)
