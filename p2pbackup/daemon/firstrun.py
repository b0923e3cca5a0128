"""First run: make this device's identity, confirm its recovery phrase, or recover one.

Plain functions on a profile folder: they run before any identity or daemon exists, so
the app's first-run wizard calls them directly, and ``init`` does too. A running daemon
answers the ones that make sense on an existing profile (``phrase_challenge``,
``confirm_phrase``, ``check_word``); ``create_identity`` and ``recover`` there are refused,
as the profile exists.

The phrase is the owner's secret: ``create_identity`` returns it once, and nothing here
logs it, puts it in an event, or repeats a word of it in an error.
"""

from __future__ import annotations

import secrets
import unicodedata
from typing import Any, Protocol

from p2pbackup.core import phrase
from p2pbackup.core.keys import new_secret
from p2pbackup.errors import ConfigError, PhraseError
from p2pbackup.storage.profile import Profile

CONFIRM_WORDS = 3  # words a user gives back to show the phrase is written down
MAX_DEVICE_NAME = 64


def _who(profile: Profile) -> dict:
    from p2pbackup.daemon.identity import identity_of  # the node key and certificate

    device = identity_of(profile)
    return {"home": profile.home, "owner_id": device.keys.owner_id.hex(),
            "node_id": device.peer_id}  # fmt: skip


def _create(profile: Profile, secret: bytes, name: str | None) -> None:
    if name is not None and (
        not isinstance(name, str) or not name.strip() or len(name) > MAX_DEVICE_NAME
        or any(unicodedata.category(c).startswith("C") for c in name)
    ):  # fmt: skip
        raise ConfigError(f"A device's name is 1 to {MAX_DEVICE_NAME} printable characters.")
    profile.create(secret)  # ConfigError if one exists: nothing is overwritten
    if name is not None:
        profile.update_settings(name=name.strip())


def create_identity(profile: Profile, name: str | None = None) -> dict:
    """A new profile with a new secret; its phrase is in the answer, and only there."""
    secret = new_secret()
    _create(profile, secret, name)
    return {**_who(profile), "recovery_phrase": phrase.secret_to_phrase(secret)}


def recover(profile: Profile, words: str, name: str | None = None) -> dict:
    """A profile for the owner whose phrase ``words`` is (read forgivingly: any case,
    numbering, four-letter prefixes); a PhraseError says which word to fix."""
    if not isinstance(words, str):
        raise PhraseError("Give the recovery phrase as text.")
    secret = phrase.phrase_to_secret(words)
    _create(profile, secret, name)
    return _who(profile)


def phrase_challenge(profile: Profile, count: int = CONFIRM_WORDS) -> dict:
    """Which words to ask back: ``count`` positions (1 to 24), chosen at random."""
    profile.require()
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 24:
        raise ConfigError(f"Ask for 1 to {phrase.WORD_COUNT} words.")
    positions = secrets.SystemRandom().sample(range(1, phrase.WORD_COUNT + 1), count)
    return {"positions": sorted(positions)}


def _position(key: object) -> int:
    try:
        position = int(str(key))
    except ValueError:
        position = 0
    if not 1 <= position <= phrase.WORD_COUNT:
        raise ConfigError(f"Positions are numbers from 1 to {phrase.WORD_COUNT}, not {key!r}.")
    return position


def confirm_phrase(profile: Profile, words: dict[str, str]) -> dict:
    """Whether the user wrote the phrase down: ``words`` maps positions (1 to 24) to the
    words written there, at least three. Each is read as ``recover`` reads it."""
    if not isinstance(words, dict) or len(words) < CONFIRM_WORDS:
        raise ConfigError(f"Give at least {CONFIRM_WORDS} words with their positions.")
    given = {_position(key): word for key, word in words.items()}
    actual = phrase.secret_to_phrase(profile.secret()).split()
    wrong = sorted(
        at for at, word in given.items()
        if not isinstance(word, str) or phrase.check_word(word) != actual[at - 1]
    )  # fmt: skip
    if wrong:  # which positions, never which word belongs there
        listed = ", ".join(map(str, wrong))
        raise PhraseError(f"Word {listed} is not what your phrase has there. Check your copy "
                          "of the phrase and try again.")  # fmt: skip
    profile.update_settings(phrase_confirmed=True)
    return {"confirmed": True, "positions": sorted(given)}


def check_word(word: str) -> dict:
    """One word as a form checks it while it is typed: the list word it means, or None
    and the nearest list words."""
    if not isinstance(word, str):
        raise ConfigError("Give the word as text.")
    meant = phrase.check_word(word)
    return {"word": meant, "suggestions": [] if meant else phrase.suggestions(word)}


# As jobs (daemon/settings.py): each takes whoever holds the profile first.
class _Holder(Protocol):
    profile: Profile


def _create_identity(k: _Holder, name: str | None = None) -> dict:
    return create_identity(k.profile, name)


def _recover(k: _Holder, phrase: str, name: str | None = None) -> dict:
    return recover(k.profile, phrase, name)


def _phrase_challenge(k: _Holder, count: int = CONFIRM_WORDS) -> dict:
    return phrase_challenge(k.profile, count)


def _confirm_phrase(k: _Holder, words: dict[str, str]) -> dict:
    return confirm_phrase(k.profile, words)


def _check_word(k: _Holder, word: str) -> dict:
    return check_word(word)


JOBS: dict[str, Any] = {
    "create_identity": _create_identity,
    "recover": _recover,
    "phrase_challenge": _phrase_challenge,
    "confirm_phrase": _confirm_phrase,
    "check_word": _check_word,
}
NO_PROFILE = frozenset({"create_identity", "recover", "check_word"})  # no lock to take yet
