"""The first-run wizard's pages about the recovery phrase: the 24 words of a new identity
(saved or printed if the person wishes), three of them asked back, and a phrase typed to
recover an identity, checked word by word as the CLI reads it.

The phrase lives only in the wizard's memory while these pages show it (daemon/firstrun.py
returns it once); it is never logged, and is written only where the person saves it.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QColor, QFont, QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from p2pbackup.core import phrase
from p2pbackup.daemon import firstrun
from p2pbackup.errors import ConfigError
from p2pbackup.gui.bridge import Request
from p2pbackup.gui.models import phrase as typed_phrase
from p2pbackup.gui.widgets import ERROR_COLOUR, PhraseWords, error_label
from p2pbackup.storage.profile import write_private

if TYPE_CHECKING:
    from p2pbackup.gui.windows.firstrun import FirstRunWizard

COLUMNS = 4  # the 24 words in 4 columns of 6, numbered down each column


def phrase_text(words: list[str], intro: str) -> str:
    """The phrase as a text file: a few lines of why, then the numbered words."""
    lines = [intro, ""]
    lines += [f"{i:2}. {word}" for i, word in enumerate(words, 1)]
    return "\n".join(lines) + "\n"


def cannot_write(home: str, exc: OSError) -> str:
    text = QCoreApplication.translate("firstrun", "p2pbackup cannot keep its files in %1: %2")
    return text.replace("%1", home).replace("%2", exc.strerror or str(exc))


def make_profile(error: QLabel, home: str, make: Callable[[], dict]) -> dict | None:
    """Run one of daemon/firstrun.py's makers (no daemon runs yet: there is no profile for
    one to run on); on failure say why in ``error`` and return None."""
    try:
        return make()
    except ConfigError as exc:
        error.setText(exc.message)
    except OSError as exc:  # the folder cannot be made or written
        error.setText(cannot_write(home, exc))
    return None


class WordsPage(QWizardPage):
    """The 24 words of the new identity, with Save to a file… and Print…."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Your recovery phrase"))
        self.setSubTitle(self.tr("Write these 24 words on paper, in order, and keep the "
                                 "paper somewhere safe."))  # fmt: skip
        why = QLabel(
            self.tr(
                "With them and one friend you can get all your files back, even if this computer "
                "is lost. Anyone who has them can read your backups, so keep them to yourself. "
                "They are shown only now; next, you will type three of them."
            )
        )
        why.setWordWrap(True)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(24)
        self.labels: list[QLabel] = []
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.15)
        for i in range(phrase.WORD_COUNT):
            label = QLabel()
            label.setFont(font)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
            self.labels.append(label)
            rows = phrase.WORD_COUNT // COLUMNS
            self.grid.addWidget(label, i % rows, i // rows)
        self.save = QPushButton(self.tr("&Save to a file…"))
        self.print = QPushButton(self.tr("&Print…"))
        self.save.clicked.connect(self._save)
        self.print.clicked.connect(self._print)
        self.said = QLabel()
        self.said.setWordWrap(True)
        self.said.setAccessibleName(self.tr("What was saved"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.save)
        buttons.addWidget(self.print)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(why)
        layout.addSpacing(8)
        layout.addLayout(self.grid)
        layout.addSpacing(12)
        layout.addLayout(buttons)
        layout.addWidget(self.said)

    def wizard(self) -> FirstRunWizard:
        return super().wizard()  # type: ignore[return-value]

    def initializePage(self) -> None:
        for i, (label, word) in enumerate(zip(self.labels, self.words(), strict=False), 1):
            label.setText(f"{i}. {word}")
            label.setAccessibleName(self.tr("Word %1: %2").replace("%1", str(i))
                                    .replace("%2", word))  # fmt: skip

    def cleanupPage(self) -> None:
        self.forget()

    def forget(self) -> None:
        for label in self.labels:
            label.clear()
            label.setAccessibleName("")

    def words(self) -> list[str]:
        return self.wizard().phrase.split()

    def _intro(self) -> str:
        return self.tr(
            "p2pbackup recovery phrase. Keep it where only you can reach it. With these 24 "
            "words and one friend, you can get your backups back on a new computer; anyone "
            "who has them can read your backups."
        )

    def choose_file(self) -> str:
        """Where a person saves the phrase ("" when they cancel); tests replace this."""
        path, _ = QFileDialog.getSaveFileName(
            self, self.tr("Save the recovery phrase"),
            os.path.join(os.path.expanduser("~"), "p2pbackup-recovery-phrase.txt"),
            self.tr("Text files (*.txt)"))  # fmt: skip
        return path

    def _save(self) -> None:
        path = self.choose_file()
        if not path:
            return
        try:  # mode 0600, written whole or not at all
            write_private(path, phrase_text(self.words(), self._intro()).encode())
        except OSError as exc:
            self.said.setText(
                self.tr("The phrase could not be saved: %1").replace("%1", exc.strerror or str(exc))
            )
            return
        self.said.setText(
            self.tr(
                "Saved in %1. Only you can read that file; keep a copy "
                "away from this computer as well."
            ).replace("%1", path)
        )

    def _print(self) -> None:
        from PySide6.QtPrintSupport import QPrintDialog, QPrinter  # only when asked

        printer = QPrinter()
        dialog = QPrintDialog(printer, self)
        dialog.setWindowTitle(self.tr("Print the recovery phrase"))
        if dialog.exec() != QPrintDialog.DialogCode.Accepted:
            return
        document = QTextDocument()
        rows = "".join(f"<li>{html.escape(word)}</li>" for word in self.words())
        document.setHtml(f"<p>{html.escape(self._intro())}</p><ol style='font-size: 14pt'>"
                         f"{rows}</ol>")  # fmt: skip
        document.print_(printer)
        self.said.setText(self.tr("Sent to the printer."))


class ConfirmPage(QWizardPage):
    """Three words asked back, checked by the daemon (it owns the settings it records the
    confirmation in), before the wizard goes on."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Check your copy"))
        self.setSubTitle(self.tr("To be sure your copy is right, type these words from it."))
        self.words = PhraseWords()
        self.words.changed.connect(self._typed)
        self.error = error_label()
        self.waiting = QLabel()
        self.waiting.setWordWrap(True)
        self.waiting.setAccessibleName(self.tr("Backup service"))
        layout = QVBoxLayout(self)
        layout.addWidget(self.words)
        layout.addWidget(self.error)
        layout.addWidget(self.waiting)
        layout.addStretch(1)
        self.confirmed = False
        self._checking: Request | None = None

    def wizard(self) -> FirstRunWizard:
        return super().wizard()  # type: ignore[return-value]

    def initializePage(self) -> None:
        if self.words.fields:
            return  # back and forth: the same words are asked
        self.words.ask(firstrun.phrase_challenge(self.wizard().profile)["positions"])
        self.wizard().service_changed.connect(self._service)
        self._service()

    def _service(self) -> None:
        self.waiting.setText(self.wizard().waiting())
        self.completeChanged.emit()

    def _typed(self) -> None:
        self.error.clear()
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.words.filled() and self._checking is None and self.wizard().settings.running

    def validatePage(self) -> bool:
        """The daemon checks the words; the wizard goes on when it says they are right."""
        if self.confirmed:
            return True
        request = self._checking = Request(self.wizard().home, "confirm_phrase",
                                           {"words": self.words.words()}, self)  # fmt: skip
        request.result.connect(self._right)
        request.failed.connect(lambda exc: self.error.setText(exc.message))
        request.no_daemon.connect(
            lambda: self.error.setText(
                self.tr("The backup service is not running yet. Try again in a moment.")
            )
        )
        request.lost.connect(
            lambda: self.error.setText(
                self.tr("The backup service stopped before it answered. Try again in a moment.")
            )
        )
        request.finished.connect(self._checked)
        request.start()
        self.completeChanged.emit()
        return False

    def _right(self, _result: object) -> None:
        self.confirmed = True

    def _checked(self) -> None:
        self._checking = None
        self.completeChanged.emit()
        if self.confirmed and self.wizard().currentPage() is self:
            self.wizard().next()


class RecoverPage(QWizardPage):
    """The phrase typed or pasted, checked as it is typed: the first word that is not in
    the list comes with the list words nearest to it, as buttons that put one in its
    place. Next (Recover) makes the profile from it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Recover your backups"))
        self.setSubTitle(
            self.tr(
                "Type or paste the 24 words of your recovery phrase. Capitals, numbering and "
                "commas do not matter, and the first four letters of a word are enough."
            )
        )
        self.text = QPlainTextEdit()
        self.text.setAccessibleName(self.tr("Recovery phrase"))
        self.text.setTabChangesFocus(True)
        self.text.setPlaceholderText(self.tr("word word word …"))
        self.text.setFixedHeight(self.text.fontMetrics().lineSpacing() * 7)
        self.text.textChanged.connect(self._typed)
        self.state = QLabel()
        self.state.setWordWrap(True)
        self.state.setAccessibleName(self.tr("Phrase check"))
        self.suggestions = QHBoxLayout()
        self.buttons: list[QPushButton] = []
        self.error = error_label()
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, self.tr("&Recover"))
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.state)
        layout.addLayout(self.suggestions)
        layout.addWidget(self.error)
        layout.addStretch(1)
        self.read = typed_phrase.read("")
        self._typed()

    def wizard(self) -> FirstRunWizard:
        return super().wizard()  # type: ignore[return-value]

    def _typed(self) -> None:
        self.read = read = typed_phrase.read(self.text.toPlainText())
        self.error.clear()
        if read.ok:
            self.state.setText(self.tr("All %1 words are right.").replace(
                "%1", str(phrase.WORD_COUNT)))  # fmt: skip
        else:
            self.state.setText(read.problem if read.count else "")
        while self.suggestions.count():
            item = self.suggestions.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.buttons = []
        for i, word in enumerate(read.fix.suggestions if read.fix else [], 1):
            button = QPushButton(f"&{i} {word}")
            button.setToolTip(self.tr("Put “%1” in place of “%2”").replace("%1", word)
                              .replace("%2", read.fix.typed))  # fmt: skip
            button.clicked.connect(lambda _=False, w=word: self.use(w))
            self.suggestions.addWidget(button)
            self.buttons.append(button)
        self.suggestions.addStretch(1)
        self._mark(read.fix)
        self.completeChanged.emit()

    def _mark(self, fix: typed_phrase.Word | None) -> None:
        """A wavy red line under the word that is not in the list, where it was typed."""
        marks = []
        if fix is not None:
            mark = QTextEdit.ExtraSelection()
            mark.cursor = QTextCursor(self.text.document())
            mark.cursor.setPosition(fix.start)
            mark.cursor.setPosition(fix.end, QTextCursor.MoveMode.KeepAnchor)
            mark.format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
            mark.format.setUnderlineColor(QColor(ERROR_COLOUR))
            marks.append(mark)
        self.text.setExtraSelections(marks)

    def use(self, word: str) -> None:
        """Put the suggested ``word`` in place of the word that is not in the list."""
        fix = self.read.fix
        if fix is None:
            return
        text = typed_phrase.replaced(self.text.toPlainText(), fix, word)
        self.text.setPlainText(text)
        cursor = self.text.textCursor()
        cursor.setPosition(fix.start + len(word))
        self.text.setTextCursor(cursor)
        self.text.setFocus()

    def isComplete(self) -> bool:
        return self.read.ok

    def validatePage(self) -> bool:
        wizard = self.wizard()
        made = make_profile(self.error, wizard.home, lambda: firstrun.recover(
            wizard.profile, self.text.toPlainText(), wizard.device_name()))  # fmt: skip
        if made is None:
            return False
        wizard.owner_id = made["owner_id"]
        self.text.clear()  # the phrase is not kept on screen
        wizard.identity_made()
        return True
