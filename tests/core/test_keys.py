"""Keys, the recovery phrase and device certificates: vectors, round trips, tampering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core.certificate import issue_certificate, verify_certificate
from p2pbackup.core.keys import OwnerKeys, derive_key, owner_fingerprint
from p2pbackup.core.phrase import check_word, phrase_to_secret, secret_to_phrase
from p2pbackup.core.wordlist import WORDS
from p2pbackup.errors import ConfigError, IntegrityError, P2PBackupError, PhraseError

SECRET = bytes(range(32))
KEYS = OwnerKeys.from_secret(SECRET)
NODE = bytes(range(100, 132))
CERT = issue_certificate(KEYS, NODE, "laptop", 1764000000)


# --- fixed vectors: any change to a tag, the KDF, the word list or a layout fails here ---


def test_derived_key_vectors():
    assert KEYS.owner_id.hex() == "032e7e811682bfa282d93f5c1dc2352a8f273a544e1f6395b5ed10f42962b781"
    assert KEYS.data_key.hex() == "9d349e08de9648e42d273f03e0bdccf7f2e80788d32d494f16aa59b8dd08b695"
    assert KEYS.record_id_key.hex() == (
        "e88c800f95151bdae8423c8515295595e3a8ab53ceeb423025260181fd9bfeb9"
    )
    assert KEYS.catalog_key.hex() == (
        "89b5127ce8e125250c28d3b3494c3983782a34bbb30527088a78c90aadfab4cc"
    )
    assert KEYS.head_key.hex() == "376fb520b6db1e1f38609c19bdb5db66bbaa6f01df31407622bffacb70b798d4"


def test_phrase_vectors():
    # The BIP-39 vector for 256 bits of zeros.
    assert secret_to_phrase(bytes(32)) == "abandon " * 23 + "art"
    assert secret_to_phrase(SECRET) == (
        "abandon amount liar amount expire adjust cage candy arch gather drum bullet absurd "
        "math era live bid rhythm alien crouch range attend journey unaware"
    )


def test_certificate_vector():
    assert CERT.hex() == (
        "5032424301032e7e811682bfa282d93f5c1dc2352a8f273a544e1f6395b5ed10f42962b7816465666768"
        "696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182830000000069248100066c6170746f70"
        "afb5f26fe2f78e45e7dd360a0978b8237931652b6b51d03ad5a3bccdd1a87732b7efd5dd079090c18325"
        "7588e14a0244f3c47b0009ab5d95e3903237e4ae3608"
    )


# --- keys ---


def test_keys_are_distinct_and_secret_free_in_repr():
    keys = {KEYS.owner_id, KEYS.data_key, KEYS.record_id_key, KEYS.catalog_key, KEYS.head_key}
    assert len(keys) == 5
    shown = repr(KEYS)
    assert owner_fingerprint(KEYS.owner_id) in shown
    for key in (KEYS.data_key, KEYS.record_id_key, KEYS.catalog_key, KEYS.head_key):
        assert key.hex()[:8] not in shown


def test_a_secret_of_the_wrong_size_is_refused():
    with pytest.raises(ConfigError):
        derive_key(b"short", b"data_v1")


# --- phrase ---


@given(st.binary(min_size=32, max_size=32))
def test_phrase_round_trip(secret):
    assert phrase_to_secret(secret_to_phrase(secret)) == secret


@given(st.binary(min_size=32, max_size=32), st.randoms(use_true_random=False))
def test_phrase_forgives_case_spacing_and_abbreviation(secret, rnd):
    words = secret_to_phrase(secret).split()
    noisy = [
        (w[:4] if rnd.random() < 0.3 else w).upper() if rnd.random() < 0.3 else w for w in words
    ]
    separators = [rnd.choice([" ", "  ", "\n", "\t", ", "]) for _ in noisy]
    text = "  " + "".join(w + s for w, s in zip(noisy, separators, strict=True))
    assert phrase_to_secret(text) == secret


def test_an_unknown_word_is_reported_by_position_with_a_suggestion():
    words = secret_to_phrase(SECRET).split()
    words[6] = "cagge"
    with pytest.raises(PhraseError, match=r"Word 7, 'cagge', is not in the word list\. Did you"):
        phrase_to_secret(" ".join(words))


def test_a_wrong_word_count_is_reported():
    with pytest.raises(PhraseError, match="has 23 words; it needs 24"):
        phrase_to_secret(" ".join(secret_to_phrase(SECRET).split()[:23]))


@settings(max_examples=200)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 23), st.sampled_from(WORDS))
def test_a_replaced_word_is_caught_or_changes_the_secret(secret, position, word):
    words = secret_to_phrase(secret).split()
    words[position] = word
    try:
        assert (
            phrase_to_secret(" ".join(words)) != secret
            or word == secret_to_phrase(secret).split()[position]
        )
    except PhraseError as error:
        assert "do not fit together" in error.message


def test_the_checksum_catches_most_wrong_words():
    words = secret_to_phrase(SECRET).split()
    caught = 0
    for word in WORDS[:512]:
        if word == words[23 - 1]:
            continue
        try:
            phrase_to_secret(" ".join([*words[:22], word, words[23]]))
        except PhraseError:
            caught += 1
    assert caught > 480  # 8 checksum bits: about 255 in 256 are caught


def test_swapped_words_are_caught():
    words = secret_to_phrase(SECRET).split()
    words[3], words[4] = words[4], words[3]
    with pytest.raises(PhraseError, match="swapped"):
        phrase_to_secret(" ".join(words))


def test_check_word_accepts_unique_prefixes_only():
    assert check_word("guit") == "guitar"
    assert check_word("Guitar") == "guitar"
    assert check_word("gui") is None
    assert check_word("guitarx") is None


# --- device certificates ---


def test_certificate_round_trip():
    cert = verify_certificate(CERT, KEYS.owner_id)
    assert (cert.owner_id, cert.node_key, cert.device_name, cert.issued_at) == (
        KEYS.owner_id,
        NODE,
        "laptop",
        1764000000,
    )


def test_certificate_of_another_owner_is_refused():
    other = OwnerKeys.from_secret(bytes(32))
    with pytest.raises(IntegrityError, match="another owner"):
        verify_certificate(CERT, other.owner_id)


def test_every_flipped_bit_of_a_certificate_is_caught():
    for position in range(len(CERT)):
        for bit in (0x01, 0x80):
            damaged = bytearray(CERT)
            damaged[position] ^= bit
            with pytest.raises(IntegrityError):
                verify_certificate(bytes(damaged))


@given(st.binary(max_size=300))
def test_garbage_certificates_raise_only_project_errors(data):
    with pytest.raises(P2PBackupError):
        verify_certificate(data)


@given(st.integers(1, len(CERT) - 1))
def test_truncated_certificates_are_refused(cut):
    with pytest.raises(IntegrityError):
        verify_certificate(CERT[:cut])
