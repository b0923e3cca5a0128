"""A recovery phrase as it is being typed: each word checked, the first one that is not
in the list with the list words it is nearest to, and whether the whole phrase holds.

No Qt widget: the recovery page shows this, and the tests read it from plain text. The
reading is the CLI's (core/phrase.py through daemon/firstrun.py: any case, numbering,
commas, four-letter prefixes), so the app and ``init --recover`` accept the same phrases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QCoreApplication

from p2pbackup.core import phrase
from p2pbackup.daemon import firstrun
from p2pbackup.errors import PhraseError


def _tr(text: str) -> str:
    return QCoreApplication.translate("phrase", text)


@dataclass(frozen=True)
class Word:
    start: int  # where the typed word is in the text
    end: int
    typed: str
    word: str | None  # the list word it means, None if it is not in the list
    suggestions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TypedPhrase:
    words: list[Word]
    problem: str  # what to fix, in words ("" when the phrase holds)
    fix: Word | None  # the first word not in the list, which the suggestions replace
    ok: bool  # 24 list words whose checksum holds

    @property
    def count(self) -> int:
        return len(self.words)


def read(text: str) -> TypedPhrase:
    words = [Word(start, end, typed, **_checked(typed))
             for start, end, typed in phrase.word_spans(text)]  # fmt: skip
    fix = next((w for w in words if w.word is None), None)
    if fix is not None:
        at = words.index(fix) + 1
        problem = _tr("Word %1, “%2”, is not in the word list.").replace(
            "%1", str(at)).replace("%2", fix.typed)  # fmt: skip
        if fix.suggestions:
            problem += " " + _tr("Did you mean one of these?")
        return TypedPhrase(words, problem, fix, False)
    if len(words) != phrase.WORD_COUNT:
        problem = _tr("%1 of %2 words.").replace("%1", str(len(words))).replace(
            "%2", str(phrase.WORD_COUNT))  # fmt: skip
        return TypedPhrase(words, problem, None, False)
    try:
        phrase.phrase_to_secret(" ".join(w.word or "" for w in words))
    except PhraseError as exc:  # every word is a list word: the checksum does not hold
        return TypedPhrase(words, exc.message, None, False)
    return TypedPhrase(words, "", None, True)


def _checked(typed: str) -> dict:
    checked = firstrun.check_word(typed)
    return {"word": checked["word"], "suggestions": list(checked["suggestions"])}


def replaced(text: str, word: Word, by: str) -> str:
    """``text`` with ``word`` replaced by the list word ``by``."""
    return text[: word.start] + by + text[word.end :]
