"""Ed25519 signatures with domain separation.

Every signed structure names its purpose (a frozen ``_v1`` domain), so a
signature made for one thing (a device certificate) can never be replayed as
another (a head, a remove request). The signed bytes are::

    b"p2pbackup\\x00" + domain + b"\\x00" + message
"""

from __future__ import annotations

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from p2pbackup.errors import IntegrityError

SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32

_PREFIX = b"p2pbackup\x00"


def _signed_bytes(domain: bytes, message: bytes) -> bytes:
    if b"\x00" in domain:
        raise ValueError("a signing domain cannot contain NUL")
    return _PREFIX + domain + b"\x00" + message


def sign(signing_key: SigningKey, domain: bytes, message: bytes) -> bytes:
    """The 64-byte signature of ``message`` for ``domain``."""
    return signing_key.sign(_signed_bytes(domain, message)).signature


def verify(public_key: bytes, domain: bytes, message: bytes, signature: bytes, what: str) -> None:
    """Raise IntegrityError unless ``signature`` is ``public_key``'s over ``message``.

    ``what`` names the thing checked, for the error message.
    """
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        raise IntegrityError(f"{what}: the signature or key has the wrong size")
    try:
        VerifyKey(public_key).verify(_signed_bytes(domain, message), signature)
    except (BadSignatureError, ValueError, TypeError):
        raise IntegrityError(
            f"{what}: the signature does not verify; it was forged or damaged"
        ) from None
