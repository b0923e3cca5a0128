"""The Friends tab: who keeps your backup, who is online, and the space both ways."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from p2pbackup.gui.actions import Actions
from p2pbackup.gui.models.friends import Column, FriendsModel, friend_key
from p2pbackup.gui.models.status import StatusModel
from p2pbackup.gui.quotabar import QuotaBarDelegate
from p2pbackup.gui.widgets import action_button
from p2pbackup.gui.windows.friendedit import (
    FriendDialog,
    QuotaDialog,
    RemoveDialog,
    RenameDialog,
)


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
        # Editing the friend selected in the table (friendedit.py: one dialog each).
        self.change_quota = QPushButton(self.tr("Change &space…"))
        self.rename = QPushButton(self.tr("Re&name…"))
        self.remove = QPushButton(self.tr("Re&move…"))
        for button, dialog in ((self.change_quota, QuotaDialog), (self.rename, RenameDialog),
                               (self.remove, RemoveDialog)):  # fmt: skip
            button.clicked.connect(lambda _=False, d=dialog: self.edit(d))
            buttons.addWidget(button)
        self.table.selectionModel().selectionChanged.connect(self._follow_selection)
        self.table.doubleClicked.connect(lambda _index: self.edit(QuotaDialog))

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
        ):  # a reset only when something changed: it loses the selection, chosen again
            chosen = self.table.selectionModel().selectedRows()
            key = friend_key(self.friends.friend(chosen[0].row())) if chosen else None
            self.friends.set_friends(rows)
            self.table.resizeRowsToContents()
            for row in range(self.friends.rowCount()):
                if key is not None and friend_key(self.friends.friend(row)) == key:
                    self.table.selectRow(row)
        has = bool(rows)
        self.empty.setVisible(not has)
        self.table.setVisible(has)
        self.explain.setVisible(has)
        self._follow_selection()

    def selected(self) -> dict | None:
        """The friend selected in the table (the only one, if there is one)."""
        rows = self.table.selectionModel().selectedRows()
        if rows:
            return self.friends.friend(rows[0].row())
        return self.friends.friend(0) if self.friends.rowCount() == 1 else None

    def _follow_selection(self) -> None:
        usable = self.model.running and self.selected() is not None
        why = "" if usable else (self.tr("Choose a friend in the table first.")
                                 if self.model.running else
                                 self.tr("The backup service is not running."))  # fmt: skip
        for button in (self.change_quota, self.rename, self.remove):
            button.setVisible(self.friends.rowCount() > 0)
            button.setEnabled(usable)
            button.setToolTip(why)

    def edit(self, dialog_class: type[FriendDialog]) -> FriendDialog | None:
        """Open one of the edit dialogs for the selected friend; the daemon's answer is
        shown at once (and the friends asked again)."""
        row = self.selected()
        if row is None or not self.model.running:
            return None
        dialog = dialog_class(self.model.home, row, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.changed.connect(lambda _result: self.model.refresh())
        dialog.open()
        return dialog
