"""Pairing: codes, friend cards, and the two state machines driven alone.

Each machine is fed events by hand and its actions are recorded, then compared
with the exact list expected (magic-wormhole's way). With the randomness fixed,
a successful pairing's frames are pinned byte for byte: they are the ones the
first release (the ``Pairing`` class) put on the wire, so new nodes pair with old.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pbackup.core.certificate import issue_certificate
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.pairing import (
    MISMATCH,
    NOT_HERE,
    Failed,
    FrameKind,
    Invite,
    InviteCode,
    Inviter,
    Joiner,
    Paired,
    Send,
    frame,
    make_card,
    new_code,
    parse_code,
    read_card,
)
from p2pbackup.errors import IntegrityError, InviteNotHere, PairingError

ANN = OwnerKeys.from_secret(bytes(range(32)))
BOB = OwnerKeys.from_secret(bytes(32))
ANN_NODE, BOB_NODE = b"\x0a" * 32, b"\x0b" * 32
CODE = InviteCode(7, ("guitar", "reveal", "orbit"))
WRONG = InviteCode(7, ("guitar", "reveal", "zoo"))


def _card(keys: OwnerKeys, name: str, node_key: bytes = bytes(range(32))) -> bytes:
    cert = issue_certificate(keys, node_key, f"{name}'s laptop", 1_764_000_000)
    return make_card(keys, name, cert, ["/ip4/127.0.0.1/tcp/4001"], 20 << 30)


ANN_CARD, BOB_CARD = _card(ANN, "Ann", ANN_NODE), _card(BOB, "Bob", BOB_NODE)


def _fixed(seed: bytes):
    """Deterministic randomness: SPAKE2's scalar, then the card nonce."""
    counter = iter(range(1 << 30))

    def random(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + next(counter).to_bytes(4, "big")).digest()
        return out[:n]

    return random


class _Claims:
    """The inviter node's pending invites, as its machine sees them: one claim each."""

    def __init__(self, *codes: InviteCode) -> None:
        self.pending = {c.nameplate: Invite(c, ANN_CARD) for c in codes}
        self.asked: list[int] = []

    def __call__(self, nameplate: int) -> Invite | None:
        self.asked.append(nameplate)
        return self.pending.pop(nameplate, None)  # used up, right or wrong


def _inviter(*codes: InviteCode, peer: bytes = BOB_NODE, seed: bytes = b"inviter") -> Inviter:
    return Inviter(_Claims(*(codes or (CODE,))), peer, _fixed(seed))


def _joiner(code: InviteCode = CODE, peer: bytes = ANN_NODE, seed: bytes = b"joiner") -> Joiner:
    return Joiner(code, BOB_CARD, peer, _fixed(seed))


def _plain(actions: list) -> list:
    """Actions as comparable values (an exception compares by identity)."""
    out = []
    for a in actions:
        if isinstance(a, Send):
            out.append(("send", frame(a.kind, a.payload).hex()))
        elif isinstance(a, Paired):
            out.append(("paired", a.card.owner_id, a.card.name))
        else:
            assert isinstance(a, Failed)
            out.append(("failed", type(a.error).__name__, a.error.message))
    return out


def _sent(actions: list) -> list[bytes]:
    return [a.payload for a in actions if isinstance(a, Send)]


# Frames of one successful pairing, as the first release wrote them with this randomness.
NAMEPLATE_FRAME = "0100020007"
JOINER_PAKE = "01002153f4241d4bd1c8bac51392a52e52fb2db1fd5966c6a50322416a6e2e6974f47ed6"
INVITER_PAKE = "010021530ab6e4c988d14ca690bbf959f086f2fbd333f3132cef76b04a4c21e096a65514"
INVITER_CONFIRM = "010020519eb6483c4a42fb860ad67c3502a3d7a21ad61af241d48f6f1669bd7bd4c1e5"
JOINER_CONFIRM = "0100205f867e45732350fdbe2dd26c1799a389d0261372ca23405760f936be399e9d3d"
SEALED_SHA256 = {  # sealed cards in their frames, 334 bytes each
    "joiner": "ad2e159204b57f250b4797dc0519117d9b972d48bb1204700153943ac36ef402",
    "inviter": "7e02175b5e1adcc9e67501af26346b4a99e8516c27a840c68b9fd3f6381096d8",
}
NOT_HERE_FRAME = (
    "030035"  # kind 3, 53 bytes
    "5468617420696e7669746520636f646520697320756e6b6e6f776e20686572652c2075736564207570206f72"
    "20657870697265642e"
)


