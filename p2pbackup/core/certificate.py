"""Device certificates: the owner key vouches for a device's node key.

Each device has its own random libp2p Ed25519 key. Friends accept any device
whose certificate is signed by an owner they paired with, which is how a new
laptop restored from the phrase is recognised.

Layout (integers big-endian)::

    offset  size  field
    0       4     magic b"P2BC"
    4       1     version = 1
    5       32    owner id (the owner's Ed25519 public key)
    37      32    node key (Ed25519 public key of the device's libp2p identity)
    69      8     issued at, unix seconds (u64)
    77      1     n, the length of the device name (a varint; 1..64 fits in one byte)
    78      n     device name, UTF-8, no control or format characters
    end-64  64    Ed25519 signature by the owner key over every byte before it,
                  domain b"device-cert_v1" (see core/signing.py)

A certificate has no expiry: it names a device, and the owner withdraws a
device by other means (the friend list in the head).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from p2pbackup.core import signing
from p2pbackup.core.codec import Reader, Writer
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.errors import ConfigError, FormatError, IntegrityError

MAGIC = b"P2BC"
VERSION = 1
# Frozen: changing it invalidates every device certificate ever issued.
DOMAIN = b"device-cert_v1"
MAX_NAME_BYTES = 64
_MAX_U64 = 2**64 - 1


@dataclass(frozen=True)
class DeviceCertificate:
    """What a verified certificate says: this node key is a device of this owner."""

    owner_id: bytes
    node_key: bytes
    device_name: str
    issued_at: int


def issue_certificate(keys: OwnerKeys, node_key: bytes, device_name: str, issued_at: int) -> bytes:
    """The signed certificate for a device; ConfigError if an input cannot be certified."""
    if len(node_key) != signing.PUBLIC_KEY_SIZE:
        raise ConfigError(
            f"A node key is a {signing.PUBLIC_KEY_SIZE}-byte Ed25519 public key, "
            f"not {len(node_key)} bytes."
        )
    problem = _name_problem(device_name)
    if problem:
        raise ConfigError(f"The device name {device_name!r} {problem}.")
    if not 0 <= issued_at <= _MAX_U64:
        raise ConfigError(f"The issue time {issued_at} is not a valid unix time.")
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
    """The certificate in ``data``, once its signature checks out.

    With ``owner_id``, also insist that it was issued by that owner.
    Raises FormatError or IntegrityError, never anything else.
    """
    reader = Reader(data, "device certificate")
    reader.magic(MAGIC)
    reader.version(VERSION)
    owner = reader.raw(signing.PUBLIC_KEY_SIZE, "owner id")
    node_key = reader.raw(signing.PUBLIC_KEY_SIZE, "node key")
    issued_at = reader.u64("issued at")
    name = reader.text("device name", MAX_NAME_BYTES)
    body_end = reader.pos
    signature = reader.raw(signing.SIGNATURE_SIZE, "signature")
    reader.end()
    signing.verify(owner, DOMAIN, bytes(data[:body_end]), signature, "device certificate")
    if owner_id is not None and owner != owner_id:
        raise IntegrityError("This device certificate belongs to another owner.")
    problem = _name_problem(name)
    if problem:
        # Only the owner's own software could have signed this: a bug, not an attack.
        raise FormatError(f"device certificate: the device name {problem}")
    return DeviceCertificate(owner, node_key, name, issued_at)


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a device name, or None if it can."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid text"
    if not 1 <= size <= MAX_NAME_BYTES:
        return f"must be 1 to {MAX_NAME_BYTES} bytes of UTF-8, not {size}"
    # Control characters break logs and lists; format characters (bidi overrides,
    # zero-width marks) can make one name look like another in the UI.
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in name):
        return "contains control or invisible characters"
    return None
