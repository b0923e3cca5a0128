"""The Folders and schedule tab: what is backed up, what is skipped, how often, how fast,
pause, and start at login. Every change is a settings job sent to the daemon
(models/settings.py); the tab shows the daemon's answer. ``FolderPicker`` (the list of
folders with Add and Remove) is the first-run wizard's folders page too.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from p2pbackup.gui import autostart
from p2pbackup.gui.bridge import Watch
from p2pbackup.gui.models.settings import SettingsModel, interval_choices

KIB = 1024
DEFAULT_LIMIT_KIB = 1024  # offered when a limit is switched on: 1 MiB/s


def _buttons(*buttons: QPushButton) -> QVBoxLayout:
    column = QVBoxLayout()
    for button in buttons:
        column.addWidget(button)
    column.addStretch(1)
    return column


class FolderPicker(QWidget):
    """The folders to back up, with Add folder… and Remove, through the daemon."""

    def __init__(self, model: SettingsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.list = QListWidget()
        self.list.setAccessibleName(self.tr("Folders to back up"))
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.add = QPushButton(self.tr("&Add folder…"))
        self.remove = QPushButton(self.tr("Re&move folder"))
        self.add.clicked.connect(self._add)
        self.remove.clicked.connect(self._remove)
        self.list.itemSelectionChanged.connect(self._follow)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.list, 1)
        row.addLayout(_buttons(self.add, self.remove))
        model.changed.connect(self._follow)
        self._follow()

    def choose_folder(self) -> str:
        """The folder a person picks ("" when they cancel); tests replace this."""
        return QFileDialog.getExistingDirectory(
            self, self.tr("Choose a folder to back up"), os.path.expanduser("~")
        )

    def _add(self) -> None:
        if path := self.choose_folder():
            self.model.change("folders", {"add": os.path.normpath(path)})

    def _remove(self) -> None:
        for item in self.list.selectedItems():
            self.model.change("folders", {"remove": item.text()})

    def _follow(self) -> None:
        folders = self.model.folders
        if [self.list.item(i).text() for i in range(self.list.count())] != folders:
            self.list.clear()
            self.list.addItems(folders)
        running = self.model.running
        self.add.setEnabled(running)
        self.remove.setEnabled(running and bool(self.list.selectedItems()))


class FoldersTab(QWidget):
    """The tab, for the profile in ``home`` whose daemon ``watch`` follows."""

    def __init__(self, home: str, watch: Watch, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.model = model = SettingsModel(home, watch, self)

        folders = QGroupBox(self.tr("Folders to back up"))
        self.folders = FolderPicker(model)
        QVBoxLayout(folders).addWidget(self.folders)

        skip = QGroupBox(self.tr("Skip files and folders named"))
        self.excludes = QListWidget()
        self.excludes.setAccessibleName(self.tr("Names and paths to skip"))
        self.pattern = QLineEdit()
        self.pattern.setAccessibleName(self.tr("Name or path to skip"))
        self.pattern.setPlaceholderText(self.tr("for example  *.tmp  or  node_modules"))
        self.add_pattern = QPushButton(self.tr("A&dd"))
        self.remove_pattern = QPushButton(self.tr("R&emove"))
        self.pattern.returnPressed.connect(self._add_pattern)
        self.add_pattern.clicked.connect(self._add_pattern)
        self.remove_pattern.clicked.connect(self._remove_pattern)
        self.pattern.textChanged.connect(self._follow)
        self.excludes.itemSelectionChanged.connect(self._follow)
        grid = QVBoxLayout()
        grid.addWidget(self.excludes, 1)
        grid.addWidget(self.pattern)
        row = QHBoxLayout(skip)
        row.addLayout(grid, 1)
        row.addLayout(_buttons(self.add_pattern, self.remove_pattern))

        when = QGroupBox(self.tr("Schedule"))
        self.interval = QComboBox()
        self.interval.setAccessibleName(self.tr("How often to back up"))
        self.interval.activated.connect(self._set_interval)
        self.paused = QCheckBox(self.tr("&Pause scheduled backups"))
        self.paused.clicked.connect(self._set_paused)
        self.limited = QCheckBox(self.tr("&Limit upload speed to"))
        self.limited.clicked.connect(self._set_limit)
        self.limit = QSpinBox()
        self.limit.setAccessibleName(self.tr("Upload limit in kilobytes per second"))
        self.limit.findChild(QLineEdit).setAccessibleName(self.limit.accessibleName())
        self.limit.setRange(1, 10_000_000)
        self.limit.setSuffix(self.tr(" KB/s"))
        self.limit.setValue(DEFAULT_LIMIT_KIB)
        self.limit.editingFinished.connect(self._set_limit)
        speed = QHBoxLayout()
        speed.addWidget(self.limited)
        speed.addWidget(self.limit)
        speed.addStretch(1)
        form = QFormLayout(when)
        interval_label = QLabel(self.tr("Bac&k up:"))
        interval_label.setBuddy(self.interval)
        form.addRow(interval_label, self.interval)
        form.addRow(self.paused)
        form.addRow(speed)

        self.at_login = QCheckBox(self.tr("Start p2pbackup when I lo&g in"))
        self.at_login.setEnabled(autostart.supported())
        self.at_login.setChecked(autostart.supported() and autostart.enabled(home))
        self.at_login.clicked.connect(self._set_at_login)

        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setAccessibleName(self.tr("Settings notice"))
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addWidget(self.notice)
        layout.addWidget(folders, 2)
        layout.addWidget(skip, 2)
        layout.addWidget(when)
        layout.addWidget(self.at_login)
        model.changed.connect(self._follow)
        self._follow()

    # ---- what a person does

    def _add_pattern(self) -> None:
        if pattern := self.pattern.text().strip():
            self.model.change("excludes", {"add": pattern})
            self.pattern.clear()

    def _remove_pattern(self) -> None:
        for item in self.excludes.selectedItems():
            self.model.change("excludes", {"remove": item.text()})

    def _set_interval(self, index: int) -> None:
        seconds = self.interval.itemData(index)
        if seconds is not None and seconds != self.model.interval:
            self.model.change("schedule", {"interval": float(seconds)})

    def _set_paused(self, paused: bool) -> None:
        self.model.change("pause" if paused else "resume")

    def _set_limit(self) -> None:
        rate = self.limit.value() * KIB if self.limited.isChecked() else 0
        if rate != self.model.bandwidth:
            self.model.change("bandwidth", {"limit": rate})

    def _set_at_login(self, on: bool) -> None:
        try:
            autostart.set_enabled(self.home, on)
        except OSError as exc:
            self.model.refusal = self.tr("Start at login could not be changed: %1").replace(
                "%1", exc.strerror or str(exc)
            )
            self._follow()
        self.at_login.setChecked(autostart.enabled(self.home))

    # ---- what the daemon says

    def _follow(self) -> None:
        m = self.model
        running = m.running
        if [self.excludes.item(i).text() for i in range(self.excludes.count())] != m.excludes:
            self.excludes.clear()
            self.excludes.addItems(m.excludes)
        choices = interval_choices(m.interval)
        if [self.interval.itemData(i) for i in range(self.interval.count())] != [
            seconds for seconds, _ in choices
        ]:  # rebuilt only when the choices change: an open list is left alone
            self.interval.clear()
            for seconds, text in choices:
                self.interval.addItem(text, seconds)
        if m.interval is not None:
            self.interval.setCurrentIndex(self.interval.findData(float(m.interval)))
        self.paused.setChecked(m.paused)
        self.limited.setChecked(m.bandwidth > 0)
        if m.bandwidth > 0 and not self.limit.hasFocus():
            self.limit.setValue(max(1, round(m.bandwidth / KIB)))
        for widget in (self.pattern, self.excludes, self.interval, self.paused, self.limited):
            widget.setEnabled(running)
        self.limit.setEnabled(running and self.limited.isChecked())
        self.add_pattern.setEnabled(running and bool(self.pattern.text().strip()))
        self.remove_pattern.setEnabled(running and bool(self.excludes.selectedItems()))
        lines = []
        if not running:
            lines.append(self.tr("The backup service is not running: these settings can be "
                                 "changed once it runs again."))  # fmt: skip
        if m.refusal:
            lines.append(m.refusal)
        self.notice.setText("\n".join(lines))
        self.notice.setVisible(bool(lines))
