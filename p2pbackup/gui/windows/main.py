"""The main window: a line about the backup service when it needs saying, then the tabs."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from p2pbackup.gui.actions import Actions
from p2pbackup.gui.icons import app_icon
from p2pbackup.gui.models.activity import ActivityModel
from p2pbackup.gui.models.status import StatusModel
from p2pbackup.gui.supervisor import Service, Supervisor
from p2pbackup.gui.windows.activity import ActivityTab
from p2pbackup.gui.windows.folders import FoldersTab
from p2pbackup.gui.windows.friends import FriendsTab
from p2pbackup.gui.windows.overview import OverviewTab


class MainWindow(QMainWindow):
    def __init__(
        self, model: StatusModel, supervisor: Supervisor, actions: Actions,
        activity: ActivityModel | None = None, parent: QWidget | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.model, self.supervisor, self.actions = model, supervisor, actions
        self.quit_on_close = False  # without a tray, closing the window is quitting
        self.no_tray_reason = ""
        self.setWindowTitle(self.tr("p2pbackup"))
        self.setWindowIcon(app_icon())

        backup = self.menuBar().addMenu(self.tr("&Backup"))
        backup.addActions([actions.backup, actions.pause, actions.restore, actions.check_phrase])
        backup.addSeparator()
        backup.addAction(actions.quit)
        friends = self.menuBar().addMenu(self.tr("&Friends"))
        friends.addActions([actions.invite, actions.accept])

        self.banner = QFrame()
        self.banner.setFrameShape(QFrame.Shape.StyledPanel)
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.banner_text.setAccessibleName(self.tr("Notice"))
        self.start_again = QPushButton(self.tr("&Start it again"))
        self.start_again.clicked.connect(supervisor.start_again)
        row = QHBoxLayout(self.banner)
        row.addWidget(self.banner_text, 1)
        row.addWidget(self.start_again)

        self.tabs = QTabWidget()
        self.tabs.setAccessibleName(self.tr("Sections"))
        self.tabs.tabBar().setAccessibleName(self.tr("Sections"))
        self.overview = OverviewTab(model, actions)
        self.friends = FriendsTab(model, actions)
        self.tabs.addTab(self.overview, self.tr("&Overview"))
        self.tabs.addTab(self.friends, self.tr("F&riends"))
        self.folders = FoldersTab(model.home, model.watch)
        self.tabs.addTab(self.folders, self.tr("Folders and sc&hedule"))
        self.activity = ActivityTab(model.home, activity or ActivityModel(self))
        self.tabs.addTab(self.activity, self.tr("A&ctivity"))

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        supervisor.changed.connect(self.update_banner)
        model.changed.connect(self.update_banner)
        self.update_banner()

    def sizeHint(self) -> QSize:
        return QSize(720, 520)

    def set_no_tray(self, reason: str) -> None:
        """No tray on this desktop: the window stays, says why, and closing it quits."""
        self.quit_on_close = True
        self.no_tray_reason = reason
        self.update_banner()

    def update_banner(self) -> None:
        s = self.supervisor
        lines = []
        if s.state is Service.STARTING:
            lines.append(self.tr("Starting the backup service…"))
        elif s.state is Service.STOPPED:
            lines.append(s.problem or self.tr("The backup service is not running."))
        elif s.problem:
            lines.append(s.problem)
        if self.model.error and self.model.running:
            lines.append(self.model.error)
        if self.no_tray_reason:
            lines.append(self.no_tray_reason)
        self.banner_text.setText("\n".join(lines))
        self.start_again.setVisible(s.state is Service.STOPPED)
        self.banner.setVisible(bool(lines))

    def bring_forward(self) -> None:
        self.showNormal()  # also un-minimizes (Vorta #1399: a window restored minimized)
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.quit_on_close:
            event.ignore()
            self.actions.quit.trigger()
        else:
            event.accept()  # hidden; the tray keeps the app
