"""Friends as a table: who, whether they are online, and the space each way.

Rows are the ``friends`` job's answer (daemon/pairing.py ``list_friends``): ``name``,
``owner_id``, ``online``, ``i_store_for_them`` of ``i_give`` (what I keep for them,
against the space I give them) and ``they_store_for_me`` of ``they_give``. Keys that
the daemon's presence adds (``last_seen``, ``path``) are shown when present. The two
space columns also carry ``(used, quota)`` in ``QUOTA_ROLE`` for the delegate that
draws them as bars (gui/quotabar.py).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from p2pbackup.core.sizes import format_size
from p2pbackup.gui.models.status import when

QUOTA_ROLE = Qt.ItemDataRole.UserRole + 1  # (used or None, quota or None)
ONLINE_ROLE = Qt.ItemDataRole.UserRole + 2  # bool
Index = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    NAME = 0
    SEEN = 1
    THEY_KEEP = 2  # what they keep for me, of the space they give me
    I_KEEP = 3  # what I keep for them, of the space I give them


class FriendsModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[dict] = []

    def set_friends(self, rows: list[dict]) -> None:
        """The daemon's answer, replacing the last (friends sorted by name)."""
        self.beginResetModel()
        self._rows = sorted(rows, key=lambda row: str(row.get("name", "")).casefold())
        self.endResetModel()

    def friend(self, row: int) -> dict:
        return self._rows[row]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation != Qt.Orientation.Horizontal or role != Qt.ItemDataRole.DisplayRole:
            return None
        return {
            Column.NAME: self.tr("Friend"),
            Column.SEEN: self.tr("Online"),
            Column.THEY_KEEP: self.tr("They keep for you"),
            Column.I_KEEP: self.tr("You keep for them"),
        }[Column(section)]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row, column = self._rows[index.row()], Column(index.column())
        if role == ONLINE_ROLE:
            return bool(row.get("online"))
        if role == QUOTA_ROLE:
            return self._quota(row, column)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        return None

    def _quota(self, row: dict, column: Column) -> tuple[int | None, int | None] | None:
        if column is Column.THEY_KEEP:
            return row.get("they_store_for_me"), row.get("they_give")
        if column is Column.I_KEEP:
            return row.get("i_store_for_them"), row.get("i_give")
        return None

    def _text(self, row: dict, column: Column) -> str:
        if column is Column.NAME:
            return str(row.get("name") or self.tr("(no name)"))
        if column is Column.SEEN:
            return self._seen(row)
        used, quota = self._quota(row, column) or (None, None)
        if quota is None:
            return self.tr("unknown")
        if used is None:  # offline: what they keep is told by them only
            return self.tr("%1 given (offline)").replace("%1", format_size(quota))
        return self.tr("%1 of %2").replace("%1", format_size(used)).replace(
            "%2", format_size(quota))

    def _seen(self, row: dict) -> str:
        if row.get("online"):
            return self.tr("Online (relayed)") if row.get("path") == "relay" else self.tr("Online")
        seen = row.get("last_seen")
        try:
            moment = datetime.fromisoformat(seen).timestamp() if seen else None
        except ValueError:
            moment = None
        if moment is None:
            return self.tr("Offline")
        return self.tr("Last seen %1").replace("%1", when(moment))

    def _tooltip(self, row: dict, column: Column) -> str:
        if column is Column.THEY_KEEP:
            return self.tr("Space %1 keeps for your backup, of the space they give you.").replace(
                "%1", str(row.get("name")))
        if column is Column.I_KEEP:
            return self.tr("Space you keep for %1's backup, of the space you give them.").replace(
                "%1", str(row.get("name")))
        return self._text(row, column)
