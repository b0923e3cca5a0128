"""The tray icon: the backup's state at a glance, a tooltip, and the menu.

Where the desktop has no tray (vanilla GNOME, a bare Wayland compositor, offscreen),
``available()`` is false and the app opens its window instead, saying why.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from p2pbackup.gui.actions import Actions
from p2pbackup.gui.icons import state_icon
from p2pbackup.gui.models.status import StatusModel
from p2pbackup.gui.summary import headline, tooltip


def available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


class Tray(QObject):
    activated = Signal()  # a click on the icon: show the window

    def __init__(self, model: StatusModel, actions: Actions, parent: QObject | None = None):
        super().__init__(parent)
        self.model, self.actions = model, actions
        self.menu = QMenu()
        self.menu.addAction(actions.status)
        self.menu.addSeparator()
        self.menu.addActions([actions.backup, actions.pause])
        self.menu.addSeparator()
        self.menu.addActions([actions.invite, actions.accept, actions.restore])
        self.menu.addSeparator()
        self.menu.addActions([actions.open, actions.quit])
        self.icon = QSystemTrayIcon(self)
        self.icon.setContextMenu(self.menu)  # always set: AppIndicator hosts need a menu
        self.icon.activated.connect(self._clicked)
        model.changed.connect(self.update)
        self.update()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def update(self) -> None:
        self.icon.setIcon(state_icon(self.model.tray_state()))
        self.icon.setToolTip(tooltip(self.model))
        self.actions.status.setText(headline(self.model))

    def _clicked(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger,
                      QSystemTrayIcon.ActivationReason.DoubleClick):  # fmt: skip
            self.activated.emit()
