"""Page 1: which backup. A calendar marks the days with backups (each device in its own
colour); picking a day lists that day's backups, or the one in force then."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QDate, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPixmap, QTextCharFormat
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCalendarWidget,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWizardPage,
)

from p2pbackup.gui.bridge import Request
from p2pbackup.gui.models.snapshots import Column, Snap, SnapshotsModel, moment_text


class SnapshotPage(QWizardPage):
    def __init__(self, wizard) -> None:
        super().__init__(wizard)
        self.setTitle(self.tr("Which backup?"))
        self.setSubTitle(self.tr("Pick a day: you get your files as they were then. Days in "
                                 "bold have backups; the newest is chosen already."))
        self.model = SnapshotsModel(self)
        self.loaded = False
        self._request: Request | None = None

        self.devices = QComboBox()
        self.devices.setAccessibleName(self.tr("Backups of which device"))
        self.devices.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.device_label = QLabel(self.tr("&Device:"))
        self.device_label.setBuddy(self.devices)
        self.devices.currentIndexChanged.connect(self._device_chosen)

        self.calendar = QCalendarWidget()
        self.calendar.setAccessibleName(self.tr("Day of the backup"))
        self.calendar.setGridVisible(False)
        self.calendar.setVerticalHeaderFormat(QCalendarWidget.VerticalHeaderFormat.NoVerticalHeader)
        self.calendar.selectionChanged.connect(self._day_chosen)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName(self.tr("Backups of the chosen day"))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(Column.DEVICE, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._row_chosen)

        self.note = QLabel()  # what the day shows, or why nothing is listed
        self.note.setWordWrap(True)
        self.note.setAccessibleName(self.tr("About the backups listed"))
        self.legend = QLabel()
        self.legend.setAccessibleName(self.tr("Device colours"))

        top = QHBoxLayout()
        top.addWidget(self.device_label)
        top.addWidget(self.devices)
        top.addStretch(1)
        top.addWidget(self.legend)
        middle = QHBoxLayout()
        middle.addWidget(self.calendar)
        right = QVBoxLayout()
        right.addWidget(self.table, 1)
        right.addWidget(self.note)
        middle.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(middle, 1)

    # -- the daemon's answer
    def initializePage(self) -> None:
        if self.loaded or self._request is not None:
            return
        self.note.setText(self.tr("Asking the backup service for your backups…"))
        self._request = request = Request(self.wizard().home, "snapshots", {}, self)
        request.result.connect(self.set_snapshots)
        request.failed.connect(lambda exc: self._say(exc.message))
        request.no_daemon.connect(lambda: self._say(self.tr(
            "The backup service is not running, so your backups cannot be listed.")))
        request.lost.connect(lambda: self._say(self.tr(
            "The backup service stopped before it answered. Try again in a moment.")))
        request.finished.connect(self._asked)
        request.start()

    def _asked(self) -> None:
        self._request = None

    def _say(self, text: str) -> None:
        self.note.setText(text)

    def set_snapshots(self, rows: object) -> None:
        self.loaded = True
        self.model.set_snapshots(rows if isinstance(rows, list) else [])
        devices = self.model.devices()
        self.devices.blockSignals(True)
        self.devices.clear()
        self.devices.addItem(self.tr("Every device"), None)
        for device in devices:
            self.devices.addItem(self._dot(self.model.colour(device)), device, device)
        self.devices.blockSignals(False)
        several = len(devices) > 1
        for widget in (self.devices, self.device_label, self.legend):
            widget.setVisible(several)
        self.legend.setText("  ".join(
            f'<span style="color:{self.model.colour(d).name()}">&#9679;</span> {d}'
            for d in devices))  # fmt: skip
        newest = self.model.newest()
        if newest is None:
            self.note.setText(self.tr("Nothing is backed up yet, so there is nothing to restore. "
                                      "Back up first, then come back here."))  # fmt: skip
            return
        self._mark_days()
        self._go_to(newest)

    # -- choosing
    def _device_chosen(self) -> None:
        self.model.set_device(self.devices.currentData())
        self._mark_days()
        newest = self.model.newest()
        if newest is not None:
            self._go_to(newest)

    def _go_to(self, snap: Snap) -> None:
        day = snap.moment.date()
        when = QDate(day.year, day.month, day.day)
        if self.calendar.selectedDate() == when:
            self._day_chosen()
        else:
            self.calendar.setSelectedDate(when)  # selectionChanged shows the day
        row = self.model.row_of(snap.id)
        if row is not None:
            self.table.selectRow(row)

    def _day_chosen(self) -> None:
        picked = self.calendar.selectedDate()
        self.model.show_day(date(picked.year(), picked.month(), picked.day()))
        if self.model.rowCount():
            self.table.selectRow(0)
        if not self.model.rowCount():
            self.note.setText(self.tr("There was no backup yet on that day."))
        elif self.model.fallback:
            self.note.setText(self.tr("No backup was made on that day. This one, from %1, "
                                      "was the newest then.").replace(
                "%1", moment_text(self.model.snap(0).moment)))  # fmt: skip
        else:
            self.note.setText("")
        self.completeChanged.emit()

    def _row_chosen(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        self.wizard().snap = self.model.snap(rows[0].row()) if rows else None
        self.completeChanged.emit()

    def _mark_days(self) -> None:
        # Days without a backup are muted, weekends too (red would read as a warning);
        # a day with backups is bold, in its device's colour (the text's: several devices).
        muted = QTextCharFormat()
        muted.setForeground(QBrush(self.palette().placeholderText().color()))
        for weekday in Qt.DayOfWeek:
            self.calendar.setWeekdayTextFormat(weekday, muted)
        self.calendar.setDateTextFormat(QDate(), QTextCharFormat())  # clears every mark
        days = self.model.days()
        for day, devices in days.items():
            mark = QTextCharFormat()
            mark.setFontWeight(QFont.Weight.Bold)
            mark.setForeground(QBrush(self.model.colour(devices[0]) if len(devices) == 1
                                      else self.palette().text().color()))  # fmt: skip
            mark.setToolTip(", ".join(devices))
            self.calendar.setDateTextFormat(QDate(day.year, day.month, day.day), mark)
        if days:  # from the first backup's month to today (or a backup "from the future")
            first, last = min(days), max(max(days), date.today())
            self.calendar.setDateRange(QDate(first.year, first.month, 1),
                                       QDate(last.year, last.month, last.day))  # fmt: skip

    def _dot(self, colour: QColor) -> QIcon:
        pixmap = QPixmap(12, 12)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(colour)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(1, 1, 10, 10)
        painter.end()
        return QIcon(pixmap)

    def isComplete(self) -> bool:
        snap = self.wizard().snap if self.wizard() else None
        return snap is not None and not snap.damaged

    def validatePage(self) -> bool:
        return self.isComplete()

