"""The app against real daemons: it starts one when none runs and stops it on Quit, leaves
a running one alone, starts a dead one again once, and one app runs per profile."""

from __future__ import annotations

import os
import signal

from PySide6.QtWidgets import QApplication

from p2pbackup.gui.app import App, main
from p2pbackup.gui.bridge import Request
from p2pbackup.gui.models.friends import QUOTA_ROLE, Column
from p2pbackup.gui.single import SingleInstance
from p2pbackup.gui.supervisor import Service

WAIT = 8000  # ms
LISTEN = ["--listen", "/ip4/127.0.0.1/tcp/0"]


def _started(qtbot, home: str) -> App:
    app = App(home, LISTEN, tray=False)
    app.start()
    qtbot.addWidget(app.window)
    # A bool: waitUntil takes None as "no assertion failed", so it must not see one.
    qtbot.waitUntil(lambda: app.supervisor.state is Service.RUNNING
                    and app.model.status is not None, timeout=WAIT)  # fmt: skip
    return app


def _answers(qtbot, home: str) -> str:
    told = []
    request = Request(home, "status")
    request.result.connect(lambda _: told.append("result"))
    request.no_daemon.connect(lambda: told.append("no daemon"))
    with qtbot.waitSignal(request.finished, timeout=WAIT):
        request.start()
    return told[0]


def _quit(qtbot, app: App) -> None:
    with qtbot.waitSignal(app.finished, timeout=WAIT + 2000):
        app.quit()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_app_starts_a_daemon_when_none_runs_and_stops_it_on_quit(qtbot, grid):
    grid.init("laptop")
    home = grid.home("laptop")
    app = _started(qtbot, home)
    assert app.supervisor.owned
    pid = app.supervisor.process.processId()
    _quit(qtbot, app)
    qtbot.waitUntil(lambda: _gone(pid), timeout=WAIT)  # and not left a zombie: reaped
    assert _answers(qtbot, home) == "no daemon"


def test_the_app_leaves_a_running_daemon_alone(qtbot, grid, laptop):
    app = _started(qtbot, laptop)
    assert not app.supervisor.owned
    _quit(qtbot, app)
    assert grid.running("laptop")
    assert _answers(qtbot, laptop) == "result"


def test_a_daemon_that_dies_is_started_again_once_then_offered(qtbot, grid):
    grid.init("laptop")
    app = _started(qtbot, grid.home("laptop"))
    first = app.supervisor.process.processId()
    os.kill(first, signal.SIGKILL)
    qtbot.waitUntil(lambda: app.supervisor.process is not None
                    and app.supervisor.process.processId() not in (0, first)
                    and app.supervisor.state is Service.RUNNING, timeout=WAIT)  # fmt: skip
    assert "started again" in app.supervisor.problem
    assert "started again" in app.window.banner_text.text()

    app.window.hide()  # the person is elsewhere: the second death is a notification
    os.kill(app.supervisor.process.processId(), signal.SIGKILL)
    qtbot.waitUntil(lambda: app.supervisor.state is Service.STOPPED, timeout=WAIT)
    assert app.supervisor.process is None  # not started a third time by itself
    assert not app.window.start_again.isHidden()
    assert "exit code" in app.window.banner_text.text()
    assert "exit code" in app.notifier.told[-1].body  # said even with the window hidden
    for action in (app.actions.backup, app.actions.pause, app.actions.invite,
                   app.actions.accept, app.actions.restore):  # fmt: skip
        assert not action.isEnabled(), action.text()  # each needs the service
    _quit(qtbot, app)


def test_a_second_launch_brings_the_first_forward(qtbot, tmp_path):
    home = str(tmp_path / "laptop")
    first = SingleInstance(home)
    assert first.claim()
    with qtbot.waitSignal(first.activated, timeout=WAIT):
        assert main(["--home", home]) == 0  # returns at once: nothing of its own started
    first.close()
    other = SingleInstance(str(tmp_path / "another"))
    assert other.claim()  # another profile is another app
    other.close()


def test_the_main_window_shows_the_daemons_status_and_friends(qtbot, grid):
    grid.init_all(["laptop", "alice"])
    grid.start("laptop", "alice")
    grid.pair("laptop", "alice", offer="3G")
    app = _started(qtbot, grid.home("laptop"))
    qtbot.waitUntil(lambda: app.window.friends.friends.rowCount() == 1, timeout=WAIT)
    overview = app.window.overview
    # Alice comes online when the daemon's presence reaches her (an event, or a poll).
    qtbot.waitUntil(lambda: overview.friends.text() == "1 of 1", timeout=WAIT)
    assert overview.safety.text() == "nothing backed up yet"
    assert "No folder is chosen" in overview.warnings.text()
    table = app.window.friends.friends
    assert table.index(0, Column.NAME).data() == "alice"
    assert table.index(0, Column.I_KEEP).data(QUOTA_ROLE) == (0, 3 << 30)
    assert not app.window.friends.table.isHidden()  # on the tab not shown
    _quit(qtbot, app)


