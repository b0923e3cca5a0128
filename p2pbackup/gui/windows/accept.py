"""Accept an invite: type the friend's code (case, spaces and dashes forgiven, words
completed from the word list), then the daemon's ``join`` job pairs, and the dialog says
with whom and the space given both ways, or why not in plain words, by error class."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QStringListModel, Qt, QTimer
from PySide6.QtWidgets import (
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from p2pbackup import errors
from p2pbackup.core.wordlist import WORDS
from p2pbackup.gui.models import code as codes
from p2pbackup.gui.windows.pairing import (
    OfferField,
    PairingJob,
    add_cancel_close,
    offer_close,
    open_single,
    paired_text,
)


class WordCompleter(QCompleter):
    """Completes the word being typed, not the whole line, and adds the next separator."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.words = QStringListModel(list(WORDS), self)  # owned here: Qt would not keep it
        self.setModel(self.words)
        self.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setModelSorting(QCompleter.ModelSorting.CaseSensitivelySortedModel)
        self.setMaxVisibleItems(8)

    def splitPath(self, path: str) -> list[str]:
        part = codes.last_part(path)
        # Nothing to complete after a separator or in the number: no list of 2048 words.
        return [part] if part and not part.isdigit() else ["\x00"]

    def pathFromIndex(self, index) -> str:
        # The text as typed: the field's own text already shows a highlighted word.
        return codes.complete(self.completionPrefix(), str(index.data()))


class AcceptDialog(QDialog):
    def __init__(self, home: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.job: PairingJob | None = None
        self.spent = ""  # a code the daemon said no longer works: not sent again
        self.setWindowTitle(self.tr("Accept an invite"))
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 70)
        self.setAccessibleName(self.tr("Accept an invite"))
        intro = QLabel(self.tr(
            "Your friend chose “Invite a friend…” in their p2pbackup and gave you a code. "
            "Type it here while their invite is open."))
        intro.setWordWrap(True)
        self.code = QLineEdit()
        self.code.setPlaceholderText(codes.EXAMPLE)
        self.code.setAccessibleName(self.tr("Invite code"))
        font = self.code.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)  # read from a phone or a note: big
        self.code.setFont(font)
        self.code.setCompleter(WordCompleter(self.code))
        self.code.textChanged.connect(self._typed)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.offer = OfferField()
        self.offer.ask_default(home)
        self.peer = QLineEdit()
        self.peer.setAccessibleName(self.tr("Friend's address (only if they gave you one)"))
        self.peer.setPlaceholderText(self.tr("optional"))
        self.peer.setToolTip(self.tr(
            "On the same network, or with a rendezvous point, the code is enough. From "
            "elsewhere, your friend's invite window shows an address starting with /ip4/."))
        form = QFormLayout()
        for text, field in ((self.tr("Invite &code:"), self.code),
                            (self.tr("&Space you give this friend:"), self.offer),
                            (self.tr("Friend's a&ddress:"), self.peer)):  # fmt: skip
            label = QLabel(text)
            label.setBuddy(field)
            form.addRow(label, field)
            if field is self.code:
                form.addRow("", self.hint)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # no steps to count: a search, then a handshake
        self.busy.setAccessibleName(self.tr("Pairing"))
        self.busy.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.pair = self.buttons.addButton(self.tr("&Pair"),
                                           QDialogButtonBox.ButtonRole.AcceptRole)  # fmt: skip
        self.pair.clicked.connect(self.start)
        self.cancel_button, self.close_button = add_cancel_close(self, self.buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.busy)
        layout.addWidget(self.status, 1)
        layout.addWidget(self.buttons)
        self.offer.editTextChanged.connect(self._typed)
        self.pair.setDefault(True)
        self.code.setFocus()
        self._typed()

    def _typed(self) -> None:
        state = codes.check(self.code.text())
        if state.code is not None and state.code == self.spent:
            state = codes.CodeState(None, self.tr("This code no longer works: type the new "
                                                  "one your friend makes."), True)  # fmt: skip
        self.hint.setText(state.hint)
        palette = self.hint.palette()
        role = self.hint.foregroundRole()
        palette.setColor(role, self.palette().color(role))
        if state.wrong:
            palette.setColor(role, Qt.GlobalColor.darkRed)
        self.hint.setPalette(palette)
        running = self.job is not None and self.job.running
        self.pair.setEnabled(bool(state.code) and self.offer.given() is not None and not running)

    def start(self) -> None:
        state = codes.check(self.code.text())
        given = self.offer.given()
        if state.code is None or given is None or (self.job is not None and self.job.running):
            return
        params = {"code": state.code, "offer": given, "peer": self.peer.text().strip() or None}
        self.job = PairingJob(self.home, "join", params, self)
        self.job.result.connect(self._paired)
        self.job.failed.connect(self._failed)
        self.job.finished.connect(self._ended)
        for field in (self.code, self.offer, self.peer):
            field.setEnabled(False)
        self.busy.show()
        self.status.setText(self.tr("Looking for your friend's computer and pairing… This "
                                    "takes a few seconds."))  # fmt: skip
        self.job.start()
        self._typed()

    def _paired(self, result: dict) -> None:
        self.status.setText(paired_text(result))
        self.hint.hide()
        QTimer.singleShot(0, self, self.adjustSize)  # the longer text, whole
        self.pair.hide()
        offer_close(self.cancel_button, self.close_button)

    def _failed(self, exc: errors.P2PBackupError) -> None:
        self.status.setText(failure_text(exc, bool(self.peer.text().strip())))
        QTimer.singleShot(0, self, self.adjustSize)
        if isinstance(exc, errors.InviteMismatch | errors.InviteNotHere):
            self.spent = codes.check(self.code.text()).code or ""  # tried: it is used up
        self._typed()

    def _ended(self) -> None:
        self.busy.hide()
        if self.close_button.isVisible():
            return  # paired: nothing more to type
        for field in (self.code, self.offer, self.peer):
            field.setEnabled(True)
        self._typed()
        self.code.setFocus()

    def reject(self) -> None:
        if self.job is not None:
            self.job.cancel()
        super().reject()


