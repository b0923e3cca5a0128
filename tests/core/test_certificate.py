"""Device certificates: a fixed vector, round trips, and every kind of damage caught."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core import signing
from p2pbackup.core.certificate import (
    DOMAIN,
    MAGIC,
    VERSION,
    DeviceCertificate,
    issue_certificate,
    verify_certificate,
)
from p2pbackup.core.codec import Writer
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.errors import ConfigError, FormatError, IntegrityError

KEYS = OwnerKeys.from_secret(bytes(range(32)))
NODE = bytes(range(100, 132))
ISSUED_AT = 1764000000
CERT = issue_certificate(KEYS, NODE, "laptop", ISSUED_AT)


def _signed(body: bytes, keys: OwnerKeys = KEYS, domain: bytes = DOMAIN) -> bytes:
    return body + signing.sign(keys.signing_key, domain, body)


def _body(name: bytes = b"laptop", version: int = VERSION) -> bytes:
    return (
        Writer().raw(MAGIC).u8(version).raw(KEYS.owner_id).raw(NODE).u64(ISSUED_AT).blob(name)
    ).getvalue()


# --- the fixed vector: Ed25519 is deterministic, so the whole certificate is pinned ---


def test_certificate_vector():
    assert CERT.hex() == (
        "5032424301"  # magic "P2BC", version 1
        "032e7e811682bfa282d93f5c1dc2352a8f273a544e1f6395b5ed10f42962b781"  # owner id
        "6465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283"  # node key
        "0000000069248100"  # issued at
        "066c6170746f70"  # device name "laptop"
        "afb5f26fe2f78e45e7dd360a0978b8237931652b6b51d03ad5a3bccdd1a87732"  # signature
        "b7efd5dd079090c183257588e14a0244f3c47b0009ab5d95e3903237e4ae3608"
    )


def test_certificate_round_trip():
    assert verify_certificate(CERT, KEYS.owner_id) == DeviceCertificate(
        owner_id=KEYS.owner_id, node_key=NODE, device_name="laptop", issued_at=ISSUED_AT
    )
    assert verify_certificate(bytearray(CERT)) == verify_certificate(memoryview(CERT))


@settings(max_examples=50, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    st.from_regex(r"[A-Za-z0-9 ’'é💻._-]{1,16}", fullmatch=True),
    st.integers(0, 2**64 - 1),
)
def test_any_certificate_round_trips(secret, node_key, name, issued_at):
    keys = OwnerKeys.from_secret(secret)
    cert = verify_certificate(issue_certificate(keys, node_key, name, issued_at), keys.owner_id)
    assert cert == DeviceCertificate(keys.owner_id, node_key, name, issued_at)


# --- refusing what was not certified ---


def test_a_certificate_of_another_owner_is_refused():
    other = OwnerKeys.from_secret(bytes(32))
    with pytest.raises(IntegrityError, match="belongs to another owner"):
        verify_certificate(CERT, other.owner_id)


def test_a_certificate_signed_by_someone_else_is_refused():
    # Owner id of KEYS, signature by another key: a forgery.
    forged = _signed(_body(), keys=OwnerKeys.from_secret(bytes(32)))
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_certificate(forged)


def test_a_signature_made_for_another_purpose_is_refused():
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_certificate(_signed(_body(), domain=b"head_v1"))


def test_every_flipped_bit_is_caught():
    for position in range(len(CERT)):
        for bit in range(8):
            damaged = bytearray(CERT)
            damaged[position] ^= 1 << bit
            with pytest.raises(IntegrityError):
                verify_certificate(bytes(damaged))


@given(st.integers(0, len(CERT) - 1))
def test_truncated_certificates_are_refused(cut):
    with pytest.raises(FormatError):
        verify_certificate(CERT[:cut])


@given(st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(extra):
    with pytest.raises(FormatError, match="unexpected bytes at the end"):
        verify_certificate(CERT + extra)


def test_another_version_is_refused_with_a_hint():
    with pytest.raises(FormatError, match="newer p2pbackup"):
        verify_certificate(_signed(_body(version=2)))


@pytest.mark.parametrize("name", [b"", b"x" * 65, b"\xff\xfe", b"lap\ntop", b"\xe2\x80\xaelaptop"])
def test_a_signed_certificate_with_a_bad_name_is_still_refused(name):
    with pytest.raises(FormatError):
        verify_certificate(_signed(_body(name)))


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_project_errors(data):
    with pytest.raises(IntegrityError):
        verify_certificate(data)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_after_a_valid_header_raise_only_project_errors(data):
    with pytest.raises(IntegrityError):
        verify_certificate(MAGIC + bytes([VERSION]) + data)


@settings(max_examples=100)
@given(st.text(max_size=70))
def test_any_name_is_certified_faithfully_or_refused_with_a_config_error(name):
    try:
        cert = verify_certificate(issue_certificate(KEYS, NODE, name, ISSUED_AT))
    except ConfigError:
        return
    assert cert.device_name == name


# --- issuing refuses what it could not sign ---


@pytest.mark.parametrize(
    ("node_key", "name", "issued_at", "problem"),
    [
        (bytes(31), "laptop", 0, "node key"),
        (bytes(33), "laptop", 0, "node key"),
        (NODE, "", 0, "1 to 64 bytes"),
        (NODE, "é" * 33, 0, "1 to 64 bytes"),
        (NODE, "lap\ttop", 0, "control"),
        (NODE, "\u202elaptop", 0, "invisible"),
        (NODE, "\ud800", 0, "not valid text"),
        (NODE, "laptop", -1, "unix time"),
        (NODE, "laptop", 2**64, "unix time"),
    ],
)
def test_issuing_refuses_bad_input(node_key, name, issued_at, problem):
    with pytest.raises(ConfigError, match=problem):
        issue_certificate(KEYS, node_key, name, issued_at)
