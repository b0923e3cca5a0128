"""The first-run wizard, both ways, as a person goes through it, against the daemon the
app starts once the identity exists."""

from __future__ import annotations

import os
import stat

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard

from p2pbackup.core import phrase
from p2pbackup.core.wordlist import WORDS
from p2pbackup.daemon import firstrun as first_run_jobs
from p2pbackup.daemon.identity import identity_of
from p2pbackup.gui.app import App
from p2pbackup.gui.bridge import Request
from p2pbackup.gui.models import phrase as typed_phrase
from p2pbackup.gui.windows import firstrun
from p2pbackup.gui.windows.firstrun import Page
from p2pbackup.storage.profile import Profile

WAIT = 8000  # ms
LISTEN = ["--listen", "/ip4/127.0.0.1/tcp/0"]
SECRET = bytes(range(32))  # its word 6 is "adjust"; "adust" is nearest to it
GIB = 1 << 30


def _press(qtbot, wizard: QWizard, which: QWizard.WizardButton) -> None:
    button = wizard.button(which)
    assert button.isVisible() and button.isEnabled(), which
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _ask(qtbot, home: str, job: str, params: dict | None = None) -> object:
    told = []
    request = Request(home, job, params)
    request.result.connect(told.append)
    request.failed.connect(told.append)
    with qtbot.waitSignal(request.finished, timeout=WAIT):
        request.start()
    return told[0]


def _wizard(qtbot, home: str) -> tuple[App, firstrun.FirstRunWizard]:
    app = App(home, LISTEN, tray=False)
    wizard = firstrun.start(app)
    assert wizard is not None
    qtbot.addWidget(wizard)
    qtbot.addWidget(app.window)
    assert wizard.currentId() == Page.WELCOME and not app.supervisor.process
    return app, wizard


def _finish(qtbot, app: App, wizard, folder: str) -> None:
    """The folders page: a folder added through the daemon, 7 GiB for each friend, Finish."""
    assert wizard.currentId() == Page.FOLDERS
    qtbot.waitUntil(lambda: wizard.folders.isComplete(), timeout=WAIT)
    wizard.folders.picker.choose_folder = lambda: folder
    qtbot.mouseClick(wizard.folders.picker.add, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: wizard.settings.folders == [folder], timeout=WAIT)
    wizard.folders.offer.lineEdit().clear()
    qtbot.keyClicks(wizard.folders.offer.lineEdit(), "7 GiB")
    _press(qtbot, wizard, QWizard.WizardButton.FinishButton)
    assert not wizard.isVisible() and app.window.isVisible()
    qtbot.waitUntil(lambda: _ask(qtbot, app.home, "settings")["offer"] == 7 * GIB, timeout=WAIT)
    shown = _ask(qtbot, app.home, "settings")
    assert shown["folders"] == [folder]


def _quit(qtbot, app: App) -> None:
    with qtbot.waitSignal(app.finished, timeout=WAIT + 2000):
        app.quit()


