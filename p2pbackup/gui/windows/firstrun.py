"""First run: the wizard that makes the profile when there is none yet.

    new identity   Welcome (Create) → the 24 words → three asked back → folders and space
    recovery       Welcome → the phrase (Recover) → find friends and restore → folders and space

The identity is made by the first-run functions of daemon/firstrun.py, in this process:
no daemon can run before a profile exists. From then on the daemon runs (the app is
started as usual, ``identity_ready``), and everything else goes through it: the words
asked back are checked by its ``confirm_phrase`` job, folders and the space given to
friends by its settings jobs, so it stays the one writer of the profile's settings.
``start(app)`` is what the app calls: the wizard if the profile does not exist, else the
app at once.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from PySide6.QtCore import QSysInfo, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from p2pbackup.core.sizes import format_size, parse_size
from p2pbackup.daemon import firstrun
from p2pbackup.errors import ConfigError
from p2pbackup.gui.actions import Actions
from p2pbackup.gui.bridge import Watch
from p2pbackup.gui.icons import app_icon
from p2pbackup.gui.models.settings import SettingsModel
from p2pbackup.gui.supervisor import Service, Supervisor
from p2pbackup.gui.windows.firstrun_phrase import (
    ConfirmPage,
    RecoverPage,
    WordsPage,
    make_profile,
)
from p2pbackup.gui.windows.folders import FolderPicker
from p2pbackup.storage.profile import Profile

if TYPE_CHECKING:
    from p2pbackup.gui.app import App

GIB = 1 << 30
OFFERS = (5 * GIB, 10 * GIB, 20 * GIB, 50 * GIB, 100 * GIB)


class Page(enum.IntEnum):
    WELCOME = 0
    WORDS = 1
    CONFIRM = 2
    RECOVER = 3
    FRIENDS = 4
    FOLDERS = 5


class FirstRunWizard(QWizard):
    identity_ready = Signal()  # the profile exists now: its daemon can start
    service_changed = Signal()  # the daemon came, went, or could not start

    def __init__(self, home: str, watch: Watch, actions: Actions,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.home, self.actions = home, actions
        self.profile = Profile(home)
        self.settings = SettingsModel(home, watch, self)
        self.settings.changed.connect(self.service_changed)
        self.supervisor: Supervisor | None = None
        self.phrase = ""  # a new identity's words, while the wizard shows them
        self.owner_id = ""
        self.closing: QMessageBox | None = None  # the question before closing, while it shows
        self.setWindowTitle(self.tr("Welcome to p2pbackup"))
        self.setWindowIcon(app_icon())
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        for button, text in (
            (QWizard.WizardButton.BackButton, self.tr("< &Back")),
            (QWizard.WizardButton.NextButton, self.tr("&Next >")),
            (QWizard.WizardButton.FinishButton, self.tr("&Finish")),
            (QWizard.WizardButton.CancelButton, self.tr("&Cancel")),
        ):
            self.setButtonText(button, text)  # fmt: skip
        self.welcome = WelcomePage()
        self.words = WordsPage()
        self.confirm = ConfirmPage()
        self.recover = RecoverPage()
        self.friends = FriendsPage()
        self.folders = FoldersPage()
        for page_id, page in (
            (Page.WELCOME, self.welcome),
            (Page.WORDS, self.words),
            (Page.CONFIRM, self.confirm),
            (Page.RECOVER, self.recover),
            (Page.FRIENDS, self.friends),
            (Page.FOLDERS, self.folders),
        ):
            self.setPage(page_id, page)  # fmt: skip
        self.setStartId(Page.WELCOME)

    def nextId(self) -> int:
        """The two ways through, in one place (the module's docstring draws them)."""
        current = self.currentId()
        if current == Page.WELCOME:
            return Page.WORDS if self.welcome.new.isChecked() else Page.RECOVER
        return {Page.WORDS: Page.CONFIRM, Page.CONFIRM: Page.FOLDERS, Page.RECOVER: Page.FRIENDS,
                Page.FRIENDS: Page.FOLDERS}.get(current, -1)  # fmt: skip

    def follow(self, supervisor: Supervisor) -> None:
        """Say why the daemon is not there when it could not start (the app's supervisor)."""
        self.supervisor = supervisor
        supervisor.changed.connect(self.service_changed)

    def waiting(self) -> str:
        """Why the pages that need the daemon wait ("" when it runs)."""
        if self.settings.running:
            return ""
        if self.supervisor is not None and self.supervisor.state is Service.STOPPED:
            return self.supervisor.problem or self.tr("The backup service is not running.")
        return self.tr("Starting the backup service…")

    def device_name(self) -> str | None:
        return self.welcome.name.text().strip() or None

    def identity_made(self) -> None:
        self.identity_ready.emit()

    def forget(self) -> None:
        """The phrase leaves memory and the screen."""
        self.phrase = ""
        self.words.forget()

    def reject(self) -> None:
        """Cancel. Before the words were checked, the phrase would be lost: ask first (a
        window-modal question, answered later: ``reject`` itself never waits)."""
        if self.phrase and not self.confirm.confirmed:
            if self.closing is None:
                box = self.closing = QMessageBox(
                    QMessageBox.Icon.Warning,
                    self.tr("Close without checking?"),
                    self.tr(
                        "Your recovery phrase is shown only now. If you have not written it "
                        "down, do it before you close: without it, your backups cannot be "
                        "recovered when this computer is lost.\n\nClose anyway?"
                    ),
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                    self,
                )
                box.setDefaultButton(QMessageBox.StandardButton.No)
                box.finished.connect(self._close_answered)
                box.open()
            return
        self.forget()
        super().reject()

    def _close_answered(self, answer: int) -> None:
        box, self.closing = self.closing, None
        if box is not None:
            box.deleteLater()
        if answer == QMessageBox.StandardButton.Yes:
            self.forget()
            super().reject()

    def done(self, result: int) -> None:
        self.forget()
        super().done(result)


class WelcomePage(QWizardPage):
    """New identity or recovery, and this computer's name as friends will see it. With a
    new identity, Next is Create: the identity is made, and there is no way back."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Welcome to p2pbackup"))
        self.setSubTitle(
            self.tr(
                "p2pbackup keeps an encrypted copy of your files on your friends' computers, and "
                "theirs on yours. Nobody but you can read your copy."
            )
        )
        self.new = QRadioButton(self.tr("&Start backing up this computer (the first time)"))
        self.recovering = QRadioButton(
            self.tr("&Recover my backups with my recovery phrase (a lost or new computer)")
        )
        self.new.setChecked(True)
        new_why = self._hint(
            self.tr(
                "You get a recovery phrase of 24 words to write down: with it, you can get your "
                "files back even if this computer is lost."
            )
        )
        recover_why = self._hint(
            self.tr(
                "Type the 24 words you wrote down when you started; your friends still keep "
                "your backups."
            )
        )
        self.name = QLineEdit(QSysInfo.machineHostName())
        self.name.setAccessibleName(self.tr("This computer's name"))
        self.name.setMaxLength(firstrun.MAX_DEVICE_NAME)
        name_label = QLabel(self.tr("&This computer's name, as friends see it:"))
        name_label.setBuddy(self.name)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setAccessibleName(self.tr("Problem"))
        form = QFormLayout()
        form.addRow(name_label, self.name)
        layout = QVBoxLayout(self)
        layout.addWidget(self.new)
        layout.addWidget(new_why)
        layout.addSpacing(6)
        layout.addWidget(self.recovering)
        layout.addWidget(recover_why)
        layout.addSpacing(12)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addStretch(1)
        self.new.toggled.connect(self._chosen)
        self.setButtonText(QWizard.WizardButton.CommitButton, self.tr("&Create >"))
        self._chosen()

    def wizard(self) -> FirstRunWizard:
        return super().wizard()  # type: ignore[return-value]

    def _hint(self, text: str) -> QLabel:
        """A line under a choice, indented to its words."""
        label = QLabel(text)
        label.setWordWrap(True)
        label.setContentsMargins(24, 0, 0, 0)
        return label

    def _chosen(self) -> None:
        self.setCommitPage(self.new.isChecked())  # recovery commits on its own page

    def validatePage(self) -> bool:
        if not self.new.isChecked():
            return True
        wizard = self.wizard()
        made = make_profile(self.error, wizard.home,
                            lambda: firstrun.create_identity(wizard.profile, wizard.device_name()))
        if made is None:
            return False
        wizard.phrase, wizard.owner_id = made["recovery_phrase"], made["owner_id"]
        wizard.identity_made()
        return True


class FriendsPage(QWizardPage):
    """After a recovery: the backups are with friends; become friends again, then restore."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Find your friends and restore"))
        self.setSubTitle(self.tr("Your backups are safe with your friends. To get them back "
                                 "on this computer:"))  # fmt: skip
        steps = QLabel(
            self.tr(
                "1. Ask one of your friends for an invite code: in their p2pbackup, "
                "“Invite a friend…”. Accept it here.\n"
                "2. Once you are friends again, restore your files.\n\n"
                "You can also do both later, from p2pbackup's menu."
            )
        )
        steps.setWordWrap(True)
        self.who = QLabel()
        self.who.setWordWrap(True)
        self.who.setAccessibleName(self.tr("Recovered identity"))
        self.accept = QPushButton(self.tr("&Accept an invite…"))
        self.restore = QPushButton(self.tr("R&estore…"))
        self.waiting = QLabel()
        self.waiting.setAccessibleName(self.tr("Backup service"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.accept)
        buttons.addWidget(self.restore)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.who)
        layout.addWidget(steps)
        layout.addLayout(buttons)
        layout.addWidget(self.waiting)
        layout.addStretch(1)
        self._wired = False

    def wizard(self) -> FirstRunWizard:
        return super().wizard()  # type: ignore[return-value]

    def initializePage(self) -> None:
        from p2pbackup.core.keys import owner_fingerprint

        wizard = self.wizard()
        if wizard.owner_id:
            self.who.setText(
                self.tr("Your backup identity %1 is back on this computer.").replace(
                    "%1", owner_fingerprint(bytes.fromhex(wizard.owner_id))
                )
            )
        if not self._wired:  # initializePage runs again after Back
            self._wired = True
            self.accept.clicked.connect(wizard.actions.accept.trigger)
            self.restore.clicked.connect(wizard.actions.restore.trigger)
            wizard.service_changed.connect(self._follow)
        self._follow()

    def _follow(self) -> None:
        running = self.wizard().settings.running
        self.accept.setEnabled(running)
        self.restore.setEnabled(running)
        self.waiting.setText(self.wizard().waiting())


