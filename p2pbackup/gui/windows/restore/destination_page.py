"""Page 3: where to, and what to do with files already there.

Another folder is the default (nothing of yours is touched); the original place must be
chosen. Either way a file on disk that is newer than the backup's is kept unless the
person asks to replace everything (the ``restore`` job's ``force``), or to bring back
only what is missing (its ``only_missing``).
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWizardPage,
)

from p2pbackup.gui.models.snapshots import moment_text


class DestinationPage(QWizardPage):
    def __init__(self, wizard) -> None:
        super().__init__(wizard)
        self.setTitle(self.tr("Where to?"))
        self.setSubTitle(self.tr("Put the files in a folder of their own, or back where they "
                                 "came from."))  # fmt: skip
        self.setCommitPage(True)  # Next reads "Restore"; after it there is no going back

        self.elsewhere = QRadioButton(self.tr("In another &folder (your files where they are "
                                              "now stay as they are):"))  # fmt: skip
        self.original = QRadioButton(self.tr("Where they &were, in the folders they were "
                                             "backed up from"))  # fmt: skip
        self.folder = QLineEdit(wizard.folder)
        self.folder.setAccessibleName(self.tr("Folder to restore into"))
        self.browse = QPushButton(self.tr("Br&owse…"))
        self.browse.clicked.connect(self._browse)
        where = QButtonGroup(self)
        for button in (self.elsewhere, self.original):
            where.addButton(button)
        self.elsewhere.setChecked(True)
        for widget in (self.elsewhere, self.original):
            widget.toggled.connect(self._changed)
        self.folder.textChanged.connect(self._changed)

        self.keep_newer = QRadioButton(self.tr("&Keep files that are newer than the backup's; "
                                               "replace older ones"))  # fmt: skip
        self.replace_all = QRadioButton(self.tr("R&eplace them all with the backup's version"))
        self.only_missing = QRadioButton(self.tr("Leave &them all as they are: bring back only "
                                                 "the files that are missing"))  # fmt: skip
        existing = QButtonGroup(self)
        for button in (self.keep_newer, self.replace_all, self.only_missing):
            existing.addButton(button)
            button.toggled.connect(self._changed)
        self.keep_newer.setChecked(True)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setAccessibleName(self.tr("Warning"))
        bold = self.warning.font()
        bold.setBold(True)
        self.warning.setFont(bold)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName(self.tr("What will be restored"))

        place = QGroupBox(self.tr("Put the files"))
        row = QHBoxLayout()
        row.addSpacing(24)
        row.addWidget(self.folder, 1)
        row.addWidget(self.browse)
        box = QVBoxLayout(place)
        box.addWidget(self.elsewhere)
        box.addLayout(row)
        box.addWidget(self.original)
        there = QGroupBox(self.tr("If a file is already there"))
        box = QVBoxLayout(there)
        box.addWidget(self.keep_newer)
        box.addWidget(self.replace_all)
        box.addWidget(self.only_missing)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(place)
        layout.addWidget(there)
        layout.addWidget(self.warning)
        layout.addStretch(1)

    def initializePage(self) -> None:
        wizard = self.wizard()
        paths = wizard.selection.paths()
        what = paths[0] if len(paths) == 1 else self.tr("%1 items").replace("%1", str(len(paths)))
        snap = wizard.snap
        self.summary.setText(self.tr("Restore %1 from the backup of %2 (%3).").replace(
            "%1", what).replace("%2", moment_text(snap.moment)).replace("%3", snap.device))
        self._changed()

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, self.tr("Restore into which folder?"),
                                                  self.folder.text())  # fmt: skip
        if chosen:
            self.folder.setText(chosen)
            self.elsewhere.setChecked(True)

    def _changed(self) -> None:
        wizard = self.wizard()
        if wizard is None:
            return
        wizard.in_place = self.original.isChecked()
        wizard.folder = self.folder.text().strip()
        wizard.overwrite = self.replace_all.isChecked()
        wizard.only_missing = self.only_missing.isChecked()
        self.folder.setEnabled(not wizard.in_place)
        self.browse.setEnabled(not wizard.in_place)
        if wizard.in_place and wizard.overwrite:
            self.warning.setText(self.tr("Changes you made to these files since this backup "
                                         "will be lost."))  # fmt: skip
        elif wizard.in_place and not wizard.only_missing:
            self.warning.setText(self.tr("Files you changed since this backup stay as they "
                                         "are; older ones are replaced."))  # fmt: skip
        else:
            self.warning.setText("")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        wizard = self.wizard()
        return wizard is not None and (wizard.in_place or bool(wizard.folder))