def test_a_new_identity_shows_its_words_and_wants_three_of_them_back(qtbot, tmp_path):
    home, folder = str(tmp_path / "new"), str(tmp_path)
    app, wizard = _wizard(qtbot, home)
    wizard.welcome.name.setText("laptop")
    _press(qtbot, wizard, QWizard.WizardButton.CommitButton)  # Create

    assert wizard.currentId() == Page.WORDS
    words = [label.text().split(". ", 1)[1] for label in wizard.words.labels]
    assert " ".join(words) == phrase.secret_to_phrase(Profile(home).secret())
    assert not wizard.button(QWizard.WizardButton.BackButton).isEnabled()  # made: no way back
    saved = str(tmp_path / "phrase.txt")
    wizard.words.choose_file = lambda: saved
    qtbot.mouseClick(wizard.words.save, Qt.MouseButton.LeftButton)
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    with open(saved) as f:
        text = f.read()
    assert all(f"{i:2}. {word}" in text for i, word in enumerate(words, 1))
    _press(qtbot, wizard, QWizard.WizardButton.NextButton)

    assert wizard.currentId() == Page.CONFIRM
    fields = wizard.confirm.words.fields
    assert len(fields) == 3
    first = min(fields)
    wrong = next(w for w in WORDS if w not in words)
    for at, field in fields.items():
        qtbot.keyClicks(field, wrong if at == first else words[at - 1])
        assert field.text() == (wrong if at == first else words[at - 1])
    qtbot.waitUntil(lambda: wizard.confirm.isComplete(), timeout=WAIT)  # the daemon runs
    _press(qtbot, wizard, QWizard.WizardButton.NextButton)
    qtbot.waitUntil(lambda: wizard.confirm.error.text() != "", timeout=WAIT)
    assert wizard.currentId() == Page.CONFIRM  # refused
    assert f"Word {first} is not what your phrase has there" in wizard.confirm.error.text()
    assert wrong not in wizard.confirm.error.text() and words[first - 1] not in (
        wizard.confirm.error.text())  # fmt: skip
    assert _ask(qtbot, home, "settings")["phrase_confirmed"] is False

    fields[first].clear()
    qtbot.keyClicks(fields[first], words[first - 1])
    assert fields[first].text() == words[first - 1] and wizard.confirm.error.text() == ""
    _press(qtbot, wizard, QWizard.WizardButton.NextButton)
    qtbot.waitUntil(lambda: wizard.currentId() == Page.FOLDERS or bool(wizard.confirm.error.text()),
                    timeout=WAIT)  # fmt: skip
    assert wizard.confirm.error.text() == ""
    assert wizard.currentId() == Page.FOLDERS
    assert _ask(qtbot, home, "settings")["phrase_confirmed"] is True

    _finish(qtbot, app, wizard, folder)
    assert wizard.phrase == "" and all(not label.text() for label in wizard.words.labels)
    assert app.supervisor.owned  # the app's own daemon, stopped on Quit
    _quit(qtbot, app)


def test_recovery_from_a_phrase_with_a_typo_gets_its_suggestion_and_the_same_owner(
    qtbot, tmp_path, monkeypatch
):
    original = first_run_jobs.recover(Profile(str(tmp_path / "lost")),
                                      phrase.secret_to_phrase(SECRET))  # fmt: skip
    words = phrase.secret_to_phrase(SECRET).split()
    assert words[5] == "adjust"
    home = str(tmp_path / "new-laptop")
    app, wizard = _wizard(qtbot, home)
    wizard.welcome.recovering.click()
    _press(qtbot, wizard, QWizard.WizardButton.NextButton)

    assert wizard.currentId() == Page.RECOVER and not Profile(home).exists
    page = wizard.recover
    typed = " ".join(["1.", *words[:5], "ADUST", *words[6:-1]])
    page.text.insertPlainText(typed)  # pasted, the way most people will
    qtbot.keyClicks(page.text, " " + words[-1][:5])  # and the last word typed: a prefix
    assert page.state.text() == (
        "Word 6, “adust”, is not in the word list. Did you mean one of these?"
    )
    assert not wizard.button(QWizard.WizardButton.CommitButton).isEnabled()
    [adjust] = [b for b in page.buttons if b.text().endswith(" adjust")]
    qtbot.mouseClick(adjust, Qt.MouseButton.LeftButton)
    assert page.state.text() == "All 24 words are right."
    assert page.buttons == []
    _press(qtbot, wizard, QWizard.WizardButton.CommitButton)  # Recover

    assert wizard.currentId() == Page.FRIENDS
    assert identity_of(Profile(home)).keys.owner_id.hex() == original["owner_id"]
    assert wizard.owner_id == original["owner_id"]
    qtbot.waitUntil(lambda: wizard.friends.accept.isEnabled(), timeout=WAIT)  # daemon up
    from p2pbackup.gui.windows import accept

    opened = []
    monkeypatch.setattr(accept, "open_accept", lambda *a, **k: opened.append(a), raising=False)
    with qtbot.waitSignal(app.actions.accept.triggered, timeout=1000):
        qtbot.mouseClick(wizard.friends.accept, Qt.MouseButton.LeftButton)
    _press(qtbot, wizard, QWizard.WizardButton.NextButton)
    _finish(qtbot, app, wizard, str(tmp_path))
    _quit(qtbot, app)


