"""Invite a friend: make a one-time code, show it large with a countdown and what the
friend does with it, then who was paired and the space given both ways.

The daemon's ``invite`` job (daemon/pairing.py) sends ``InviteReady`` with the code as
soon as it exists, and answers once a friend paired, or fails (the code expired, or
someone tried it and it did not match). Cancel stops the job: the code is withdrawn.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from p2pbackup import errors
from p2pbackup.gui.windows.pairing import (
    OfferField,
    PairingJob,
    add_cancel_close,
    offer_close,
    open_single,
    paired_text,
)

MINUTES = 10  # how long a code lasts (core.pairing.DEFAULT_VALIDITY, without spake2's import)


def countdown(seconds: float) -> str:
    """``9:05``: minutes and seconds left, never negative."""
    left = max(0, int(seconds + 0.999))  # 0.2 s left still shows 0:01
    return f"{left // 60}:{left % 60:02d}"


class InviteDialog(QDialog):
    def __init__(self, home: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.job: PairingJob | None = None
        self.code = ""
        self.expires_at = 0.0  # time.monotonic() when the code stops working
        self.setWindowTitle(self.tr("Invite a friend"))
        self.setAccessibleName(self.tr("Invite a friend"))
        # One page shown at a time; hidden widgets rather than a QStackedWidget, whose size
        # does not follow wrapped text (the instructions were cut off).
        self.pages = [self._offer_page(), self._code_page(), self._end_page()]
        self.buttons = QDialogButtonBox()
        self.make = self.buttons.addButton(self.tr("&Make a code"),
                                           QDialogButtonBox.ButtonRole.AcceptRole)  # fmt: skip
        self.make.clicked.connect(self.start)
        self.cancel_button, self.close_button = add_cancel_close(self, self.buttons)
        layout = QVBoxLayout(self)
        for page in self.pages:
            layout.addWidget(page)
        layout.addWidget(self.buttons)
        self.show_page(0)
        self.ticker = QTimer(self, interval=1000, timeout=self._tick)
        self.make.setDefault(True)
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 64)  # wrapped text reads

    # ---- the pages

    def _offer_page(self) -> QWidget:
        page = QWidget()
        intro = QLabel(self.tr(
            "A friend keeps an encrypted copy of part of your backup, and you keep part of "
            "theirs. p2pbackup makes a code that works once, for %1 minutes: give it to your "
            "friend, by phone or in person, and they type it in their p2pbackup."
        ).replace("%1", str(MINUTES)))
        intro.setWordWrap(True)
        self.offer = OfferField()
        self.offer.ask_default(self.home)
        form = QFormLayout()
        offer_label = QLabel(self.tr("&Space you give this friend:"))
        offer_label.setBuddy(self.offer)
        form.addRow(offer_label, self.offer)
        self.offer.editTextChanged.connect(self._offer_changed)
        self.offer_error = QLabel()
        self.offer_error.setWordWrap(True)
        layout = QVBoxLayout(page)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.offer_error)
        layout.addStretch(1)
        return page

    def _code_page(self) -> QWidget:
        page = QWidget()
        self.waiting = QLabel(self.tr("Making a code…"))
        self.code_label = QLabel()
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 2.2)
        font.setBold(True)
        self.code_label.setFont(font)
        self.code_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.code_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.copy = QPushButton(self.tr("Co&py the code"))
        self.copy.clicked.connect(self._copy)
        self.copy.setEnabled(False)
        self.left = QLabel()
        self.left.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.how = QLabel()
        self.how.setWordWrap(True)
        self.how.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.address = ""
        self.copy_address = QPushButton(self.tr("Copy the &address"))
        self.copy_address.clicked.connect(self._copy_address)
        self.copy_address.hide()
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.copy)
        row.addWidget(self.copy_address)
        row.addStretch(1)
        layout = QVBoxLayout(page)
        layout.addWidget(self.waiting)
        layout.addWidget(self.code_label)
        layout.addWidget(self.left)
        layout.addLayout(row)
        layout.addWidget(self.how)
        layout.addStretch(1)
        return page

    def _end_page(self) -> QWidget:
        page = QWidget()
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(page)
        layout.addWidget(self.outcome)
        layout.addStretch(1)
        return page

    def show_page(self, shown: int) -> None:
        for number, page in enumerate(self.pages):
            page.setVisible(number == shown)
        self._fit()

    def _fit(self) -> None:
        """Fit the window to its text once the layout has taken the change in (a size
        asked at once is the old one: the instructions were cut off)."""
        QTimer.singleShot(0, self, self.adjustSize)

    # ---- what happens

    def _offer_changed(self) -> None:
        ok = self.offer.given() is not None
        self.make.setEnabled(ok)
        self.offer_error.setText("" if ok else self.tr(
            "Write the space as a size, such as 20 GiB, 500M or 1T."))

    def start(self) -> None:
        """Make the code: the daemon's ``invite`` job, which waits for the friend."""
        given = self.offer.given()
        if given is None or self.job is not None:
            return
        self.show_page(1)
        self.make.hide()
        self.expires_at = time.monotonic() + MINUTES * 60  # counted from before the daemon's
        self.job = PairingJob(self.home, "invite", {"offer": given, "minutes": MINUTES}, self)
        self.job.event.connect(self._event)
        self.job.result.connect(self._paired)
        self.job.failed.connect(self._failed)
        self.job.start()

    def _event(self, event: dict) -> None:
        if event.get("type") != "InviteReady":
            return
        self.code = str(event.get("code", ""))
        self.code_label.setText(self.code)
        self.code_label.setAccessibleName(self.tr("Invite code: %1").replace("%1", self.code))
        self.waiting.setText(self.tr("Give your friend this code:"))
        self.copy.setEnabled(True)
        how = self.tr(
            "Your friend opens p2pbackup on their computer, chooses “Accept an invite…”, "
            "and types this code. Capitals, spaces and dashes do not matter. Keep this "
            "window open until they have: closing it cancels the code.")
        addresses = [str(a) for a in event.get("addresses") or []]
        if not event.get("rendezvous") and addresses:  # the code alone finds us on the LAN only
            self.address = addresses[0]
            how += "\n\n" + self.tr(
                "If your friend is not on the same network as you, they also type this "
                "address under “Friend's address”:\n%1").replace("%1", self.address)
            self.copy_address.show()
        self.how.setText(how)
        self._fit()
        self._tick()
        self.ticker.start()

    def _tick(self) -> None:
        left = self.expires_at - time.monotonic()
        self.left.setText(self.tr("The code stops working in %1 (minutes:seconds).").replace(
            "%1", countdown(left)))
        if left <= 0:
            self.ticker.stop()

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code)
        self.copy.setText(self.tr("Co&pied"))

    def _copy_address(self) -> None:
        QGuiApplication.clipboard().setText(self.address)

    def _paired(self, result: dict) -> None:
        self._end(paired_text(result))

    def _failed(self, exc: errors.P2PBackupError) -> None:
        if time.monotonic() >= self.expires_at - 1:
            text = self.tr("The code expired before your friend used it. Make a new one "
                           "when they are ready.")  # fmt: skip
        elif isinstance(exc, errors.PairingError):  # someone tried the code: it is spent
            text = self.tr("Pairing did not work, and this code cannot be used again. Make a "
                           "new code and check it together, word by word.\n\nWhat happened: %1")
            text = text.replace("%1", exc.message)
        elif self.code:
            text = self.tr("The invite stopped.\n\n%1").replace("%1", exc.message)
        else:
            text = self.tr("No code could be made.\n\n%1").replace("%1", exc.message)
        self._end(text)

    def _end(self, text: str) -> None:
        self.ticker.stop()
        self.outcome.setText(text)
        self.show_page(2)
        offer_close(self.cancel_button, self.close_button)

    def reject(self) -> None:
        """Cancel and Esc and the window's close: a waiting code is withdrawn."""
        if self.job is not None:
            self.job.cancel()
        self.ticker.stop()
        super().reject()


def open_invite(home: str, parent: QWidget | None) -> InviteDialog:
    """Show the invite dialog, or bring forward the one already open."""
    return open_single(InviteDialog, home, parent)
