"""The snapshots a restore can start from: the ``snapshots`` answer as a table, by day and
by device, and the one in force "as of" a moment.

Rows are the ``snapshots`` job's answer (daemon/jobs.py): ``id``, ``time`` (ISO 8601),
``device``, ``files``, ``bytes`` (null where this device keeps no copy of the manifest)
and ``damaged`` (a reason) for one that cannot be read. The table shows the snapshots
of one day (``show_day``), newest first; a day without any shows the one in force then,
so picking a date means "the files as they were that day".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from PySide6.QtCore import (
    QCoreApplication,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor

from p2pbackup.core.sizes import format_size
from p2pbackup.gui.models.table import RowsModel

SNAPSHOT_ROLE = Qt.ItemDataRole.UserRole + 1  # the Snap of the row
Index = QModelIndex | QPersistentModelIndex
# One colour per device, told apart on light and dark backgrounds (then they repeat).
DEVICE_COLOURS = ("#2f7ed8", "#e07b18", "#3a9b45", "#a04bc2", "#c23b3b", "#178f8f")


def _tr(text: str) -> str:
    return QCoreApplication.translate("Snapshots", text)


@dataclass(frozen=True)
class Snap:
    id: str
    moment: datetime  # local time
    device: str
    files: int | None
    bytes: int | None
    damaged: str = ""

    @classmethod
    def of(cls, row: dict) -> Snap | None:
        """None for a row without an id or a readable time (not shown)."""
        try:
            moment = datetime.fromisoformat(str(row["time"])).astimezone()
        except (KeyError, ValueError):
            return None
        if not row.get("id"):
            return None
        return cls(str(row["id"]), moment, str(row.get("device") or _tr("unknown device")),
                   row.get("files"), row.get("bytes"), str(row.get("damaged") or ""))  # fmt: skip


class Column(enum.IntEnum):
    WHEN = 0
    DEVICE = 1
    FILES = 2
    SIZE = 3


class SnapshotsModel(RowsModel):
    COLUMNS = len(Column)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._all: list[Snap] = []  # oldest first
        self._device: str | None = None  # None: every device
        self._rows: list[Snap] = []  # shown, newest first
        self.fallback = False  # the day shown has none: the row is the one in force then

    def set_snapshots(self, rows: list[dict]) -> None:
        snaps = [snap for snap in map(Snap.of, rows) if snap is not None]
        self._all = sorted(snaps, key=lambda snap: snap.moment)
        if self._device not in self.devices():
            self._device = None
        self._show(list(reversed(self._chosen())), fallback=False)

    def devices(self) -> list[str]:
        return sorted({snap.device for snap in self._all}, key=str.casefold)

    def colour(self, device: str) -> QColor:
        devices = self.devices()
        number = devices.index(device) if device in devices else 0
        return QColor(DEVICE_COLOURS[number % len(DEVICE_COLOURS)])

    def set_device(self, device: str | None) -> None:
        """Only ``device``'s snapshots from now on (None: every device's)."""
        self._device = device

    def days(self) -> dict[date, list[str]]:
        """Each day with snapshots (of the chosen device), and whose they are."""
        out: dict[date, list[str]] = {}
        for snap in self._chosen():
            devices = out.setdefault(snap.moment.date(), [])
            if snap.device not in devices:
                devices.append(snap.device)
        return out

    def newest(self) -> Snap | None:
        chosen = self._chosen()
        return chosen[-1] if chosen else None

    def as_of(self, moment: datetime) -> Snap | None:
        """The newest snapshot made at or before ``moment`` (local time if naive)."""
        moment = moment.astimezone()
        before = [snap for snap in self._chosen() if snap.moment <= moment]
        return before[-1] if before else None

    def show_day(self, day: date) -> None:
        """Show ``day``'s snapshots, newest first; with none that day, the one in force at
        its end (``fallback``), or nothing if there was none yet."""
        on_day = [snap for snap in self._chosen() if snap.moment.date() == day]
        if on_day:
            self._show(list(reversed(on_day)), fallback=False)
            return
        end = datetime.combine(day + timedelta(days=1), time()).astimezone()
        then = self.as_of(end - timedelta(microseconds=1))
        self._show([then] if then else [], fallback=True)

    def snap(self, row: int) -> Snap:
        return self._rows[row]

    def row_of(self, snapshot_id: str) -> int | None:
        for row, snap in enumerate(self._rows):
            if snap.id == snapshot_id:
                return row
        return None

    def _chosen(self) -> list[Snap]:
        return [s for s in self._all if self._device is None or s.device == self._device]

    def _show(self, rows: list[Snap], fallback: bool) -> None:
        self.beginResetModel()
        self._rows, self.fallback = rows, fallback
        self.endResetModel()

    def header(self, section: int) -> str:
        return {Column.WHEN: _tr("Made"), Column.DEVICE: _tr("On device"),
                Column.FILES: _tr("Files"), Column.SIZE: _tr("Size")}[Column(section)]  # fmt: skip

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        snap, column = self._rows[index.row()], Column(index.column())
        if role == SNAPSHOT_ROLE:
            return snap
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(snap, column)
        if role == Qt.ItemDataRole.DecorationRole and column is Column.DEVICE:
            return self.colour(snap.device)
        if role == Qt.ItemDataRole.ToolTipRole and snap.damaged:
            return _tr("This backup cannot be read: %1").replace("%1", snap.damaged)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (Column.FILES, Column.SIZE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, snap: Snap, column: Column) -> str:
        if column is Column.WHEN:
            return moment_text(snap.moment)
        if column is Column.DEVICE:
            return snap.device
        if snap.damaged:
            return _tr("damaged") if column is Column.FILES else ""
        if column is Column.FILES:
            return "" if snap.files is None else f"{snap.files:,}"
        return "" if snap.bytes is None else format_size(snap.bytes)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if self._rows[index.row()].damaged:
            return Qt.ItemFlag.NoItemFlags  # cannot be restored from: not selectable
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


def moment_text(moment: datetime, now: datetime | None = None) -> str:
    """``today 14:05``, ``yesterday 09:30``, ``Thu 3 Dec 14:05``, ``3 Dec 2024 14:05``."""
    now = now or datetime.now().astimezone()
    clock = f"{moment.hour:02d}:{moment.minute:02d}"
    days = (now.date() - moment.date()).days
    if days == 0:
        return _tr("today %1").replace("%1", clock)
    if days == 1:
        return _tr("yesterday %1").replace("%1", clock)
    month = _months()[moment.month - 1]
    if 0 < days < 7:
        return f"{_weekdays()[moment.weekday()]} {moment.day} {month} {clock}"
    if moment.year == now.year:
        return f"{moment.day} {month} {clock}"
    return f"{moment.day} {month} {moment.year} {clock}"


def _months() -> list[str]:
    return [_tr(m) for m in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                             "Oct", "Nov", "Dec")]  # fmt: skip


def _weekdays() -> list[str]:
    return [_tr(d) for d in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")]