def _payload(frame_hex: str) -> bytes:
    return bytes.fromhex(frame_hex)[3:]


def _sealed_frame(actions: list) -> str:
    sealed = [a for a in actions if isinstance(a, Send) and len(a.payload) > 100]
    return hashlib.sha256(frame(sealed[0].kind, sealed[0].payload)).hexdigest()


def test_the_joiner_with_the_right_code_sends_the_first_release_bytes_and_pairs():
    joiner = _joiner()
    assert _plain(joiner.start()) == [("send", NAMEPLATE_FRAME), ("send", JOINER_PAKE)]
    assert joiner.received(_payload(INVITER_PAKE)) == []
    actions = joiner.received(_payload(INVITER_CONFIRM))
    assert _plain(actions)[0] == ("send", JOINER_CONFIRM)
    assert _sealed_frame(actions) == SEALED_SHA256["joiner"]
    assert len(actions) == 2
    inviter = _inviter()
    inviter.start()
    for message in (NAMEPLATE_FRAME, JOINER_PAKE, JOINER_CONFIRM):
        inviter.received(_payload(message))
    inviter_card = [a for a in inviter.received(_sent(actions)[1]) if isinstance(a, Send)]
    assert _plain(joiner.received(inviter_card[0].payload)) == [("paired", ANN.owner_id, "Ann")]
    assert joiner.done


def test_the_inviter_with_the_right_code_sends_the_first_release_bytes_and_pairs():
    claims = _Claims(CODE)
    inviter = Inviter(claims, BOB_NODE, _fixed(b"inviter"))
    assert inviter.start() == []
    assert inviter.received(_payload(NAMEPLATE_FRAME)) == []
    assert claims.asked == [7] and claims.pending == {}  # used up at once, before any guess
    assert _plain(inviter.received(_payload(JOINER_PAKE))) == [
        ("send", INVITER_PAKE),
        ("send", INVITER_CONFIRM),
    ]
    assert inviter.received(_payload(JOINER_CONFIRM)) == []
    joiner = _joiner()
    joiner.start()
    joiner.received(_payload(INVITER_PAKE))
    joiner_card = _sent(joiner.received(_payload(INVITER_CONFIRM)))[1]
    actions = inviter.received(joiner_card)
    assert _sealed_frame(actions) == SEALED_SHA256["inviter"]
    assert _plain(actions)[1:] == [("paired", BOB.owner_id, "Bob")]
    card = actions[1].card
    assert (card.certificate.device_name, card.offered_quota) == ("Bob's laptop", 20 << 30)
    assert card.addresses == ("/ip4/127.0.0.1/tcp/4001",)


def _run_joiner_until_confirmation(code: InviteCode) -> tuple[Joiner, list]:
    """A joiner with ``code`` against an inviter holding CODE; the inviter's actions so far."""
    inviter, joiner = _inviter(), _joiner(code)
    inviter.start()
    for message in _sent(joiner.start()):
        answer = inviter.received(message)
    for message in _sent(answer)[:1]:
        assert joiner.received(message) == []
    return joiner, answer


def test_a_wrong_code_stops_the_joiner_at_the_inviters_confirmation():
    joiner, inviter_said = _run_joiner_until_confirmation(WRONG)
    assert _plain(joiner.received(_sent(inviter_said)[1])) == [
        ("send", frame(FrameKind.ERROR, MISMATCH.encode()).hex()),
        ("failed", "InviteMismatch", MISMATCH),  # its own class: the app says "wrong code"
    ]
    assert joiner.done and joiner.received(b"\x00" * 32) == []  # spent