def _tr(text: str) -> str:
    return QCoreApplication.translate("AcceptDialog", text)


def failure_text(exc: errors.P2PBackupError, address_given: bool = False) -> str:
    """Why pairing did not happen, for people, by the error's class (never its words)."""
    tr = _tr
    if isinstance(exc, errors.InviteMismatch):
        return tr("That code does not match your friend's invite: a word was probably "
                  "mistyped. For safety the code now no longer works: ask your friend for "
                  "a new one, and check it together, word by word.")  # fmt: skip
    if isinstance(exc, errors.InviteNotHere):
        return tr("No invite with this code is waiting: it was used already, it expired (a "
                  "code works for 10 minutes), or the number at its start is mistyped. Ask "
                  "your friend to make a new code.")  # fmt: skip
    if isinstance(exc, errors.PairingError):
        return tr("Pairing did not finish: %1\nAsk your friend for a new code and try "
                  "again.").replace("%1", exc.message)  # fmt: skip
    if isinstance(exc, errors.PeerError):
        return tr("Your friend's computer could not be reached. Check that their invite "
                  "window is still open; if they are on another network, type the address "
                  "it shows under “Friend's address”.\n\n%1").replace("%1", exc.message)
    if isinstance(exc, errors.ConfigError) and address_given:
        return tr("The friend's address is not usable. Copy it again from your friend's "
                  "invite window, or leave it empty on the same network.\n\n%1").replace(
                      "%1", exc.message)  # fmt: skip
    if isinstance(exc, errors.ConfigError):
        return tr("p2pbackup does not know where to look for your friend: nobody running "
                  "p2pbackup was found on this network. Type the address your friend's "
                  "invite window shows under “Friend's address”.\n\n%1").replace(
                      "%1", exc.message)  # fmt: skip
    return exc.message


def open_accept(home: str, parent: QWidget | None) -> AcceptDialog:
    """Show the accept dialog, or bring forward the one already open."""
    return open_single(AcceptDialog, home, parent)