class OfferField(QComboBox):
    """The space to give each new friend: a choice of sizes, or one typed (500M, 1T)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.addItems([format_size(size) for size in OFFERS])
        self.setAccessibleName(self.tr("Space to give each friend"))
        self.lineEdit().setAccessibleName(self.accessibleName())

    def given(self) -> int | None:
        try:
            return parse_size(self.currentText())
        except ConfigError:
            return None


class FoldersPage(QWizardPage):
    """The folders to back up and the space each new friend is given, through the daemon."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("What to back up"))
        self.setSubTitle(
            self.tr(
                "Choose the folders to back up, and how much space on this computer each friend "
                "may use for their backup. You can change both later."
            )
        )
        self.picker: FolderPicker | None = None
        self.offer = OfferField()
        offer_label = QLabel(self.tr("S&pace to give each friend:"))
        offer_label.setBuddy(self.offer)
        self.offer.editTextChanged.connect(self.completeChanged)
        offer_why = QLabel(
            self.tr(
                "Each friend gives you space for your backup in return; you agree on it with "
                "each of them when you become friends."
            )
        )
        offer_why.setWordWrap(True)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setAccessibleName(self.tr("Notice"))
        form = QFormLayout()
        form.addRow(offer_label, self.offer)
        self.layout_ = QVBoxLayout(self)
        self.layout_.addLayout(form)
        self.layout_.addWidget(offer_why)
        self.layout_.addWidget(self.notice)
        self._offer_shown = False

    def wizard(self) -> FirstRunWizard:
        return super().wizard()  # type: ignore[return-value]

    def initializePage(self) -> None:
        settings = self.wizard().settings
        if self.picker is None:
            self.picker = FolderPicker(settings)
            self.layout_.insertWidget(0, self.picker, 1)
            self.wizard().service_changed.connect(self._follow)
        if self.wizard().owner_id and self.wizard().phrase == "":  # recovered
            self.setSubTitle(
                self.tr(
                    "Choose the folders to back up from now on, and how much space each friend "
                    "may use on this computer. If you are about to restore, you can choose the "
                    "folders afterwards, from the Folders and schedule tab."
                )
            )
        self._follow()

    def _follow(self) -> None:
        settings = self.wizard().settings
        if not self._offer_shown and "offer" in settings.values:
            self.offer.setCurrentText(format_size(int(settings.values["offer"])))
            self._offer_shown = True
        lines = []
        if not settings.running:
            lines.append(self.wizard().waiting())
        if settings.refusal:
            lines.append(settings.refusal)
        if self.offer.given() is None:
            lines.append(self.tr("Write the space as a size, such as 20 GiB or 500 MiB."))
        self.notice.setText("\n".join(lines))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        settings = self.wizard().settings
        return settings.running and "offer" in settings.values and self.offer.given() is not None

    def validatePage(self) -> bool:
        settings, given = self.wizard().settings, self.offer.given()
        if given is not None and given != settings.values.get("offer"):
            settings.change("offer", {"size": given})
        return True


def start(app: App) -> FirstRunWizard | None:
    """Start ``app`` for its profile: at once if the profile exists, else once the first-run
    wizard has made it (the wizard stays on top; cancelled before that, the app quits)."""
    if Profile(app.home).exists:
        app.start()
        return None
    wizard = FirstRunWizard(app.home, app.watch, app.actions)
    wizard.follow(app.supervisor)
    app.first_run = wizard  # kept while the app lives: its last requests belong to it

    def identity_ready() -> None:
        app.start()
        wizard.raise_()  # over the main window, which opens where there is no tray
        wizard.activateWindow()

    def finished(_result: int) -> None:
        if not Profile(app.home).exists:
            app.quit()  # cancelled before an identity was made: nothing to run
        else:
            app.window.bring_forward()  # started hidden looks "not running" (Vorta #132)

    wizard.identity_ready.connect(identity_ready)
    wizard.finished.connect(finished)
    wizard.show()
    return wizard