def test_a_wrong_code_stops_the_inviter_and_burns_the_code():
    claims = _Claims(CODE)
    inviter = Inviter(claims, BOB_NODE, _fixed(b"inviter"))
    inviter.start()
    for message in _sent(_joiner(WRONG).start()):
        inviter.received(message)
    # The joiner sees the mismatch first and tells; an old or hostile one may instead
    # send a confirmation anyway. Both fail, and the code is gone either way.
    told = Inviter(_Claims(CODE), BOB_NODE, _fixed(b"inviter"))
    told.start()
    for message in _sent(_joiner(WRONG).start()):
        told.received(message)
    assert _plain(told.peer_failed(FrameKind.ERROR, MISMATCH)) == [
        ("failed", "PairingError", f"The joiner stopped pairing: {MISMATCH}")
    ]
    assert _plain(inviter.received(bytes(32))) == [
        ("send", frame(FrameKind.ERROR, MISMATCH.encode()).hex()),
        ("failed", "InviteMismatch", MISMATCH),  # its own class: the app says "wrong code"
    ]
    again = Inviter(claims, BOB_NODE, _fixed(b"inviter"))
    again.start()
    assert _plain(again.received(_payload(NAMEPLATE_FRAME))) == [
        ("send", NOT_HERE_FRAME),
        ("failed", "InviteNotHere", NOT_HERE),
    ]
    assert claims.asked == [7, 7]


def test_a_nameplate_not_pending_is_answered_not_here_and_uses_nothing():
    claims = _Claims(InviteCode(8, CODE.words))
    inviter = Inviter(claims, BOB_NODE, _fixed(b"inviter"))
    inviter.start()
    assert _plain(inviter.received(b"\x00\x07")) == [
        ("send", NOT_HERE_FRAME),
        ("failed", "InviteNotHere", NOT_HERE),
    ]
    assert 8 in claims.pending  # another invite on this node is untouched
    joiner = _joiner()
    joiner.start()
    assert _plain(joiner.peer_failed(FrameKind.NOT_HERE, NOT_HERE)) == [
        ("failed", "InviteNotHere", NOT_HERE)
    ]
    assert joiner.peer_failed(FrameKind.ERROR, "late") == []  # spent: ignored
    late = _joiner()  # NOT_HERE answers the nameplate, nothing later: no skipping mid-PAKE
    late.start()
    late.received(_payload(INVITER_PAKE))
    assert _plain(late.peer_failed(FrameKind.NOT_HERE, NOT_HERE)) == [
        ("failed", "PairingError", "The inviting node sent something that is not part of pairing.")
    ]


def test_the_not_here_frame_and_an_error_frame_are_fixed():
    assert frame(FrameKind.NOT_HERE, NOT_HERE.encode()).hex() == NOT_HERE_FRAME
    assert frame(FrameKind.ERROR, b"stop").hex() == "02000473746f70"
    assert frame(FrameKind.DATA, b"\x00\x07").hex() == NAMEPLATE_FRAME
    assert (FrameKind.DATA, FrameKind.ERROR, FrameKind.NOT_HERE) == (1, 2, 3)


def _malformed(state: str) -> list:
    text = f"The other node's pairing message is malformed or out of turn (this side was {state})."
    return [("send", frame(FrameKind.ERROR, text.encode()).hex()), ("failed", "PairingError", text)]


def test_malformed_messages_fail_cleanly():
    inviter = _inviter()
    inviter.start()
    assert _plain(inviter.received(b"\x07")) == _malformed("waiting for the nameplate")
    inviter = _inviter()
    inviter.start()
    inviter.received(b"\x00\x07")
    assert _plain(inviter.received(b"\xff" * 33)) == _malformed("waiting for the SPAKE2 message")
    joiner = _joiner()
    joiner.start()
    assert _plain(joiner.received(b"short")) == _malformed("waiting for the SPAKE2 message")
    joiner = _joiner()
    joiner.start()
    assert _plain(joiner.peer_failed(9, "\x1b[2Jhello")) == [
        ("failed", "PairingError", "The inviting node sent something that is not part of pairing.")
    ]


def test_messages_out_of_turn_fail_as_such_not_as_a_wrong_code():
    inviter = _inviter()
    inviter.start()
    inviter.received(b"\x00\x07")
    # The joiner's confirmation where its SPAKE2 message belongs.
    assert _plain(inviter.received(_payload(JOINER_CONFIRM))) == _malformed(
        "waiting for the SPAKE2 message"
    )
    joiner = _joiner()
    joiner.start()
    joiner.received(_payload(INVITER_PAKE))
    # A card where the confirmation belongs: out of turn, not "the code does not match".
    assert _plain(joiner.received(bytes(334))) == _malformed("waiting for the key confirmation")
    early = _joiner()  # data before start
    assert _plain(early.received(_payload(INVITER_PAKE))) == _malformed("new")


