"""Backup ▸ Check my recovery phrase…: three words of the phrase asked back, after the
first run, for a person who left the wizard before its check (the Overview reminds them).

The daemon chooses the positions (``phrase_challenge``) and checks the words
(``confirm_phrase``): a wrong word is named by its position, never corrected, and the
phrase itself never reaches the app.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from p2pbackup.gui.bridge import Request
from p2pbackup.gui.widgets import PhraseWords, error_label
from p2pbackup.gui.windows.pairing import open_single


class CheckPhraseDialog(QDialog):
    """One page: the words at the daemon's positions, Check, and what the daemon said."""

    confirmed = Signal()  # the daemon recorded that the phrase is written down

    def __init__(self, home: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.setWindowTitle(self.tr("Check your recovery phrase"))
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 60)  # a sentence a line
        intro = QLabel(self.tr("Take your copy of the 24 words and type the words it has at "
                               "these places."))  # fmt: skip
        intro.setWordWrap(True)
        self.words = PhraseWords()
        self.words.changed.connect(self._typed)
        self.error = error_label()
        self.said = QLabel()
        self.said.setWordWrap(True)
        self.said.setAccessibleName(self.tr("Check result"))
        buttons = QDialogButtonBox()
        self.check = QPushButton(self.tr("&Check"))
        self.check.setDefault(True)
        self.check.clicked.connect(self.send)
        self.close_button = QPushButton(self.tr("C&lose"))
        self.close_button.clicked.connect(self.reject)
        buttons.addButton(self.check, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.close_button, QDialogButtonBox.ButtonRole.RejectRole)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.words)
        layout.addWidget(self.error)
        layout.addWidget(self.said)
        layout.addStretch(1)
        layout.addWidget(buttons)
        self._asking: Request | None = None
        self._ask("phrase_challenge", {}, self._positions)

    def _ask(self, job: str, params: dict, done) -> None:
        request = self._asking = Request(self.home, job, params, self)
        request.result.connect(done)
        request.failed.connect(lambda exc: self.error.setText(exc.message))
        request.no_daemon.connect(lambda: self.error.setText(
            self.tr("The backup service is not running. Try again in a moment.")))  # fmt: skip
        request.lost.connect(lambda: self.error.setText(
            self.tr("The backup service stopped before it answered. Try again in a moment.")))
        request.finished.connect(self._answered)
        request.start()
        self._update()

    def _positions(self, result: object) -> None:
        positions = result.get("positions") if isinstance(result, dict) else None
        self.words.ask(positions or [])
        if self.words.fields:
            next(iter(self.words.fields.values())).setFocus()

    def _typed(self) -> None:
        self.error.clear()
        self._update()

    def _answered(self) -> None:
        self._asking = None
        self._update()

    def _update(self) -> None:
        self.check.setEnabled(self._asking is None and self.words.filled())

    def send(self) -> None:
        """The words to the daemon, which says whether they are the phrase's."""
        self.error.clear()
        self._ask("confirm_phrase", {"words": self.words.words()}, self._right)

    def _right(self, _result: object) -> None:
        for field in self.words.fields.values():
            field.clear()
            field.setEnabled(False)
        self.said.setText(self.tr("Your copy is right. Keep it somewhere safe, away from "
                                  "this computer."))  # fmt: skip
        self.close_button.setFocus()
        self.confirmed.emit()


def open_check_phrase(home: str, parent: QWidget | None) -> CheckPhraseDialog:
    """Show the dialog, or bring forward the one already open."""
    return open_single(CheckPhraseDialog, home, parent)
