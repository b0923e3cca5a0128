"""The tray's icon, tooltip and menu follow the model (offscreen: no tray shows it, but
the QSystemTrayIcon and its menu exist all the same)."""

from __future__ import annotations

from p2pbackup.gui.actions import Actions
from p2pbackup.gui.bridge import DaemonState, Watch
from p2pbackup.gui.models.status import StatusModel
from p2pbackup.gui.tray import Tray, available
from tests.gui.test_models import STATUS


def test_offscreen_has_no_tray(qapp):  # asked without a QApplication, Qt crashes
    assert not available()  # so the app opens its window instead (test_app)


def test_the_tray_says_the_state_and_offers_the_menu(qtbot, tmp_path):
    model = StatusModel(str(tmp_path), Watch(str(tmp_path)))
    actions = Actions()
    tray = Tray(model, actions)
    assert actions.status.text() == "The backup service is not running"
    assert "not running" in tray.icon.toolTip()

    model.watch.state = DaemonState.RUNNING
    model.status = {**STATUS, "last_backup": None}
    model.changed.emit()
    tip = tray.icon.toolTip().splitlines()
    assert tip[1] == "Your backup needs attention"  # nothing backed up yet
    assert tip[2:] == ["Last backup: never", "Friends online: 1 of 2"]

    model.feed({"type": "JobStarted", "job": 3, "name": "backup"})
    assert actions.status.text() == "Backing up…"
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator()]
    assert texts == ["Backing up…", "&Back up now", "&Pause backups", "&Invite a friend…",
                     "&Accept an invite…", "&Restore…", "&Open p2pbackup", "&Quit"]
    assert not actions.status.isEnabled()  # a line of text, not a command
