"""Pairing: codes, the PAKE exchange with key confirmation, and friend cards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pbackup.core.certificate import issue_certificate
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.pairing import (
    InviteCode,
    Pairing,
    Role,
    make_card,
    new_code,
    parse_code,
    read_card,
)
from p2pbackup.errors import IntegrityError, P2PBackupError, PairingError

ANN = OwnerKeys.from_secret(bytes(range(32)))
BOB = OwnerKeys.from_secret(bytes(32))


def _card(keys: OwnerKeys, name: str) -> bytes:
    cert = issue_certificate(keys, bytes(range(32)), f"{name}'s laptop", 1_764_000_000)
    return make_card(keys, name, cert, ["/ip4/127.0.0.1/tcp/4001"], 20 << 30)


def _exchange(inviter_code: InviteCode, joiner_code: InviteCode):
    inviter = Pairing(Role.INVITER, inviter_code, _card(ANN, "Ann"))
    joiner = Pairing(Role.JOINER, joiner_code, _card(BOB, "Bob"))
    joiner_pake = joiner.start()
    inviter_pake = inviter.start()
    inviter_confirm = inviter.receive_pake(joiner_pake)
    joiner_confirm = joiner.receive_pake(inviter_pake)
    joiner.check_confirmation(inviter_confirm)
    inviter.check_confirmation(joiner_confirm)
    bob_card = inviter.open_card(joiner.sealed_card())
    ann_card = joiner.open_card(inviter.sealed_card())
    return ann_card, bob_card


def test_the_right_code_pairs_and_swaps_cards():
    code = new_code()
    ann, bob = _exchange(code, parse_code(str(code)))
    assert (ann.owner_id, ann.name, ann.offered_quota) == (ANN.owner_id, "Ann", 20 << 30)
    assert bob.owner_id == BOB.owner_id
    assert bob.certificate.device_name == "Bob's laptop"
    assert ann.addresses == ("/ip4/127.0.0.1/tcp/4001",)


def test_a_wrong_code_fails_key_confirmation():
    code = new_code()
    wrong = InviteCode(
        code.nameplate, (*code.words[:2], "zoo" if code.words[2] != "zoo" else "zebra")
    )
    with pytest.raises(PairingError, match="does not match"):
        _exchange(code, wrong)


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


@given(st.binary(max_size=200))
def test_garbage_messages_raise_pairing_errors(data):
    side = Pairing(Role.INVITER, new_code(), _card(ANN, "Ann"))
    side.start()
    with pytest.raises(P2PBackupError):
        side.receive_pake(data)
        side.check_confirmation(data)
