"""Small widget helpers shared by the windows."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QPushButton, QWidget


def action_button(action: QAction, parent: QWidget | None = None) -> QPushButton:
    """A push button (the platform's look, unlike a tool button) that follows ``action``:
    its text, whether it is enabled, and what a click does."""
    button = QPushButton(action.text(), parent)

    def _follow() -> None:
        button.setText(action.text())
        button.setEnabled(action.isEnabled())
        button.setToolTip(action.toolTip() if action.toolTip() != action.text().replace("&", "")
                          else "")  # fmt: skip

    action.changed.connect(_follow)
    button.clicked.connect(action.trigger)
    _follow()
    return button
