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

from PySide6.QtCore import (
    QCoreApplication,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)

from p2pbackup.core.sizes import format_size
from p2pbackup.gui.models.status import when
from p2pbackup.gui.models.table import RowsModel

QUOTA_ROLE = Qt.ItemDataRole.UserRole + 1  # (used or None, quota or None)
ONLINE_ROLE = Qt.ItemDataRole.UserRole + 2  # bool
Index = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    NAME = 0
    SEEN = 1
    THEY_KEEP = 2  # what they keep for me, of the space they give me
    I_KEEP = 3  # what I keep for them, of the space I give them


class FriendsModel(RowsModel):
    COLUMNS = len(Column)

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

    def header(self, section: int) -> str:
        return {
            Column.NAME: self.tr("Friend"),
            Column.SEEN: self.tr("Status"),  # "Online", "Last seen 2 days ago", "Offline"
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


# ---- what editing a friend says (the Friends tab's dialogs; tested without widgets)


def _tr(text: str) -> str:
    return QCoreApplication.translate("FriendsModel", text)


def friend_key(row: dict) -> str:
    """How the settings jobs name a friend: the owner id (names can change and repeat)."""
    return str(row.get("owner_id") or row.get("name") or "")


def quota_warning(row: dict, size: int | None) -> str:
    """Said before a quota below what is kept for them is given: nothing is deleted."""
    used = row.get("i_store_for_them")
    if size is None or not isinstance(used, int) or size >= used:
        return ""
    return _tr(
        "You already keep %1 for %2, more than that. Nothing is deleted, but nothing new "
        "of theirs fits until they are under it: their backups go to their other friends "
        "instead."
    ).replace("%1", format_size(used)).replace("%2", str(row.get("name")))


def removal_warning(row: dict, dry_run: dict) -> str:
    """What removing a friend does, from the ``unfriend`` job's dry run (daemon/settings.py):
    what is deleted here, what is placed again, and how safe the latest backup stays."""
    name = str(dry_run.get("name") or row.get("name"))
    lines = [
        _tr("If you remove %1:").replace("%1", name),
        "• " + _tr("the %1 you keep for %2's backup is deleted from this computer;").replace(
            "%1", format_size(int(row.get("i_store_for_them") or 0))).replace("%2", name),
        "• " + _tr("the parts of your backup that %1 keeps are stored again on your other "
                   "friends, as far as they have room;").replace("%1", name),
    ]
    left = dry_run.get("friends_left")
    short = int(dry_run.get("latest_records_short") or 0)
    survives = dry_run.get("latest_survives_losing")
    if left == 0:
        lines.append("• " + _tr("you will have no friend left: your backup is then kept only "
                                "on this computer until you invite a new friend."))
    elif isinstance(left, int):
        lines.append("• " + (_tr("you will have 1 friend left.") if left == 1 else
                             _tr("you will have %1 friends left.").replace("%1", str(left))))
    if short:
        lines.append("• " + _tr(
            "%1 parts of your latest backup cannot be rebuilt without %2: the next backup "
            "stores them again from this computer.").replace("%1", str(short)).replace(
                "%2", name))  # fmt: skip
    if isinstance(survives, int) and left:
        lines.append("• " + (_tr("your latest backup would not survive losing one more friend.")
                             if survives == 0 else
                             _tr("your latest backup would still survive losing %1 of them.")
                             .replace("%1", str(survives))))  # fmt: skip
    lines.append(_tr("%1 is told nothing; pairing again needs a new invite.").replace(
        "%1", name))
    return "\n".join(lines)


def removal_report(result: dict) -> str:
    """What the ``unfriend`` job did, for people (the CLI's words, cli/friends.py)."""
    name = str(result.get("name"))
    lines = [_tr("%1 is no longer a friend; the %2 you kept for them is deleted.").replace(
        "%1", name).replace("%2", format_size(int(result.get("freed_bytes") or 0)))]
    if not result.get("published"):
        lines.append(_tr("No other friend is online now: what %1 kept is stored again once "
                         "one is.").replace("%1", name))  # fmt: skip
    elif result.get("not_replaced") or result.get("lost"):
        lines.append(_tr(
            "Warning: %1 of %2 parts they kept could not be stored again in full on your "
            "other friends (no room, or a friend away). Give a friend more space or invite "
            "a new one.").replace("%1", str(result.get("not_replaced"))).replace(
                "%2", str(result.get("records_checked"))))  # fmt: skip
    else:
        lines.append(_tr("Everything they kept is safe on your other friends."))
    return "\n".join(lines)
