"""Pairing two friends with a short code: the PAKE state machine and friend cards.

An invite code such as ``7-guitar-reveal-orbit`` is a nameplate (which
pending invite, on the inviter's node) and three words (the password, 33
bits). Both sides run SPAKE2 on the password: a wrong code yields different
keys, which key confirmation catches, so an attacker gets exactly one guess
per code and a man in the middle learns nothing. Then each side sends its
signed friend card encrypted under the agreed key.

One small state machine per side (``Inviter``, ``Joiner``), after
magic-wormhole: events in (``start``, ``received`` for a data frame,
``peer_failed`` for an error frame, ``broke`` when the stream fails), a list
of actions out (``Send`` a frame, then ``Paired`` or ``Failed``). Pure: no
I/O, and the randomness is a parameter. ``net/invite.py`` only moves frames.
Each machine also checks that the friend card's device certificate names the
node key of the peer it was made for, so a card relayed from elsewhere fails.

Messages, in order (each a DATA frame; see ``FrameKind`` for the others)::

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
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import TYPE_CHECKING

import nacl.utils
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

from p2pbackup.core import signing
from p2pbackup.core.certificate import DeviceCertificate, verify_certificate
from p2pbackup.core.codec import Reader, Writer
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.phrase import check_word
from p2pbackup.core.wordlist import WORDS
from p2pbackup.errors import (
    FormatError,
    IntegrityError,
    InviteMismatch,
    InviteNotHere,
    PairingError,
)

if TYPE_CHECKING:  # imported where a pairing starts: its group tables take 20 ms to build
    from spake2 import SPAKE2_Symmetric

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


# -- Frames -------------------------------------------------------------------------------
# Each message on the pairing stream: kind u8 | length u16 | payload. The kinds and their
# bytes are frozen (docs/format.md, "Pairing"); the net layer only reads and writes frames.

FRAME_HEADER = struct.Struct(">BH")
_MAX_TEXT = 1000  # bytes of an error's text put on the wire


class FrameKind(IntEnum):
    DATA = 1  # the next protocol message
    ERROR = 2  # the sender stops; payload: UTF-8 text for the user
    NOT_HERE = 3  # the inviter holds no pending invite by that nameplate; nothing was used up


def frame(kind: FrameKind, payload: bytes) -> bytes:
    return FRAME_HEADER.pack(kind, len(payload)) + payload


# -- Events out ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Put this frame on the stream."""

    kind: FrameKind
    payload: bytes


@dataclass(frozen=True)
class Paired:
    """Done: this is the friend's card (its device is the node at the other end)."""

    card: FriendCard


@dataclass(frozen=True)
class Failed:
    """Done, without a friend. After this the machine ignores every event."""

    error: PairingError


Action = Send | Paired | Failed


@dataclass(frozen=True)
class Invite:
    """What the inviter's node gives its machine for a nameplate it holds."""

    code: InviteCode
    card: bytes


class _State(Enum):
    NEW = "new"
    NAMEPLATE = "waiting for the nameplate"
    PAKE = "waiting for the SPAKE2 message"
    CONFIRM = "waiting for the key confirmation"
    CARD = "waiting for the friend card"
    DONE = "done"


_PAKE_SIZE = 33
_CONFIRM_SIZE = 32
_NAMEPLATE_SIZE = 2
_NONCE_SIZE = 24

MISMATCH = (
    "The invite code does not match: it was mistyped, or someone else tried to "
    "use it. The code is now used up; ask your friend for a new one."
)
NOT_HERE = "That invite code is unknown here, used up or expired."


def _other(role: Role) -> Role:
    return Role.JOINER if role is Role.INVITER else Role.INVITER


def _printable(text: str) -> str:
    # A peer's words reach a terminal: no control characters, bounded length.
    return "".join(c if c.isprintable() else "?" for c in text)[:300]