def test_a_daemon_that_cannot_start_says_why_at_once(qtbot, tmp_path):
    app = App(str(tmp_path / "no-profile-here"), LISTEN, tray=False)
    app.start()
    qtbot.addWidget(app.window)
    qtbot.waitUntil(lambda: app.supervisor.state is Service.STOPPED, timeout=WAIT)
    assert app.supervisor.restarts_left == 1  # a start that fails is not a death
    assert app.window.banner_text.text().startswith("The backup service could not start.")
    assert len(app.window.banner_text.text()) > len("The backup service could not start.")
    _quit(qtbot, app)


def test_pause_and_resume_from_the_menu(qtbot, laptop):
    app = _started(qtbot, laptop)
    assert app.actions.pause.text() == "&Pause backups"
    app.actions.pause.trigger()
    qtbot.waitUntil(lambda: app.actions.pause.text() == "&Resume backups", timeout=WAIT)
    assert app.model.status["schedule"]["paused"] is True
    assert app.window.overview.next.text() == "paused"
    app.actions.pause.trigger()
    qtbot.waitUntil(lambda: app.actions.pause.text() == "&Pause backups", timeout=WAIT)
    _quit(qtbot, app)


def test_back_up_from_the_tray_menu(qtbot, grid, tmp_path):
    grid.init_all(["laptop", "alice", "bob"])
    grid.cli("laptop", "schedule", "off")  # only the tray's backup runs
    grid.start("laptop", "alice", "bob")
    grid.pair("laptop", "alice", "bob", offer="1G")  # two friends: one may disappear
    folder = tmp_path / "Documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("the tray backed me up\n")
    grid.cli("laptop", "folders", "add", str(folder))
    app = App(grid.home("laptop"), LISTEN, tray=True)
    app.start()
    qtbot.waitUntil(lambda: app.model.status is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: app.actions.backup.isEnabled(), timeout=WAIT)
    menu = {a.text(): a for a in app.tray.menu.actions()}
    menu["&Back up now"].trigger()
    # The job runs (the activity shows it), then a snapshot is there.
    qtbot.waitUntil(lambda: any(e.what == "Backup" and e.text == "Finished."
                                for e in app.activity.entries()), timeout=WAIT * 3)  # fmt: skip
    assert app.notifier.told[-1].title == "Backup finished"  # asked by a person: told
    assert not app.window.isVisible()
    app.tray.icon.messageClicked.emit()  # the balloon clicked: the window comes
    assert app.window.isVisible()
    snapshots = grid.cli("laptop", "snapshots")
    assert len(snapshots) == 1 and snapshots[0]["files"] == 1
    _quit(qtbot, app)


def test_quitting_during_a_backup_asks_and_says_what_happens_to_it(qtbot, grid, laptop):
    app = _started(qtbot, laptop)  # a daemon that was running: the backup goes on
    app.model.jobs[9] = {"name": "backup", "state": "running"}
    app.actions.quit.trigger()
    box = app.quit_box
    assert box is not None and not app.quitting
    assert "It goes on" in box.text()
    box.escapeButton().click()
    assert app.quit_box is None and not app.quitting  # kept open
    app.actions.quit.trigger()
    with qtbot.waitSignal(app.finished, timeout=WAIT + 2000):
        app._quit_yes.click()
    assert grid.running("laptop")


def test_quitting_during_a_restore_of_our_own_daemon_says_it_stops(qtbot, grid):
    grid.init("laptop")
    app = _started(qtbot, grid.home("laptop"))  # the app started this daemon
    app.model.jobs[3] = {"name": "restore", "state": "running"}
    app.quit()
    assert "the restore stops unfinished" in app.quit_box.text()
    assert app._quit_yes.text() == "&Quit and stop it"
    app.model.jobs.clear()
    with qtbot.waitSignal(app.finished, timeout=WAIT + 2000):
        app._quit_yes.click()


def test_no_note_repeats_what_a_window_shows(qtbot, tmp_path):
    app = App(str(tmp_path), tray=False)  # no daemon needed: what is on screen
    qtbot.addWidget(app.window)
    restored = {"type": "JobFinished", "job": 2, "name": "restore", "state": "finished"}
    app.actions.restore.setEnabled(True)
    app.actions.restore.trigger()  # the wizard shows how its restore ends
    assert "restore" in app.visible()
    app._news(restored)
    assert app.notifier.told == []
    for widget in QApplication.topLevelWidgets():
        if widget.property("shows") == "restore":
            widget.close()
    app._news({**restored, "job": 3})
    assert [note.title for note in app.notifier.told] == ["Restore finished"]
