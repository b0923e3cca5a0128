"""The Friends tab: who keeps your backup, who is online, and the space both ways."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from p2pbackup.gui.actions import Actions
from p2pbackup.gui.models.friends import Column, FriendsModel
from p2pbackup.gui.models.status import StatusModel
from p2pbackup.gui.quotabar import QuotaBarDelegate
from p2pbackup.gui.widgets import action_button


class FriendsTab(QWidget):
    def __init__(self, model: StatusModel, actions: Actions, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.setAccessibleName(self.tr("Friends"))
        self.friends = FriendsModel(self)
        self.table = QTableView()
        self.table.setModel(self.friends)
        self.table.setAccessibleName(self.tr("Friends and the space they share"))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.delegate = QuotaBarDelegate(self.table)
        for column in (Column.THEY_KEEP, Column.I_KEEP):
            self.table.setItemDelegateForColumn(column, self.delegate)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(Column.NAME, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(Column.SEEN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(Column.THEY_KEEP, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(Column.I_KEEP, QHeaderView.ResizeMode.Stretch)

        self.empty = QLabel(self.tr(
            "No friends yet. A friend keeps an encrypted share of your backup, and you keep "
            "one of theirs: invite one, or accept their invite."))
        self.empty.setWordWrap(True)
        self.explain = QLabel(self.tr(
            "Each bar shows the space used of the space given. Your files are encrypted "
            "before they leave: friends cannot read them."))
        self.explain.setWordWrap(True)

        buttons = QHBoxLayout()
        for action in (actions.invite, actions.accept):
            buttons.addWidget(action_button(action, self))
        buttons.addStretch(1)

        layout = QVBoxLayout(self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.empty, 1)  # with no table, it takes the room, text at the top
        layout.addWidget(self.table, 1)
        layout.addWidget(self.explain)
        layout.addLayout(buttons)
        model.changed.connect(self.update_view)
        self.update_view()

    def update_view(self) -> None:
        rows = self.model.friend_rows()
        if sorted(map(repr, rows)) != sorted(
            repr(self.friends.friend(r)) for r in range(self.friends.rowCount())
        ):  # a reset only when something changed: it loses the selection
            self.friends.set_friends(rows)
            self.table.resizeRowsToContents()
        has = bool(rows)
        self.empty.setVisible(not has)
        self.table.setVisible(has)
        self.explain.setVisible(has)
