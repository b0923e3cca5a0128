"""Small widget helpers shared by the windows."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QCoreApplication, QStringListModel, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QCompleter, QFormLayout, QLabel, QLineEdit, QPushButton, QWidget

from p2pbackup.core.wordlist import WORDS

ERROR_COLOUR = "#d93025"  # a red that reads on light and on dark backgrounds


def action_button(action: QAction, parent: QWidget | None = None) -> QPushButton:
    """A push button (the platform's look, unlike a tool button) that follows ``action``:
    its text, whether it is enabled, and what a click does."""
    button = QPushButton(action.text(), parent)

    def _follow() -> None:
        button.setText(action.text())
        button.setEnabled(action.isEnabled())
        button.setToolTip(action.toolTip() if action.toolTip() != action.text().replace("&", "")
                          else "")  # fmt: skip

    action.changed.connect(_follow)
    button.clicked.connect(action.trigger)
    _follow()
    return button


def error_label() -> QLabel:
    """A wrapping label for what went wrong, in the error colour."""
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {ERROR_COLOUR}")
    label.setAccessibleName(QCoreApplication.translate("firstrun", "Problem"))
    return label


class PhraseWords(QWidget):
    """Words of the recovery phrase asked back at given positions (from 1), a field each
    that completes words of the list; ``changed`` at every keystroke."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._form = QFormLayout(self)
        self._form.setContentsMargins(0, 0, 0, 0)
        self.fields: dict[int, QLineEdit] = {}

    def ask(self, positions: Iterable[int]) -> None:
        for at in positions:
            field = QLineEdit()
            field.setAccessibleName(self.tr("Word %1 of your phrase").replace("%1", str(at)))
            completer = QCompleter(QStringListModel(list(WORDS)), field)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            completer.setCompletionMode(QCompleter.CompletionMode.InlineCompletion)
            field.setCompleter(completer)
            field.textChanged.connect(self.changed)
            self.fields[at] = field
            self._form.addRow(self.tr("Word %1:").replace("%1", str(at)), field)

    def filled(self) -> bool:
        return bool(self.fields) and all(f.text().strip() for f in self.fields.values())

    def words(self) -> dict[str, str]:
        """What ``confirm_phrase`` takes: the typed word at each position."""
        return {str(at): field.text() for at, field in self.fields.items()}
