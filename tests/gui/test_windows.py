"""The main window for a person with a keyboard or a screen reader."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QWidget

from p2pbackup.gui import screenshots
from p2pbackup.gui.app import App


def test_every_focusable_widget_has_a_name_and_a_mnemonic_where_it_is_a_button(qtbot, tmp_path):
    app = App(str(tmp_path), tray=False)
    qtbot.addWidget(app.window)
    screenshots._sample(app)
    app.window.show()
    tabs = app.window.tabs
    for tab in range(tabs.count()):  # every tab, as a person moves through them
        tabs.setCurrentIndex(tab)
        where = tabs.tabText(tab).replace("&", "")
        focusable = [w for w in app.window.findChildren(QWidget)
                     if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isVisibleTo(app.window)]
        assert focusable
        for widget in focusable:
            name = widget.accessibleName() or (
                widget.text() if isinstance(widget, QAbstractButton) else "")
            if isinstance(widget.parent(), QAbstractSpinBox | QComboBox):
                name = name or widget.parent().accessibleName()  # its text field: one widget
            assert name, f"{where}: a {type(widget).__name__} has no accessible name"
            if isinstance(widget, QAbstractButton):
                assert "&" in widget.text(), f"{where}: {widget.text()!r} has no shortcut"
    app.window.hide()
