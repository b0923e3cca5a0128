"""The wizard that holds the pages and what they chose.

What the pages share lives here, not in QWizard fields: a snapshot, a ``Selection``
and a destination are objects, not strings. Cancel (or the window's close box) while
the files are being written stops the restore and keeps the wizard open to say what
was left; it closes the wizard only when nothing runs.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, QStandardPaths, Qt
from PySide6.QtWidgets import QWidget, QWizard

from p2pbackup.gui.models.snapshots import Snap
from p2pbackup.gui.models.tree import Selection
from p2pbackup.gui.windows.restore.destination_page import DestinationPage
from p2pbackup.gui.windows.restore.files_page import FilesPage
from p2pbackup.gui.windows.restore.progress_page import ProgressPage
from p2pbackup.gui.windows.restore.snapshot_page import SnapshotPage


class Page:
    SNAPSHOT, FILES, DESTINATION, PROGRESS = range(4)


def default_folder() -> str:
    home = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.HomeLocation)
    return os.path.join(home or os.path.expanduser("~"), "Restored from backup")


class RestoreWizard(QWizard):
    """``folders``: the folders this device backs up (``status``), for "Open folder"
    after a restore to where the files were."""

    def __init__(self, home: str, folders: list[str] | None = None,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.home = home
        self.folders = list(folders or [])
        self.snap: Snap | None = None
        self.selection = Selection()
        self.in_place = False
        self.folder = default_folder()
        self.overwrite = False  # replace newer files on disk too (the job's ``force``)
        self.only_missing = False  # leave every file on disk alone (``only_missing``)

        self.setWindowTitle(self.tr("Restore files"))
        self.setAccessibleName(self.tr("Restore files"))
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)  # the same on every platform
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        for button, text in ((QWizard.WizardButton.BackButton, self.tr("< &Back")),
                             (QWizard.WizardButton.NextButton, self.tr("&Next >")),
                             (QWizard.WizardButton.CommitButton, self.tr("&Restore")),
                             (QWizard.WizardButton.FinishButton, self.tr("&Close")),
                             (QWizard.WizardButton.CancelButton, self.tr("&Cancel"))):  # fmt: skip
            self.setButtonText(button, text)
        self.snapshot_page = SnapshotPage(self)
        self.files_page = FilesPage(self)
        self.destination_page = DestinationPage(self)
        self.progress_page = ProgressPage(self)
        for number, page in ((Page.SNAPSHOT, self.snapshot_page), (Page.FILES, self.files_page),
                             (Page.DESTINATION, self.destination_page),
                             (Page.PROGRESS, self.progress_page)):  # fmt: skip
            self.setPage(number, page)
        self.setStartId(Page.SNAPSHOT)

    def sizeHint(self) -> QSize:
        return QSize(760, 560)

    def reject(self) -> None:
        if self.progress_page.running:
            self.progress_page.stop()  # the page says when it has stopped; then Close
            return
        super().reject()


def open_restore(home: str, folders: list[str] | None, parent: QWidget | None) -> RestoreWizard:
    """The wizard, shown (not modal: the app goes on while a restore runs); the one already
    open is brought forward instead, so a second click does not start a second restore."""
    for wizard in parent.findChildren(RestoreWizard) if parent is not None else ():
        if wizard.isVisible():
            wizard.raise_()
            wizard.activateWindow()
            return wizard
    wizard = RestoreWizard(home, folders, parent)
    wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    wizard.show()
    return wizard
