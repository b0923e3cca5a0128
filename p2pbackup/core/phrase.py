"""The recovery phrase: the 32-byte secret as 24 words (BIP-39).

Encoding, bit by bit::

    bits 0..255    the secret, most significant bit of byte 0 first
    bits 256..263  the checksum: the first byte of SHA-256(secret)
    word i         bits 11*i .. 11*i+10 as a number 0..2047, the index of the
                   word in the BIP-39 English list (core/wordlist.py)

So the phrase of ``bytes(32)`` is "abandon" 23 times then "art", as in the
BIP-39 test vectors, and another BIP-39 tool gives the same words. The
checksum catches about 255 in 256 wrong words and most swaps.

Reading is forgiving, because people copy phrases by hand: any case; words
separated by spaces, newlines, tabs, commas or semicolons; numbering such as
"1." or "7)" in front of a word (a phrase written down as a numbered list);
and a word given by any prefix of four letters or more, which is unambiguous
because the list's words differ in their first four letters.
"""

from __future__ import annotations

import difflib
import hashlib
import re

from p2pbackup.core.keys import SECRET_SIZE
from p2pbackup.core.wordlist import WORDS
from p2pbackup.errors import ConfigError, PhraseError

WORD_COUNT = 24
_WORD_BITS = 11
_CHECKSUM_BITS = 8
_INDEX = {word: i for i, word in enumerate(WORDS)}
_BY_PREFIX = {word[:4]: word for word in WORDS}
_WORD = re.compile(r"[^\s,;]+")  # words are separated by white space, commas or semicolons
_NUMBERING = re.compile(r"^\d+[.):]?")


def secret_to_phrase(secret: bytes) -> str:
    """The 24 lower-case words, separated by single spaces."""
    if len(secret) != SECRET_SIZE:
        raise ConfigError(f"A recovery secret is {SECRET_SIZE} bytes.")
    bits = int.from_bytes(secret + hashlib.sha256(secret).digest()[:1], "big")
    return " ".join(
        WORDS[(bits >> (_WORD_BITS * (WORD_COUNT - 1 - i))) & 0x7FF] for i in range(WORD_COUNT)
    )


def check_word(word: str) -> str | None:
    """The list word meant by ``word`` (whole, or a prefix of 4+ letters), else None.

    For a form that checks each word as it is typed.
    """
    word = word.strip().lower()
    if word in _INDEX:
        return word
    if len(word) >= 4:
        candidate = _BY_PREFIX.get(word[:4])
        if candidate is not None and candidate.startswith(word):
            return candidate
    return None


def phrase_to_secret(text: str) -> bytes:
    """The secret written as ``text``; PhraseError says what to fix if it is not valid."""
    words = _split(text)
    if len(words) != WORD_COUNT:
        noun = "word" if len(words) == 1 else "words"
        raise PhraseError(f"The recovery phrase has {len(words)} {noun}; it needs {WORD_COUNT}.")
    bits = 0
    for position, typed in enumerate(words, 1):
        word = check_word(typed)
        if word is None:
            raise PhraseError(
                f"Word {position}, {typed!r}, is not in the word list.{_suggestion(typed)}"
            )
        bits = (bits << _WORD_BITS) | _INDEX[word]
    secret = (bits >> _CHECKSUM_BITS).to_bytes(SECRET_SIZE, "big")
    if hashlib.sha256(secret).digest()[0] != bits & 0xFF:
        raise PhraseError(
            f"All {WORD_COUNT} words are valid, but they do not fit together: a word is wrong "
            "or two words are swapped. Check the phrase against your copy."
        )
    return secret


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """Each word of a typed phrase as reading finds it: where it is in ``text`` (start,
    end; numbering in front left out) and the word in lower case. A form marks a word,
    or replaces it with a suggestion, at that place."""
    spans = []
    for token in _WORD.finditer(text):
        numbering = _NUMBERING.match(token.group())
        start = token.start() + (numbering.end() if numbering else 0)
        if start < token.end():
            spans.append((start, token.end(), text[start : token.end()].lower()))
    return spans


def _split(text: str) -> list[str]:
    return [word for _, _, word in word_spans(text)]


def suggestions(typed: str) -> list[str]:
    """Up to three list words near ``typed``, nearest first (for a form, or an error)."""
    # Prefer near misses (a typo, a dropped letter); fall back to looser matches only if
    # there are none, so a one-letter slip is not buried among unrelated words.
    typed = typed.strip().lower()
    return difflib.get_close_matches(typed, WORDS, n=3, cutoff=0.75) or (
        difflib.get_close_matches(typed, WORDS, n=3, cutoff=0.6)
    )


def _suggestion(typed: str) -> str:
    close = suggestions(typed)
    if not close:
        return ""
    quoted = [repr(word) for word in close]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f" Did you mean {listed}?"
