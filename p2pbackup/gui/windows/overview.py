"""The Overview tab: is everything safe, when was the last backup, what to do."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from p2pbackup.core.sizes import format_size
from p2pbackup.gui.actions import Actions
from p2pbackup.gui.icons import state_icon
from p2pbackup.gui.models.status import StatusModel, last_backup_time, warnings, when
from p2pbackup.gui.summary import headline
from p2pbackup.gui.widgets import action_button

ICON_SIZE = 48


class OverviewTab(QWidget):
    def __init__(self, model: StatusModel, actions: Actions, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.setAccessibleName(self.tr("Overview"))

        self.icon = QLabel()
        self.icon.setAccessibleName(self.tr("Backup state"))
        self.headline = QLabel()
        self.headline.setAccessibleName(self.tr("State"))
        font = QFont(self.headline.font())
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.headline.setFont(font)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard
                                              | Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(self.icon)
        top.addWidget(self.headline, 1)

        self.last = QLabel()
        self.next = QLabel()
        self.protected = QLabel()
        self.safety = QLabel()
        self.friends = QLabel()
        facts = QFormLayout()
        facts.addRow(self.tr("Last backup:"), self.last)
        facts.addRow(self.tr("Next backup:"), self.next)
        facts.addRow(self.tr("Protected:"), self.protected)
        facts.addRow(self.tr("Safety:"), self.safety)
        facts.addRow(self.tr("Friends online:"), self.friends)
        for row in range(facts.rowCount()):  # each value is named by its label, for readers
            label = facts.itemAt(row, QFormLayout.ItemRole.LabelRole).widget()
            value = facts.itemAt(row, QFormLayout.ItemRole.FieldRole).widget()
            value.setAccessibleName(label.text().rstrip(":"))
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.warnings = QLabel()
        self.warnings.setWordWrap(True)
        self.warnings.setTextFormat(Qt.TextFormat.RichText)
        self.warnings.setAccessibleName(self.tr("Warnings"))

        buttons = QHBoxLayout()
        for action in (actions.backup, actions.pause, actions.invite, actions.restore):
            buttons.addWidget(action_button(action, self))
        buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addSpacing(8)
        layout.addLayout(facts)
        layout.addSpacing(8)
        layout.addWidget(self.warnings)
        layout.addStretch(1)
        layout.addLayout(buttons)

        model.changed.connect(self.update_view)
        self.update_view()

    def update_view(self) -> None:
        model = self.model
        self.icon.setPixmap(state_icon(model.tray_state()).pixmap(ICON_SIZE, ICON_SIZE))
        self.headline.setText(headline(model))
        status = model.status if model.running else None
        if status is None:
            for label in (self.last, self.next, self.protected, self.safety, self.friends):
                label.setText(self.tr("unknown"))
            self.warnings.setText("")
            return
        self.last.setText(when(last_backup_time(status)))
        schedule = status.get("schedule") or {}
        if schedule.get("paused"):
            self.next.setText(self.tr("paused"))
        elif schedule.get("next_run"):
            due = schedule["next_run"] - time.time() < 60  # overdue: it waits for friends
            self.next.setText(self.tr("soon") if due else when(schedule["next_run"]))
        else:
            self.next.setText(self.tr("not planned"))
        size, files = status.get("protected_bytes"), status.get("protected_files")
        if (size is None or files is None) and status.get("last_backup") is None:
            self.protected.setText(self.tr("nothing yet"))
        elif size is None or files is None:  # version 2, before its first check with friends
            self.protected.setText(self.tr("not known yet"))
        else:
            self.protected.setText(self.tr("%1 in %2 files").replace("%1", format_size(size))
                                   .replace("%2", f"{files:,}"))  # fmt: skip
        self.safety.setText(self._safety(status))
        self.friends.setText(self.tr("%1 of %2").replace(
            "%1", str(len(status.get("friends_online") or []))).replace(
            "%2", str(status.get("friends") or 0)))  # fmt: skip
        advice = warnings(status)
        self.warnings.setText("".join(
            f"<p><b>{_escape(a.text)}</b><br>{_escape(a.todo)}</p>" for a in advice))

    def _safety(self, status: dict) -> str:
        spare = status.get("friends_that_could_disappear")
        never = status.get("last_backup") is None and not status.get("snapshots")
        if never:  # this device never backed up (and, in version 2, nothing was checked)
            return self.tr("nothing backed up yet")
        if status.get("snapshots") is None:
            return self.tr("not known yet")
        if not status.get("snapshots"):
            return self.tr("nothing backed up yet")
        if spare is None:
            return self.tr("not known yet (run a check)")
        if spare == 0:
            return self.tr("at risk: every friend is needed")
        if spare == 1:
            return self.tr("safe even if 1 friend disappears")
        return self.tr("safe even if %1 friends disappear").replace("%1", str(spare))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