def test_an_error_from_the_peer_reaches_the_user_without_control_characters():
    joiner = _joiner()
    joiner.start()
    assert _plain(joiner.peer_failed(FrameKind.ERROR, "busy\x1b[31m")) == [
        ("failed", "PairingError", "The inviting node stopped pairing: busy?[31m")
    ]
    assert _plain(_joiner().broke("")) == [
        ("failed", "PairingError", "The pairing connection broke: no reason given.")
    ]
    inviter = _inviter()  # its card could not be sent: not paired after all
    inviter.start()
    for message in (NAMEPLATE_FRAME, JOINER_PAKE, JOINER_CONFIRM):
        inviter.received(_payload(message))
    assert isinstance(inviter.received(_sent(_joiner_to_card())[1])[1], Paired)
    assert _plain(inviter.broke("reset")) == [
        ("failed", "PairingError", "The pairing connection broke: reset.")
    ]


def test_a_card_for_another_device_is_refused_by_each_side():
    text = "The friend card is for another device than the one connected."
    refused = [
        ("send", frame(FrameKind.ERROR, text.encode()).hex()),
        ("failed", "PairingError", text),
    ]
    joiner = _joiner(peer=b"\x0c" * 32)  # connected to a node that is not Ann's
    joiner.start()
    joiner.received(_payload(INVITER_PAKE))
    joiner.received(_payload(INVITER_CONFIRM))
    inviter = _inviter()
    inviter.start()
    for message in (NAMEPLATE_FRAME, JOINER_PAKE, JOINER_CONFIRM):
        inviter.received(_payload(message))
    right = _joiner()
    right.start()
    right.received(_payload(INVITER_PAKE))
    ann_card = _sent(inviter.received(_sent(right.received(_payload(INVITER_CONFIRM)))[1]))[0]
    assert _plain(joiner.received(ann_card)) == refused
    inviter = _inviter(peer=b"\x0c" * 32)
    inviter.start()
    for message in (NAMEPLATE_FRAME, JOINER_PAKE, JOINER_CONFIRM):
        inviter.received(_payload(message))
    bob_card = _sent(_joiner_to_card())[1]
    assert _plain(inviter.received(bob_card)) == refused


def _joiner_to_card() -> list:
    joiner = _joiner()
    joiner.start()
    joiner.received(_payload(INVITER_PAKE))
    return joiner.received(_payload(INVITER_CONFIRM))


@given(st.lists(st.binary(max_size=80), max_size=5))
def test_garbage_never_raises_and_ends_in_failure_or_silence(messages):
    inviter, joiner = _inviter(seed=b"g"), _joiner(seed=b"g")
    inviter.start()
    joiner.start()
    for side, first in ((inviter, [b"\x00\x07"]), (joiner, [])):
        for message in [*first, *messages]:
            for action in side.received(message):
                assert isinstance(action, Send | Failed)
                if isinstance(action, Failed):
                    assert isinstance(action.error, PairingError)


def test_codes_are_forgiving_as_typed():
    assert parse_code("  7 Guitar-REVEAL orbit ") == InviteCode(7, ("guitar", "reveal", "orbit"))
    assert parse_code("7-guit-reve-orbi") == InviteCode(7, ("guitar", "reveal", "orbit"))
    assert str(InviteCode(7, ("guitar", "reveal", "orbit"))) == "7-guitar-reveal-orbit"
    for bad in ("guitar-revenge-orbit", "7-guitar-revenge", "7-gitar-revenge-orbit", "0-a-b-c"):
        with pytest.raises(PairingError):
            parse_code(bad)


@given(st.integers(0, 2**16))
def test_new_codes_parse_back(_):
    code = new_code()
    assert parse_code(str(code)) == code


def test_a_forged_or_damaged_card_is_refused():
    card = _card(ANN, "Ann")
    assert read_card(card).owner_id == ANN.owner_id
    for position in range(0, len(card), 7):
        damaged = bytearray(card)
        damaged[position] ^= 1
        with pytest.raises(IntegrityError):
            read_card(bytes(damaged))


def test_a_card_naming_someone_elses_device_is_refused():
    cert = issue_certificate(BOB, bytes(range(32)), "not yours", 1)
    with pytest.raises(IntegrityError, match="another owner"):
        read_card(make_card(ANN, "Ann", cert, [], 1))


def test_invite_not_here_is_a_pairing_error():
    assert issubclass(InviteNotHere, PairingError) and InviteNotHere().exit_code == 6
