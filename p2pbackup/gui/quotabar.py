"""Space used of a quota, drawn in a table cell: a bar and the exact numbers.

Qt Charts is not in PySide6-Essentials (docs/gui.md), and a bar per cell says more in
less room: the palette's highlight colour while there is room, red above 90 %.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from p2pbackup.gui.models.friends import QUOTA_ROLE

BAR_HEIGHT = 6
PADDING = 4
NEARLY_FULL = 0.9


def fraction(used: int | None, quota: int | None) -> float | None:
    """How full, from 0 to 1; None when it cannot be told (offline, or no quota)."""
    if used is None or not quota:
        return None
    return max(0.0, min(1.0, used / quota))


class QuotaBarDelegate(QStyledItemDelegate):
    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        quota = index.data(QUOTA_ROLE)
        if quota is None:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text, opt.text = opt.text, ""
        style = opt.widget.style() if opt.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)

        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        group = QPalette.ColorGroup.Normal
        ink = opt.palette.color(group, QPalette.ColorRole.HighlightedText if selected
                                else QPalette.ColorRole.Text)  # fmt: skip
        area = opt.rect.adjusted(PADDING, PADDING, -PADDING, -PADDING)
        text_rect = QRect(area.left(), area.top(), area.width(), area.height() - BAR_HEIGHT - 2)
        bar = QRect(area.left(), area.bottom() - BAR_HEIGHT + 1, area.width(), BAR_HEIGHT)

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(ink)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         text)  # fmt: skip
        painter.setPen(Qt.PenStyle.NoPen)
        trough = opt.palette.color(group, QPalette.ColorRole.Mid)
        trough.setAlpha(110)
        painter.setBrush(trough)
        painter.drawRoundedRect(bar, BAR_HEIGHT / 2, BAR_HEIGHT / 2)
        full = fraction(*quota)
        if full:
            fill = QColor("#c62828") if full > NEARLY_FULL else opt.palette.color(
                group, QPalette.ColorRole.HighlightedText if selected
                else QPalette.ColorRole.Highlight)  # fmt: skip
            painter.setBrush(fill)
            filled = QRect(bar.left(), bar.top(), max(BAR_HEIGHT, round(bar.width() * full)),
                           BAR_HEIGHT)  # fmt: skip
            painter.drawRoundedRect(filled, BAR_HEIGHT / 2, BAR_HEIGHT / 2)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        if index.data(QUOTA_ROLE) is None:
            return size
        lines = option.fontMetrics.height() + BAR_HEIGHT + 2 + 2 * PADDING
        return QSize(max(size.width(), 16 * option.fontMetrics.averageCharWidth()),
                     max(size.height(), lines))  # fmt: skip
