"""What the Invite and Accept dialogs share: the space-to-give field, a pairing job that
can be cancelled, and the words for the outcome."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QPushButton, QWidget

from p2pbackup import errors
from p2pbackup.core.sizes import format_size, parse_size
from p2pbackup.gui.bridge import Request

DEFAULT_OFFER = "20 GiB"  # as the CLI's invite and join (cli/friends.py)
OFFERS = ("5 GiB", "10 GiB", "20 GiB", "50 GiB", "100 GiB", "250 GiB")


def _tr(text: str) -> str:
    return QCoreApplication.translate("pairing", text)


class OfferField(QComboBox):
    """The space to give the new friend: a choice of sizes, or any size typed (500M, 1T)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.addItems(OFFERS)
        self.setCurrentText(DEFAULT_OFFER)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setAccessibleName(_tr("Space you give this friend"))
        self.setToolTip(_tr("Space on this computer for your friend's encrypted backup. "
                            "You can change it later in the Friends tab."))  # fmt: skip

    def ask_default(self, home: str) -> None:
        """Show the space the person chose for new friends (the first run asks it; the
        ``offer`` settings job), unless they have typed another meanwhile."""
        shown = self.currentText()
        request = Request(home, "offer", {}, self)

        def _answer(answer: object) -> None:
            offer = answer.get("offer") if isinstance(answer, dict) else None
            if isinstance(offer, int) and offer > 0 and self.currentText() == shown:
                self.setCurrentText(format_size(offer))

        request.result.connect(_answer)
        request.start()

    def given(self) -> int | None:
        """The bytes typed, or None when the text is not a size."""
        try:
            return parse_size(self.currentText())
        except errors.ConfigError:
            return None


def add_cancel_close(dialog: QDialog, buttons: QDialogButtonBox) -> tuple[QPushButton, QPushButton]:
    """Cancel while pairing, and in its place Close once it is over (``offer_close``)."""
    cancel = buttons.addButton(_tr("&Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
    cancel.clicked.connect(dialog.reject)
    close = buttons.addButton(_tr("C&lose"), QDialogButtonBox.ButtonRole.RejectRole)
    close.clicked.connect(dialog.reject)
    close.hide()
    return cancel, close


def offer_close(cancel: QPushButton, close: QPushButton) -> None:
    """Pairing is over: nothing left to cancel, Close is the default."""
    cancel.hide()
    close.show()
    close.setDefault(True)
    close.setFocus()


Dialog = TypeVar("Dialog", bound=QDialog)


def open_single(kind: type[Dialog], home: str, parent: QWidget | None) -> Dialog:
    """Show a ``kind(home, parent)`` dialog, or bring forward the one already open."""
    dialog = parent.findChild(kind) if parent is not None else None
    if dialog is None or not dialog.isVisible():
        dialog = kind(home, parent)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def paired_text(result: dict) -> str:
    """The ``invite``/``join`` result (daemon/pairing.py ``_paired``), for people."""
    name = str(result.get("name") or _tr("your friend"))
    return (
        _tr("You and %1 are now friends.\n\nYou give %1 %2 for their backup; %1 gives you "
            "%3 for yours. Your backups are encrypted before they leave: neither of you can "
            "read the other's files.")
        .replace("%1", name)
        .replace("%2", format_size(int(result.get("i_give") or 0)))
        .replace("%3", format_size(int(result.get("they_give") or 0)))
    )  # fmt: skip


class PairingJob(QObject):
    """One ``invite`` or ``join`` job, which ``cancel`` stops in the daemon (a hang-up
    alone would leave it running: docs/format.md, "Control socket")."""

    event = Signal(dict)
    result = Signal(dict)
    failed = Signal(object)  # a P2PBackupError of the daemon's kind
    finished = Signal()

    def __init__(self, home: str, job: str, params: dict, parent: QObject | None = None):
        super().__init__(parent)
        self.home = home
        self.job_id: int | None = None
        self.running = False
        self.cancelled = False
        self._request = Request(home, job, params, self)
        self._request.message.connect(self._message)
        self._request.event.connect(lambda event, _job: self.event.emit(event))
        self._request.result.connect(self._result)
        self._request.failed.connect(self._failed)
        self._request.no_daemon.connect(lambda: self._failed(errors.PeerError(_tr(
            "The backup service is not running, so nothing can be paired now."))))
        self._request.lost.connect(lambda: self._failed(errors.PeerError(_tr(
            "The backup service stopped before pairing finished. Try again once it runs."))))
        self._request.finished.connect(self._finished)

    def start(self) -> PairingJob:
        self.running = True
        self._request.start()
        return self

    def cancel(self) -> None:
        """Stop the job in the daemon (an invite's code is withdrawn), and stop listening."""
        if not self.running:
            return
        self.cancelled = True
        if self.job_id is None:  # asked before the daemon said the job's id: cancel then
            self.setParent(QCoreApplication.instance())  # outlives the dialog, closed at once
            return
        # Owned by the application: it outlives a dialog closed at once.
        Request(self.home, "cancel", {"id": self.job_id}, QCoreApplication.instance()).start()
        self._request.abort()

    def _message(self, message: dict) -> None:
        job = message.get("job")
        if isinstance(job, dict) and isinstance(job.get("id"), int):
            self.job_id = job["id"]
            if self.cancelled:
                self.cancel()

    def _result(self, value: object) -> None:
        if not self.cancelled:
            self.result.emit(value if isinstance(value, dict) else {})

    def _failed(self, exc: errors.P2PBackupError) -> None:
        if not self.cancelled and not isinstance(exc, errors.JobCancelled):
            self.failed.emit(exc)

    def _finished(self) -> None:
        self.running = False
        self.finished.emit()
        if self.cancelled and self.parent() is QCoreApplication.instance():
            self.deleteLater()
