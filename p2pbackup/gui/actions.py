"""What a person can ask for, as QActions shared by the tray menu and the main window
(where there is no tray, every tray action is still in the window)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence


class Actions(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status = QAction(self.tr("Looking for the backup service…"), self)
        self.status.setEnabled(False)  # a line of text in the menu, not a command
        self.backup = QAction(self.tr("&Back up now"), self)
        self.backup.setShortcut(QKeySequence("Ctrl+B"))
        self.pause = QAction(self.tr("&Pause backups"), self)
        self.invite = QAction(self.tr("&Invite a friend…"), self)
        self.accept = QAction(self.tr("&Accept an invite…"), self)
        self.restore = QAction(self.tr("&Restore…"), self)
        self.check_phrase = QAction(self.tr("&Check my recovery phrase…"), self)
        self.open = QAction(self.tr("&Open p2pbackup"), self)
        self.quit = QAction(self.tr("&Quit"), self)
        self.quit.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit.setMenuRole(QAction.MenuRole.QuitRole)

    def set_paused(self, paused: bool) -> None:
        self.pause.setText(self.tr("&Resume backups") if paused else self.tr("&Pause backups"))
