"""Pairing two friends with a short code: the PAKE state machine and friend cards.

An invite code such as ``7-guitar-reveal-orbit`` is a nameplate (which
pending invite, on the inviter's node) and three words (the password, 33
bits). Both sides run SPAKE2 on the password: a wrong code yields different
keys, which key confirmation catches, so an attacker gets exactly one guess
per code and a man in the middle learns nothing. Then each side sends its
signed friend card encrypted under the agreed key.

Pure: messages in, messages out (SPAKE2 draws its own randomness). The net
layer moves the messages; see ``net/invite.py``.

Messages, in order::

    joiner  -> inviter   nameplate (net layer), then SPAKE2 message (33 bytes)
    inviter -> joiner    SPAKE2 message, inviter confirmation (32 bytes)
    joiner  -> inviter   joiner confirmation, sealed joiner card
    inviter -> joiner    sealed inviter card

Friend card (inside XChaCha20-Poly1305 under the pairing key)::

    magic b"P2FC" | version 1 | owner id 32 | name blob (<= 64) |
    device certificate blob | address count u8, addresses blob each |
    offered quota varint | signature 64 (owner key, domain "friend-card_v1")
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import Enum

import nacl.utils
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError
from spake2 import SPAKE2_Symmetric

from p2pbackup.core import signing
from p2pbackup.core.certificate import DeviceCertificate, verify_certificate
from p2pbackup.core.codec import Reader, Writer
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.phrase import check_word
from p2pbackup.core.wordlist import WORDS
from p2pbackup.errors import FormatError, IntegrityError, PairingError

CODE_WORDS = 3
MAX_NAMEPLATE = 999
PAKE_ID_v1 = b"p2pbackup-pair_v1"  # frozen
CARD_DOMAIN = b"friend-card_v1"  # frozen
CARD_MAGIC = b"P2FC"
CARD_VERSION = 1
_CONFIRM_PERSON = b"p2pb-confirm_v1"
_CARD_KEY_PERSON = b"p2pb-cardkey_v1"

DEFAULT_VALIDITY = 600  # seconds an invite code stays usable


@dataclass(frozen=True)
class InviteCode:
    nameplate: int
    words: tuple[str, ...]

    def __str__(self) -> str:
        return "-".join((str(self.nameplate), *self.words))

    @property
    def password(self) -> bytes:
        return " ".join(self.words).encode()


def new_code() -> InviteCode:
    rnd = nacl.utils.random(2 + 2 * CODE_WORDS)
    nameplate = 1 + int.from_bytes(rnd[:2], "big") % MAX_NAMEPLATE
    words = tuple(
        WORDS[int.from_bytes(rnd[2 + 2 * i : 4 + 2 * i], "big") % len(WORDS)]
        for i in range(CODE_WORDS)
    )
    return InviteCode(nameplate, words)


def parse_code(text: str) -> InviteCode:
    """Read a code as typed: case, spaces and hyphens or spaces between parts are forgiven."""
    parts = [p for p in re.split(r"[\s\-]+", text.strip().lower()) if p]
    if len(parts) != 1 + CODE_WORDS or not parts[0].isdigit():
        raise PairingError(
            f"{text.strip()!r} is not an invite code; it looks like 7-guitar-reveal-orbit."
        )
    words = []
    for position, typed in enumerate(parts[1:], 1):
        word = check_word(typed)
        if word is None:
            raise PairingError(f"Word {position} of the invite code, {typed!r}, is not one we use.")
        words.append(word)
    nameplate = int(parts[0])
    if not 1 <= nameplate <= MAX_NAMEPLATE:
        raise PairingError(f"An invite code starts with a number from 1 to {MAX_NAMEPLATE}.")
    return InviteCode(nameplate, tuple(words))


@dataclass(frozen=True)
class FriendCard:
    owner_id: bytes
    name: str
    certificate: DeviceCertificate
    certificate_bytes: bytes
    addresses: tuple[str, ...]
    offered_quota: int


def make_card(
    keys: OwnerKeys, name: str, certificate: bytes, addresses: list[str], offered_quota: int
) -> bytes:
    w = Writer().raw(CARD_MAGIC).u8(CARD_VERSION).raw(keys.owner_id).text(name[:64])
    w.blob(certificate).u8(min(len(addresses), 16))
    for address in addresses[:16]:
        w.text(address)
    body = w.varint(offered_quota).getvalue()
    return body + signing.sign(keys.signing_key, CARD_DOMAIN, body)


def read_card(data: bytes) -> FriendCard:
    r = Reader(data, "friend card")
    r.magic(CARD_MAGIC)
    r.version(CARD_VERSION)
    owner_id = r.raw(32, "owner id")
    name = r.text("name", 256)
    certificate_bytes = r.blob("certificate", 1024)
    addresses = tuple(r.text("address", 1024) for _ in range(r.u8("address count")))
    quota = r.varint("offered quota")
    body_end = r.pos
    signature = r.raw(signing.SIGNATURE_SIZE, "signature")
    r.end()
    signing.verify(owner_id, CARD_DOMAIN, data[:body_end], signature, "friend card")
    certificate = verify_certificate(certificate_bytes, owner_id)
    return FriendCard(owner_id, name, certificate, certificate_bytes, addresses, quota)


class Role(Enum):
    INVITER = "inviter"
    JOINER = "joiner"


class Pairing:
    """One side of a pairing. Feed it the peer's messages; it returns what to send.

    Any failure is a PairingError; after a failure the object is spent, and the
    inviter must burn the code (one guess per code).
    """

    def __init__(self, role: Role, code: InviteCode, my_card: bytes) -> None:
        self._role = role
        self._code = code
        self._card = my_card
        self._pake = SPAKE2_Symmetric(
            code.password, idSymmetric=PAKE_ID_v1 + b"%d" % code.nameplate
        )
        self._key: bytes | None = None

    def start(self) -> bytes:
        """Our SPAKE2 message."""
        return self._pake.start()

    def _confirmation(self, who: Role) -> bytes:
        assert self._key is not None
        return hashlib.blake2b(
            who.value.encode(), key=self._key, digest_size=32, person=_CONFIRM_PERSON
        ).digest()

    def receive_pake(self, message: bytes) -> bytes:
        """Take the peer's SPAKE2 message; returns our confirmation."""
        try:
            self._key = self._pake.finish(message)
        except Exception as exc:  # spake2 raises assorted types (even AssertionError) on bad input
            raise PairingError("The friend's pairing message is malformed.") from exc
        return self._confirmation(self._role)

    def check_confirmation(self, confirmation: bytes) -> None:
        """Raise PairingError unless the peer derived the same key (typed the same code)."""
        other = Role.JOINER if self._role is Role.INVITER else Role.INVITER
        if self._key is None or not hmac.compare_digest(confirmation, self._confirmation(other)):
            raise PairingError(
                "The invite code does not match: it was mistyped, or someone else tried to "
                "use it. The code is now used up; ask your friend for a new one."
            )

    def _card_key(self) -> bytes:
        assert self._key is not None
        return hashlib.blake2b(self._key, digest_size=32, person=_CARD_KEY_PERSON).digest()

    def sealed_card(self) -> bytes:
        nonce = nacl.utils.random(24)
        ad = self._role.value.encode()
        return nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(
            self._card, ad, nonce, self._card_key()
        )

    def open_card(self, sealed: bytes) -> FriendCard:
        other = Role.JOINER if self._role is Role.INVITER else Role.INVITER
        try:
            card = crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed[24:], other.value.encode(), sealed[:24], self._card_key()
            )
            return read_card(card)
        except (CryptoError, ValueError, IntegrityError, FormatError) as exc:
            raise PairingError(f"The friend's card could not be read: {exc}") from exc
