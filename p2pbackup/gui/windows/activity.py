"""The Activity tab: backups, restores, checks, repairs and warnings, newest first, with
failures in plain words and a button that opens the profile's log."""

from __future__ import annotations

import os

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from p2pbackup.gui.models.activity import SEVERITY_ROLE, ActivityModel, Column, Severity
from p2pbackup.storage.profile import LOG_NAME, log_folder

_ICONS = {
    Severity.RUNNING: QStyle.StandardPixmap.SP_BrowserReload,
    Severity.DONE: QStyle.StandardPixmap.SP_DialogApplyButton,
    Severity.WARNING: QStyle.StandardPixmap.SP_MessageBoxWarning,
    Severity.FAILED: QStyle.StandardPixmap.SP_MessageBoxCritical,
}


class _SeverityIcons(QStyledItemDelegate):
    """The platform's own icons beside what happened (the model knows no widgets)."""

    def initStyleOption(self, option, index) -> None:
        super().initStyleOption(option, index)
        severity = index.data(SEVERITY_ROLE)
        if index.column() == Column.WHAT and severity in _ICONS:
            option.icon = self.parent().style().standardIcon(_ICONS[severity])
            option.features |= option.ViewItemFeature.HasDecoration


def log_path(home: str) -> str:
    return os.path.join(log_folder(home), LOG_NAME)


class ActivityTab(QWidget):
    def __init__(self, home: str, activity: ActivityModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.home = home
        self.setAccessibleName(self.tr("Activity"))
        self.table = QTableView()
        self.table.setModel(activity)
        self.table.setAccessibleName(self.tr("What the backup did lately"))
        self.table.setItemDelegate(_SeverityIcons(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setTabKeyNavigation(False)
        self.table.setWordWrap(True)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(Column.WHEN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(Column.WHAT, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(Column.TEXT, QHeaderView.ResizeMode.Stretch)
        activity.modelReset.connect(self.table.resizeRowsToContents)

        self.empty = QLabel(self.tr("Nothing has happened yet since p2pbackup started. "
                                    "Backups, restores and warnings will be listed here."))
        self.empty.setWordWrap(True)
        self.log_button = QPushButton(self.tr("Open the &log"))
        self.log_button.setToolTip(self.tr("The backup service's detailed record, for "
                                           "finding out what went wrong."))  # fmt: skip
        self.log_button.clicked.connect(self.open_log)
        self.log_missing = QLabel()
        self.log_missing.setWordWrap(True)
        self.log_missing.setAccessibleName(self.tr("Log"))

        buttons = QHBoxLayout()
        buttons.addWidget(self.log_button)
        buttons.addWidget(self.log_missing, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        activity.modelReset.connect(self.update_view)
        self.activity = activity
        self.update_view()

    def update_view(self) -> None:
        has = self.activity.rowCount() > 0
        self.empty.setVisible(not has)

    def open_log(self) -> bool:
        """Open the log file with the desktop's viewer; say where it is when there is none."""
        path = log_path(self.home)
        if not os.path.exists(path):
            self.log_missing.setText(self.tr("There is no log yet (%1).").replace("%1", path))
            return False
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(path)):
            self.log_missing.setText(self.tr("The log is %1").replace("%1", path))
            return False
        self.log_missing.setText("")
        return True
