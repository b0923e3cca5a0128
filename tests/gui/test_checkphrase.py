"""Backup ▸ Check my recovery phrase… against a real daemon: a profile whose phrase was
never checked is reminded; a wrong word is refused by its position, the right words are
accepted, and the reminder goes."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from p2pbackup.core import phrase
from p2pbackup.gui.app import App
from p2pbackup.gui.windows.checkphrase import CheckPhraseDialog
from p2pbackup.storage.profile import Profile

WAIT = 15000  # ms
UNCHECKED = "Your recovery phrase has not been checked"


def _type(qtbot, dialog: CheckPhraseDialog, words: dict[int, str]) -> None:
    for at, field in dialog.words.fields.items():
        field.clear()
        qtbot.keyClicks(field, words[at])
    assert dialog.check.isEnabled()
    qtbot.mouseClick(dialog.check, Qt.MouseButton.LeftButton)


def test_the_phrase_checked_from_the_menu_ends_the_reminder(qtbot, answer, laptop):
    home = laptop  # made by `p2pbackup init`: its phrase was shown, never checked
    words = phrase.secret_to_phrase(Profile(home).secret()).split()
    assert answer(home, "status")["phrase_confirmed"] is False
    app = App(home, tray=False)
    app.start()
    qtbot.addWidget(app.window)
    overview = app.window.overview
    qtbot.waitUntil(lambda: UNCHECKED in overview.warnings.text(), timeout=WAIT)
    assert app.actions.check_phrase in app.window.menuBar().actions()[0].menu().actions()
    qtbot.waitUntil(lambda: app.actions.check_phrase.isEnabled(), timeout=WAIT)

    app.actions.check_phrase.trigger()
    dialog = app.window.findChild(CheckPhraseDialog)
    qtbot.waitUntil(lambda: len(dialog.words.fields) == 3, timeout=WAIT)
    assert all(f.accessibleName() for f in dialog.words.fields.values())
    assert all("&" in b.text() for b in dialog.findChildren(QPushButton))
    right = {at: words[at - 1] for at in dialog.words.fields}
    first = min(right)
    wrong = {**right, first: next(w for w in ("abandon", "zoo") if w != right[first])}
    _type(qtbot, dialog, wrong)
    qtbot.waitUntil(lambda: bool(dialog.error.text()), timeout=WAIT)
    # The position named, the right word never shown: exactly the daemon's message.
    assert dialog.error.text() == (f"Word {first} is not what your phrase has there. Check "
                                   "your copy of the phrase and try again.")  # fmt: skip
    assert answer(home, "status")["phrase_confirmed"] is False

    _type(qtbot, dialog, right)
    qtbot.waitUntil(lambda: dialog.said.text().startswith("Your copy is right"), timeout=WAIT)
    assert not dialog.error.text()
    assert all(not f.text() and not f.isEnabled() for f in dialog.words.fields.values())
    assert answer(home, "status")["phrase_confirmed"] is True
    qtbot.waitUntil(lambda: UNCHECKED not in overview.warnings.text(), timeout=WAIT)
    dialog.close()
    with qtbot.waitSignal(app.finished, timeout=WAIT):
        app.quit()