class _Side:
    """What both sides share: the SPAKE2 run, the confirmations and the sealed cards.

    Events in (``start``, ``received``, ``peer_failed``, ``broke``), a list of
    actions out. Pure: the randomness comes from ``random`` (SPAKE2's scalar,
    the card nonce), so a test can replay a pairing byte for byte.
    """

    role: Role
    _peer_name: str

    def __init__(self, peer_node_key: bytes, random: Callable[[int], bytes]) -> None:
        self._peer_node_key = peer_node_key
        self._random = random
        self._state = _State.NEW
        self._pake: SPAKE2_Symmetric | None = None
        self._key = b""
        self._card = b""

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def peer_failed(self, kind: int, text: str) -> list[Action]:
        """The peer sent an error frame (``kind`` is not DATA): it stopped."""
        if self.done:
            return []
        answering_the_nameplate = self.role is Role.JOINER and self._state is _State.PAKE
        self._state = _State.DONE
        if kind == FrameKind.NOT_HERE and answering_the_nameplate:
            return [Failed(InviteNotHere(NOT_HERE))]
        if kind == FrameKind.ERROR:
            return [Failed(PairingError(f"{self._peer_name} stopped pairing: {_printable(text)}"))]
        return [
            Failed(PairingError(f"{self._peer_name} sent something that is not part of pairing."))
        ]

    def broke(self, reason: str) -> list[Action]:
        """The stream failed or timed out: reading, or sending what this machine asked
        (its last frame too, so even after ``Paired`` was asked for, it fails)."""
        self._state = _State.DONE
        return [
            Failed(PairingError(f"The pairing connection broke: {reason or 'no reason given'}."))
        ]

    def _fail(self, message: str, kind: type[PairingError] = PairingError) -> list[Action]:
        """Stop, and tell the peer why (so its user sees it too)."""
        self._state = _State.DONE
        return [Send(FrameKind.ERROR, message.encode()[:_MAX_TEXT]), Failed(kind(message))]

    def _begin(self, code: InviteCode, card: bytes) -> bytes:
        self._card = card
        from spake2 import SPAKE2_Symmetric

        self._pake = SPAKE2_Symmetric(
            code.password,
            idSymmetric=PAKE_ID_v1 + b"%d" % code.nameplate,
            entropy_f=self._random,
        )
        return self._pake.start()

    def _finish_pake(self, message: bytes) -> bool:
        if self._pake is None or len(message) != _PAKE_SIZE:
            return False
        try:
            self._key = self._pake.finish(message)
        except Exception:  # spake2 raises assorted types (even AssertionError) on bad input
            return False
        return True

    def _confirmation(self, who: Role) -> bytes:
        return hashlib.blake2b(
            who.value.encode(), key=self._key, digest_size=32, person=_CONFIRM_PERSON
        ).digest()

    def _confirmed(self, confirmation: bytes) -> bool:
        return hmac.compare_digest(confirmation, self._confirmation(_other(self.role)))

    def _card_key(self) -> bytes:
        return hashlib.blake2b(self._key, digest_size=32, person=_CARD_KEY_PERSON).digest()

    def _sealed_card(self) -> bytes:
        nonce = self._random(_NONCE_SIZE)
        return nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(
            self._card, self.role.value.encode(), nonce, self._card_key()
        )

    def _open_card(self, sealed: bytes) -> FriendCard | str:
        """The friend's card, or why it is refused."""
        try:
            card = read_card(
                crypto_aead_xchacha20poly1305_ietf_decrypt(
                    sealed[_NONCE_SIZE:],
                    _other(self.role).value.encode(),
                    sealed[:_NONCE_SIZE],
                    self._card_key(),
                )
            )
        except (CryptoError, ValueError, IntegrityError, FormatError) as exc:
            return f"The friend's card could not be read: {exc}"
        if card.certificate.node_key != self._peer_node_key:
            # A card relayed from elsewhere: it must be the connected node's own.
            return "The friend card is for another device than the one connected."
        return card

    def _malformed(self) -> list[Action]:
        return self._fail(
            f"The other node's pairing message is malformed or out of turn "
            f"(this side was {self._state.value})."
        )


