"""The recovery phrase: 32 secret bytes as 24 words (BIP-39).

256 bits of secret and the first 8 bits of its SHA-256 make 264 bits, read as
24 numbers of 11 bits, each a word of the 2048-word list. The checksum
catches a wrong or swapped word. Reading is forgiving: case, extra spaces,
commas, and a word given by its first four letters (unique in the list).
"""

from __future__ import annotations

import difflib
import hashlib
import re

from p2pbackup.core.keys import SECRET_SIZE
from p2pbackup.core.wordlist import WORDS
from p2pbackup.errors import PhraseError

WORD_COUNT = 24
_INDEX = {word: i for i, word in enumerate(WORDS)}
_BY_PREFIX = {word[:4]: word for word in WORDS}


def secret_to_phrase(secret: bytes) -> str:
    if len(secret) != SECRET_SIZE:
        raise ValueError(f"a recovery secret is {SECRET_SIZE} bytes")
    bits = int.from_bytes(secret + hashlib.sha256(secret).digest()[:1], "big")
    return " ".join(WORDS[(bits >> (11 * (WORD_COUNT - 1 - i))) & 0x7FF] for i in range(WORD_COUNT))


def check_word(word: str) -> str | None:
    """The list word meant by ``word`` (whole, or an unambiguous prefix of 4+ letters)."""
    word = word.strip().lower()
    if word in _INDEX:
        return word
    if len(word) >= 4 and word[:4] in _BY_PREFIX and _BY_PREFIX[word[:4]].startswith(word):
        return _BY_PREFIX[word[:4]]
    return None


def phrase_to_secret(text: str) -> bytes:
    words = [w for w in re.split(r"[\s,;]+", text.strip().lower()) if w]
    if len(words) != WORD_COUNT:
        raise PhraseError(f"The recovery phrase has {len(words)} words; it needs {WORD_COUNT}.")
    bits = 0
    for position, typed in enumerate(words, 1):
        word = check_word(typed)
        if word is None:
            close = difflib.get_close_matches(typed, WORDS, n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise PhraseError(f"Word {position}, {typed!r}, is not in the word list.{hint}")
        bits = (bits << 11) | _INDEX[word]
    secret, checksum = (bits >> 8).to_bytes(SECRET_SIZE, "big"), bits & 0xFF
    if hashlib.sha256(secret).digest()[0] != checksum:
        raise PhraseError(
            f"All {WORD_COUNT} words are valid, but they do not fit together: a word is wrong "
            "or two words are swapped. Check the phrase against your copy."
        )
    return secret
