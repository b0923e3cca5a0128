"""The recovery phrase: BIP-39 vectors, forgiving reading, and errors that say what to fix."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core.phrase import WORD_COUNT, check_word, phrase_to_secret, secret_to_phrase
from p2pbackup.core.wordlist import WORDS
from p2pbackup.errors import ConfigError, PhraseError

SECRET = bytes(range(32))
PHRASE = secret_to_phrase(SECRET)
secrets = st.binary(min_size=32, max_size=32)
positions = st.integers(0, WORD_COUNT - 1)
# Letters-only strings that are neither a word nor a prefix of one: unknown words.
unknown_words = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12).filter(
    lambda word: check_word(word) is None
)


# --- fixed vectors (the first four are the official BIP-39 256-bit vectors) ---


@pytest.mark.parametrize(
    ("secret", "phrase"),
    [
        (bytes(32), "abandon " * 23 + "art"),
        (
            b"\x7f" * 32,
            "legal winner thank year wave sausage worth useful legal winner thank year wave "
            "sausage worth useful legal winner thank year wave sausage worth title",
        ),
        (
            b"\x80" * 32,
            "letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd "
            "amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless",
        ),
        (b"\xff" * 32, "zoo " * 23 + "vote"),
        (
            bytes.fromhex("68a79eaca2324873eacc50cb9c6eca8cc68ea5d936f98787c60c7ebc74e6ce7c"),
            "hamster diagram private dutch cause delay private meat slide toddler razor book "
            "happy fancy gospel tennis maple dilemma loan word shrug inflict delay length",
        ),
        (
            SECRET,
            "abandon amount liar amount expire adjust cage candy arch gather drum bullet absurd "
            "math era live bid rhythm alien crouch range attend journey unaware",
        ),
    ],
)
def test_phrase_vectors(secret, phrase):
    assert secret_to_phrase(secret) == phrase
    assert phrase_to_secret(phrase) == secret


def test_a_secret_of_the_wrong_size_is_refused():
    with pytest.raises(ConfigError):
        secret_to_phrase(bytes(31))


# --- round trips ---


@given(secrets)
def test_round_trip(secret):
    phrase = secret_to_phrase(secret)
    words = phrase.split(" ")
    assert len(words) == WORD_COUNT and all(word in WORDS for word in words)
    assert phrase == phrase.lower()
    assert phrase_to_secret(phrase) == secret


@settings(max_examples=200)
@given(secrets, st.randoms(use_true_random=False), st.booleans())
def test_reading_forgives_case_spacing_numbering_and_abbreviation(secret, rnd, numbered):
    typed = []
    for number, word in enumerate(secret_to_phrase(secret).split(), 1):
        if len(word) > 4 and rnd.random() < 0.5:
            word = word[: rnd.randint(4, len(word) - 1)]
        word = rnd.choice([word, word.upper(), word.capitalize()])
        if numbered:
            word = rnd.choice([f"{number}. ", f"{number}.", f"{number}) ", f"{number} "]) + word
        typed.append(word)
    separators = [rnd.choice([" ", "   ", "\n", "\r\n", "\t", ", ", ",", ";"]) for _ in typed]
    text = rnd.choice(["", "  ", "\n"]) + "".join(
        word + separator for word, separator in zip(typed, separators, strict=True)
    )
    assert phrase_to_secret(text) == secret


# --- wrong words ---


@settings(max_examples=200)
@given(secrets, positions, st.sampled_from(WORDS))
def test_a_replaced_word_is_caught_or_gives_another_secret(secret, position, replacement):
    words = secret_to_phrase(secret).split()
    if words[position] == replacement:
        return
    words[position] = replacement
    try:
        assert phrase_to_secret(" ".join(words)) != secret
    except PhraseError as error:
        assert "do not fit together" in error.message


def test_the_checksum_catches_about_255_in_256_wrong_words():
    words = PHRASE.split()
    tried = caught = 0
    for position in range(WORD_COUNT):
        for replacement in WORDS[position % 8 :: 8]:
            if replacement == words[position]:
                continue
            tried += 1
            try:
                phrase_to_secret(" ".join([*words[:position], replacement, *words[position + 1 :]]))
            except PhraseError:
                caught += 1
    assert tried > 6000
    assert caught / tried > 0.99  # 8 checksum bits: 1 - 1/256 expected


def test_swapped_words_are_caught():
    words = PHRASE.split()
    words[3], words[4] = words[4], words[3]
    with pytest.raises(PhraseError) as caught:
        phrase_to_secret(" ".join(words))
    assert caught.value.message == (
        "All 24 words are valid, but they do not fit together: a word is wrong or two words "
        "are swapped. Check the phrase against your copy."
    )


def test_an_unknown_word_is_reported_by_position_with_a_suggestion():
    words = PHRASE.split()
    words[6] = "gitar"
    with pytest.raises(PhraseError) as caught:
        phrase_to_secret(" ".join(words))
    assert caught.value.message == (
        "Word 7, 'gitar', is not in the word list. Did you mean 'guitar'?"
    )


@given(secrets, positions, unknown_words)
def test_unknown_words_are_reported_at_their_position(secret, position, unknown):
    words = secret_to_phrase(secret).split()
    words[position] = unknown
    with pytest.raises(PhraseError) as caught:
        phrase_to_secret(" ".join(words))
    assert caught.value.message.startswith(
        f"Word {position + 1}, {unknown!r}, is not in the word list."
    )


@given(st.integers(0, 40).filter(lambda count: count != WORD_COUNT))
def test_a_wrong_word_count_is_reported(count):
    text = " ".join((PHRASE.split() * 2)[:count])
    noun = "word" if count == 1 else "words"
    with pytest.raises(PhraseError, match=f"^The recovery phrase has {count} {noun}; it needs 24"):
        phrase_to_secret(text)


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_any_text_gives_a_secret_or_a_phrase_error(text):
    try:
        assert len(phrase_to_secret(text)) == 32
    except PhraseError as error:
        assert error.message


# --- checking one word as it is typed ---


def test_check_word_accepts_whole_words_and_prefixes_of_four_letters_or_more():
    assert check_word("guit") == "guitar"
    assert check_word("guita") == "guitar"
    assert check_word(" Guitar ") == "guitar"
    assert check_word("act") == "act"  # a three-letter word is whole
    assert check_word("gui") is None  # too short to be unambiguous
    assert check_word("guitarx") is None
    assert check_word("gitar") is None
    assert check_word("") is None


def test_every_prefix_of_four_letters_or_more_names_its_word():
    for word in WORDS:
        for end in range(min(4, len(word)), len(word) + 1):
            assert check_word(word[:end]) == word


@given(st.text(max_size=12))
def test_check_word_returns_a_list_word_or_none(text):
    assert check_word(text) in (None, *WORDS)