class Inviter(_Side):
    """The inviter's side, from the joiner's first message to the cards swapped.

    ``claim(nameplate)`` looks the invite up on this node and marks it used (one
    attempt per code, right or wrong); None if no invite by that nameplate is pending.
    """

    role = Role.INVITER
    _peer_name = "The joiner"

    def __init__(
        self,
        claim: Callable[[int], Invite | None],
        peer_node_key: bytes,
        random: Callable[[int], bytes] = nacl.utils.random,
    ) -> None:
        super().__init__(peer_node_key, random)
        self._claim = claim
        self._pake_message = b""

    def start(self) -> list[Action]:
        """The joiner speaks first."""
        if self._state is _State.NEW:
            self._state = _State.NAMEPLATE
        return []

    def received(self, message: bytes) -> list[Action]:
        """The joiner's next data frame."""
        if self._state is _State.NAMEPLATE:
            if len(message) != _NAMEPLATE_SIZE:
                return self._malformed()
            invite = self._claim(int.from_bytes(message, "big"))
            if invite is None:
                self._state = _State.DONE
                return [
                    Send(FrameKind.NOT_HERE, NOT_HERE.encode()),
                    Failed(InviteNotHere(NOT_HERE)),
                ]
            self._pake_message = self._begin(invite.code, invite.card)
            self._state = _State.PAKE
            return []
        if self._state is _State.PAKE:
            if not self._finish_pake(message):
                return self._malformed()
            self._state = _State.CONFIRM
            return [
                Send(FrameKind.DATA, self._pake_message),
                Send(FrameKind.DATA, self._confirmation(self.role)),
            ]
        if self._state is _State.CONFIRM:
            if len(message) != _CONFIRM_SIZE:
                return self._malformed()
            if not self._confirmed(message):
                return self._fail(MISMATCH, InviteMismatch)
            self._state = _State.CARD
            return []
        if self._state is _State.CARD:
            card = self._open_card(message)
            if isinstance(card, str):
                return self._fail(card)
            self._state = _State.DONE
            return [Send(FrameKind.DATA, self._sealed_card()), Paired(card)]
        if self._state is _State.NEW:
            return self._malformed()
        return []  # done: what follows is ignored


class Joiner(_Side):
    """The joiner's side: names the nameplate, runs SPAKE2, checks the inviter's
    confirmation before sending its own (a wrong code goes no further)."""

    role = Role.JOINER
    _peer_name = "The inviting node"

    def __init__(
        self,
        code: InviteCode,
        my_card: bytes,
        peer_node_key: bytes,
        random: Callable[[int], bytes] = nacl.utils.random,
    ) -> None:
        super().__init__(peer_node_key, random)
        self._code = code
        self._my_card = my_card

    def start(self) -> list[Action]:
        if self._state is not _State.NEW:
            return []
        pake = self._begin(self._code, self._my_card)
        self._state = _State.PAKE
        return [
            Send(FrameKind.DATA, self._code.nameplate.to_bytes(_NAMEPLATE_SIZE, "big")),
            Send(FrameKind.DATA, pake),
        ]

    def received(self, message: bytes) -> list[Action]:
        """The inviter's next data frame."""
        if self._state is _State.PAKE:
            if not self._finish_pake(message):
                return self._malformed()
            self._state = _State.CONFIRM
            return []
        if self._state is _State.CONFIRM:
            if len(message) != _CONFIRM_SIZE:
                return self._malformed()
            if not self._confirmed(message):
                return self._fail(MISMATCH, InviteMismatch)
            self._state = _State.CARD
            return [
                Send(FrameKind.DATA, self._confirmation(self.role)),
                Send(FrameKind.DATA, self._sealed_card()),
            ]
        if self._state is _State.CARD:
            card = self._open_card(message)
            if isinstance(card, str):
                return self._fail(card)
            self._state = _State.DONE
            return [Paired(card)]
        if self._state is _State.NEW:
            return self._malformed()
        return []
