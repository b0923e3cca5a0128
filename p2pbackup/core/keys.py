"""Every key of an owner, derived from the 32-byte recovery secret.

Each derived key is BLAKE2b-256 keyed with the secret, with a fixed
personalisation and the purpose tag as the message::

    key = BLAKE2b(digest_size=32, key=secret, person=b"p2pbackup-kdf", data=tag)

The owner signing key is the Ed25519 key seeded with the owner-signing key;
its public half is the owner id, which friends know the owner by. A lost
laptop plus the phrase gives back the same keys, hence the same owner.

Nothing here is stored: the keys are recomputed from the secret whenever they
are needed, so there is no key file format. ``docs/formats/keys.md`` records
the construction and the frozen tags.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import nacl.utils
from nacl.signing import SigningKey

from p2pbackup.errors import ConfigError

SECRET_SIZE = 32
KEY_SIZE = 32
_KDF_PERSON = b"p2pbackup-kdf"

# Frozen purpose tags: changing any of them changes every key derived with it
# and breaks every existing backup (and the owner id friends know us by).
OWNER_SIGNING_TAG = b"owner-signing_v1"
DATA_TAG = b"data_v1"
RECORD_ID_TAG = b"record-id_v1"
CATALOG_TAG = b"catalog_v1"
HEAD_TAG = b"head_v1"


def new_secret() -> bytes:
    """A fresh recovery secret."""
    return nacl.utils.random(SECRET_SIZE)


def derive_key(secret: bytes, tag: bytes) -> bytes:
    """The 32-byte key for one purpose."""
    if not isinstance(secret, bytes) or len(secret) != SECRET_SIZE:
        raise ConfigError(f"A recovery secret is {SECRET_SIZE} bytes.")
    return hashlib.blake2b(tag, digest_size=KEY_SIZE, key=secret, person=_KDF_PERSON).digest()


def owner_fingerprint(owner_id: bytes) -> str:
    """A short form people can compare, e.g. ``032e-7e81-1682-bfa2``: the first 8 bytes."""
    text = owner_id[:8].hex()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


@dataclass(frozen=True)
class OwnerKeys:
    """The keys of one owner. The recovery secret itself is not kept here."""

    signing_key: SigningKey
    owner_id: bytes
    data_key: bytes
    record_id_key: bytes
    catalog_key: bytes
    head_key: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> OwnerKeys:
        signing_key = SigningKey(derive_key(secret, OWNER_SIGNING_TAG))
        return cls(
            signing_key=signing_key,
            owner_id=bytes(signing_key.verify_key),
            data_key=derive_key(secret, DATA_TAG),
            record_id_key=derive_key(secret, RECORD_ID_TAG),
            catalog_key=derive_key(secret, CATALOG_TAG),
            head_key=derive_key(secret, HEAD_TAG),
        )

    def __repr__(self) -> str:
        # Keys end up in logs and tracebacks through repr: show only who they belong to.
        return f"OwnerKeys(owner {owner_fingerprint(self.owner_id)})"
