"""Key derivation: frozen vectors, separation of purposes, and a repr that keeps secrets."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core.keys import (
    CATALOG_TAG,
    DATA_TAG,
    HEAD_TAG,
    OWNER_SIGNING_TAG,
    RECORD_ID_TAG,
    SECRET_SIZE,
    OwnerKeys,
    derive_key,
    new_secret,
    owner_fingerprint,
)
from p2pbackup.errors import ConfigError

SECRET = bytes(range(32))
KEYS = OwnerKeys.from_secret(SECRET)
secrets = st.binary(min_size=SECRET_SIZE, max_size=SECRET_SIZE)


# Fixed vectors: any change to a tag or to the construction fails here, and would
# otherwise silently orphan every existing backup.


def test_tags_are_frozen():
    assert (OWNER_SIGNING_TAG, DATA_TAG, RECORD_ID_TAG, CATALOG_TAG, HEAD_TAG) == (
        b"owner-signing_v1",
        b"data_v1",
        b"record-id_v1",
        b"catalog_v1",
        b"head_v1",
    )


def test_derived_key_vectors():
    assert KEYS.owner_id.hex() == (
        "032e7e811682bfa282d93f5c1dc2352a8f273a544e1f6395b5ed10f42962b781"
    )
    assert KEYS.data_key.hex() == (
        "9d349e08de9648e42d273f03e0bdccf7f2e80788d32d494f16aa59b8dd08b695"
    )
    assert KEYS.record_id_key.hex() == (
        "e88c800f95151bdae8423c8515295595e3a8ab53ceeb423025260181fd9bfeb9"
    )
    assert KEYS.catalog_key.hex() == (
        "89b5127ce8e125250c28d3b3494c3983782a34bbb30527088a78c90aadfab4cc"
    )
    assert KEYS.head_key.hex() == (
        "376fb520b6db1e1f38609c19bdb5db66bbaa6f01df31407622bffacb70b798d4"
    )


def test_derivation_is_the_documented_blake2b():
    expected = hashlib.blake2b(
        b"data_v1", digest_size=32, key=SECRET, person=b"p2pbackup-kdf"
    ).digest()
    assert derive_key(SECRET, DATA_TAG) == expected == KEYS.data_key


def test_the_owner_id_is_the_public_half_of_the_derived_signing_key():
    assert bytes(KEYS.signing_key) == derive_key(SECRET, OWNER_SIGNING_TAG)
    assert bytes(KEYS.signing_key.verify_key) == KEYS.owner_id


def test_fingerprint_vector():
    assert owner_fingerprint(KEYS.owner_id) == "032e-7e81-1682-bfa2"


@settings(max_examples=50, deadline=None)
@given(secrets)
def test_the_same_secret_gives_the_same_owner_and_distinct_keys(secret):
    keys = OwnerKeys.from_secret(secret)
    assert keys == OwnerKeys.from_secret(secret)
    derived = [keys.data_key, keys.record_id_key, keys.catalog_key, keys.head_key]
    assert all(len(key) == 32 for key in [keys.owner_id, *derived])
    assert len({keys.owner_id, bytes(keys.signing_key), *derived}) == 6


@settings(max_examples=50, deadline=None)
@given(secrets)
def test_repr_shows_no_key_material(secret):
    keys = OwnerKeys.from_secret(secret)
    material = [
        secret,
        bytes(keys.signing_key),
        keys.data_key,
        keys.record_id_key,
        keys.catalog_key,
        keys.head_key,
    ]
    for shown in (repr(keys), str(keys)):
        assert owner_fingerprint(keys.owner_id) in shown
        assert keys.owner_id.hex() not in shown  # only the short form
        for key in material:
            assert key.hex()[:8] not in shown
            assert repr(key)[2:10] not in shown


def test_the_recovery_secret_is_not_kept():
    assert SECRET not in vars(KEYS).values()


@pytest.mark.parametrize("secret", [b"", b"short", bytes(31), bytes(33), bytearray(32), "x" * 32])
def test_a_secret_of_the_wrong_size_or_type_is_refused(secret):
    with pytest.raises(ConfigError):
        derive_key(secret, DATA_TAG)
    with pytest.raises(ConfigError):
        OwnerKeys.from_secret(secret)


def test_new_secrets_are_fresh_and_the_right_size():
    first, second = new_secret(), new_secret()
    assert len(first) == len(second) == SECRET_SIZE
    assert first != second
