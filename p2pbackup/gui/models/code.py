"""An invite code as it is typed: whether it is whole, the form the daemon is sent, and a
hint about the part that is wrong, and word completion from the pairing word list.

The code is read by ``core.pairing.parse_code``, as the CLI's ``join`` reads it (case,
spaces and dashes forgiven, four letters enough for a word): nothing here reads it again.
The hint only says which part a person should look at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication

from p2pbackup import errors
from p2pbackup.core.phrase import check_word, suggestions
from p2pbackup.core.wordlist import WORDS

CODE_WORDS = 3  # words after the number (core.pairing.CODE_WORDS)
EXAMPLE = "7-guitar-reveal-orbit"
_PARTS = re.compile(r"[\s\-]+")


def _tr(text: str) -> str:
    return QCoreApplication.translate("code", text)


@dataclass(frozen=True)
class CodeState:
    code: str | None  # the code to send (``7-guitar-reveal-orbit``), None until it is whole
    hint: str  # what to say under the field
    wrong: bool  # the hint is a mistake, not a step on the way


def check(text: str) -> CodeState:
    """What the field holds: a whole code, a code on its way, or a mistake to point at."""
    from p2pbackup.core.pairing import parse_code  # spake2: when a code is typed, not at start

    try:
        code = str(parse_code(text))
    except errors.PairingError:
        pass
    else:
        return CodeState(code, _tr("The code is complete. Press Pair."), False)
    parts = [p for p in _PARTS.split(text.strip().lower()) if p]
    if not parts:
        return CodeState(None, _tr("The code looks like %1.").replace("%1", EXAMPLE), False)
    if not parts[0].isdigit():
        return CodeState(None, _tr("The code starts with the number your friend was given, "
                                   "as in %1.").replace("%1", EXAMPLE), True)  # fmt: skip
    if not 1 <= int(parts[0]) <= 999:
        return CodeState(None, _tr("The number at the start is from 1 to 999."), True)
    if len(parts) > 1 + CODE_WORDS:
        return CodeState(None, _tr("A code has a number and three words; this has more."), True)
    finishing = not _PARTS.fullmatch(text[-1:] or " ")  # the last word may be half typed
    valid = 0
    for position, typed in enumerate(parts[1:], 1):
        if check_word(typed) is not None:
            valid += 1
            continue
        if finishing and position == len(parts) - 1 and any(w.startswith(typed) for w in WORDS):
            break  # on its way to a word
        near = suggestions(typed)
        text = _tr("Word %1, “%2”, is not one p2pbackup uses.").replace(
            "%1", str(position)).replace("%2", typed)
        if near:
            text += " " + _tr("Did you mean %1?").replace("%1", " / ".join(near))
        return CodeState(None, text, True)
    left = max(CODE_WORDS - valid, 1)
    more = _tr("1 more word to type.") if left == 1 else _tr("%1 more words to type.")
    return CodeState(None, more.replace("%1", str(left)), False)


def complete(text: str, word: str) -> str:
    """``text`` with its last, half-typed part replaced by ``word``, then a separator if
    another word follows (the one the person used, else a dash)."""
    head = _PARTS.split(text)
    cut = len(text) - len(head[-1])
    parts = [p for p in _PARTS.split(text[:cut]) if p]
    separator = " " if " " in text.strip() else "-"
    done = text[:cut] + word
    return done + separator if len(parts) < CODE_WORDS else done


def last_part(text: str) -> str:
    """The part being typed: what completion looks up (nothing after a separator)."""
    return _PARTS.split(text)[-1].lower()