def test_cancelled_before_an_identity_exists_the_app_quits(qtbot, tmp_path):
    app, wizard = _wizard(qtbot, str(tmp_path / "none"))
    with qtbot.waitSignal(app.finished, timeout=WAIT):
        _press(qtbot, wizard, QWizard.WizardButton.CancelButton)
    assert not Profile(str(tmp_path / "none")).exists
    assert app.supervisor.process is None  # no daemon was started


def test_an_existing_profile_starts_the_app_without_the_wizard(qtbot, laptop):
    app = App(laptop, LISTEN, tray=False)
    qtbot.addWidget(app.window)
    assert firstrun.start(app) is None
    assert app.window.isVisible()  # no tray offscreen: the window opened
    _quit(qtbot, app)


def test_a_typed_phrase_is_read_as_the_cli_reads_it():
    words = phrase.secret_to_phrase(SECRET).split()
    read = typed_phrase.read("1) " + " ".join(w.upper()[:4] for w in words))
    assert read.ok and read.problem == "" and read.count == 24
    typo = typed_phrase.read(", ".join([*words[:5], "adust", *words[6:]]))
    assert not typo.ok and typo.fix is not None
    assert typo.fix.suggestions[0] == "adjust"
    fixed = typed_phrase.replaced(", ".join([*words[:5], "adust", *words[6:]]), typo.fix, "adjust")
    assert typed_phrase.read(fixed).ok
    swapped = typed_phrase.read(" ".join([words[1], words[0], *words[2:]]))
    assert not swapped.ok and swapped.fix is None and "do not fit together" in swapped.problem
    assert typed_phrase.read(" ".join(words[:23])).problem == "23 of 24 words."


def test_a_daemon_that_cannot_start_is_said_on_the_page_that_waits_for_it(qtbot, tmp_path):
    app = App(str(tmp_path / "new"), ["--listen", "not-an-address"], tray=False)
    wizard = firstrun.start(app)
    qtbot.addWidget(wizard)
    qtbot.addWidget(app.window)
    _press(qtbot, wizard, QWizard.WizardButton.CommitButton)
    _press(qtbot, wizard, QWizard.WizardButton.NextButton)
    assert wizard.currentId() == Page.CONFIRM
    qtbot.waitUntil(lambda: wizard.confirm.waiting.text().startswith(
        "The backup service could not start."), timeout=WAIT)  # fmt: skip
    assert len(wizard.confirm.waiting.text()) > len("The backup service could not start.")
    assert not wizard.confirm.isComplete()
    wizard.confirm.confirmed = True  # as if checked: nothing is left to ask before closing
    _quit(qtbot, app)


def test_every_page_can_be_used_from_the_keyboard_and_by_a_screen_reader(qtbot, tmp_path,
                                                                         monkeypatch):  # fmt: skip
    from PySide6.QtWidgets import QAbstractButton, QWidget

    monkeypatch.setattr(first_run_jobs, "phrase_challenge", lambda _p: {"positions": [1, 2, 3]})

    app = App(str(tmp_path / "none"), tray=False)
    wizard = firstrun.FirstRunWizard(app.home, app.watch, app.actions)
    qtbot.addWidget(wizard)
    wizard.phrase = phrase.secret_to_phrase(SECRET)
    wizard.show()
    for page_id in Page:
        wizard.setStartId(page_id)
        wizard.restart()
        focusable = [
            w
            for w in wizard.findChildren(QWidget)
            if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isVisibleTo(wizard)
        ]
        assert focusable
        for widget in focusable:
            name = widget.accessibleName() or (
                widget.text() if isinstance(widget, QAbstractButton) else "")  # fmt: skip
            assert name, f"{page_id.name}: {type(widget).__name__} has no accessible name"
            if isinstance(widget, QAbstractButton):
                assert "&" in widget.text(), f"{page_id.name}: {widget.text()!r} has no mnemonic"
    wizard.forget()
    wizard.hide()


def test_a_profile_folder_that_cannot_be_made_is_said_on_the_page(qtbot, tmp_path):
    (tmp_path / "a-file").write_text("")
    app, wizard = _wizard(qtbot, str(tmp_path / "a-file" / "home"))
    _press(qtbot, wizard, QWizard.WizardButton.CommitButton)
    assert wizard.currentId() == Page.WELCOME
    assert wizard.welcome.error.text().startswith("p2pbackup cannot keep its files in ")
    assert app.supervisor.process is None  # nothing to start a daemon on
