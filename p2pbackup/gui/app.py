"""The desktop app for one profile: ``python -m p2pbackup.gui`` (later ``p2pbackup gui``).

A thin client of the profile's daemon (docs/gui.md): it starts one when none runs,
and holds no engine, network or database of its own.
"""

from __future__ import annotations

import argparse
import signal
import sys

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from p2pbackup.gui import tray as tray_module
from p2pbackup.gui.actions import Actions
from p2pbackup.gui.bridge import Request, Watch
from p2pbackup.gui.icons import app_icon
from p2pbackup.gui.models.activity import ActivityModel
from p2pbackup.gui.models.status import BUSY_JOBS, StatusModel
from p2pbackup.gui.notify import Note, Notifier, note_for
from p2pbackup.gui.single import SingleInstance
from p2pbackup.gui.supervisor import Supervisor
from p2pbackup.gui.windows import accept, checkphrase, firstrun, invite, restore
from p2pbackup.gui.windows.main import MainWindow
from p2pbackup.storage.profile import default_home


class App(QObject):
    """Everything of one profile's app, wired; ``start`` shows it, ``quit`` ends it (our
    daemon stopped first), then ``finished``. ``tray``: None asks the platform."""

    finished = Signal()

    def __init__(
        self, home: str, daemon_args: list[str] | None = None, tray: bool | None = None,
        parent: QObject | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.home = home
        self.watch = Watch(home, self)
        self.supervisor = Supervisor(home, self.watch, daemon_args, self)
        self.model = StatusModel(home, self.watch, self)
        self.activity = ActivityModel(self)
        self.activity.follow(home, self.watch)
        self.actions = Actions(self)
        self.window = MainWindow(self.model, self.supervisor, self.actions, self.activity)
        has_tray = tray_module.available() if tray is None else tray
        self.tray = tray_module.Tray(self.model, self.actions, self) if has_tray else None
        self.notifier = Notifier(self.tray.icon if self.tray is not None else None, self)
        self.asked: set[int] = set()  # jobs a person asked for (their end is news)
        self.watch.event.connect(self._news)
        self.quitting = False
        self.quit_box: QMessageBox | None = None  # asking whether to quit during a job

        a = self.actions
        a.open.triggered.connect(self.window.bring_forward)
        a.quit.triggered.connect(self.quit)
        a.backup.triggered.connect(lambda: self._job("backup"))
        a.pause.triggered.connect(self._pause_or_resume)
        a.invite.triggered.connect(lambda: invite.open_invite(home, self.window))
        a.accept.triggered.connect(lambda: accept.open_accept(home, self.window))
        a.restore.triggered.connect(self._open_restore)
        a.check_phrase.triggered.connect(self._open_check_phrase)
        self.model.changed.connect(self._follow_model)
        if self.tray is not None:
            self.tray.activated.connect(self.window.bring_forward)
            self.tray.icon.messageClicked.connect(self.window.bring_forward)  # a balloon
        self._told = ""
        self.supervisor.changed.connect(self._tell_problem)
        self._follow_model()

    def start(self) -> None:
        self.supervisor.start()
        if self.tray is not None:
            self.tray.show()
        else:
            self.window.set_no_tray(self.tr(
                "This desktop has no tray for p2pbackup's icon, so p2pbackup stays in this "
                "window. Closing the window quits p2pbackup."))
            self.window.show()

    def quit(self) -> None:
        """Quit; during a backup or restore, ask first (``quit_box``), saying whether the
        job goes on (a daemon that was running before) or stops (ours stops with us)."""
        if self.quitting:
            return
        busy = self.busy_job()
        if busy is None:
            self.quit_now()
            return
        if self.quit_box is not None:
            self.quit_box.raise_()
            return
        self.quit_box = box = self._quit_question(busy)
        box.finished.connect(self._quit_answered)
        self.window.bring_forward()
        box.open()

    def busy_job(self) -> str | None:
        """The name of a running backup or restore ("backup"), None when there is none."""
        for job in self.model.jobs.values():
            if job.get("name") in BUSY_JOBS - {"verify"} and job.get("state") == "running":
                return str(job["name"])
        return None

    def _quit_question(self, busy: str) -> QMessageBox:
        doing = self.tr("A backup is running.") if busy == "backup" else self.tr(
            "A restore is running.")
        if self.supervisor.owned:
            then = (self.tr("p2pbackup started the backup service, and it stops when you "
                            "quit: the backup stops too. The next backup goes on from there.")
                    if busy == "backup" else
                    self.tr("p2pbackup started the backup service, and it stops when you "
                            "quit: the restore stops unfinished, and you can run it again."))
            yes = self.tr("&Quit and stop it")
        else:
            then = self.tr("It goes on: the backup service keeps running after you quit.")
            yes = self.tr("&Quit")
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Quit p2pbackup?"),
                          f"{doing} {then}", QMessageBox.StandardButton.NoButton, self.window)
        box.setObjectName("quit_box")
        self._quit_yes = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton(self.tr("&Keep p2pbackup open"), QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        return box

    def _quit_answered(self) -> None:
        box, self.quit_box = self.quit_box, None
        if box is None:
            return
        quit_now = box.clickedButton() is self._quit_yes
        box.deleteLater()
        if quit_now:
            self.quit_now()

    def quit_now(self) -> None:
        """Close the windows, stop our daemon (one that was running before is left), and
        leave the event loop once it has stopped."""
        if self.quitting:
            return
        self.quitting = True
        self.window.hide()
        if self.tray is not None:
            self.tray.hide()
        self.supervisor.stopped.connect(self.finished)
        self.supervisor.stop()

    def _tell_problem(self) -> None:
        """A daemon that died or cannot start is said once, even with the window hidden."""
        problem = self.supervisor.problem
        if problem and problem != self._told:
            self.notifier.offer(Note("service", "service", self.tr("p2pbackup"), problem, True),
                                self.visible())  # fmt: skip
        self._told = problem

    def _open_restore(self) -> None:
        wizard = restore.open_restore(self.home, (self.model.status or {}).get("folders"),
                                      self.window)  # fmt: skip
        wizard.setProperty("shows", "restore")  # its last page tells how the restore ended

    def _open_check_phrase(self) -> None:
        dialog = checkphrase.open_check_phrase(self.home, self.window)
        dialog.confirmed.connect(self.model.refresh)  # the reminder goes at once

    def visible(self) -> frozenset[str]:
        """What a person sees now, so a note does not repeat it: the main window, when it
        is the active window, shows everything; a window may say what it shows with a
        ``shows`` property (the restore wizard: "restore")."""
        shown = {str(w.property("shows")) for w in QApplication.topLevelWidgets()
                 if w.isVisible() and w.property("shows")}  # fmt: skip
        if self.window.isVisible() and self.window.isActiveWindow():
            shown |= {"backup", "friends", "activity", "service"}
        return frozenset(shown)

    def _news(self, event: dict, job: object = None) -> None:
        """An event of the daemon's: tell it where it is news (notify.py decides)."""
        kind, ident = event.get("type"), event.get("job")
        if kind == "JobQueued" and event.get("source") == "client" and isinstance(ident, int):
            self.asked.add(ident)
        asked = ident in self.asked
        if kind == "JobFinished":
            self.asked.discard(ident)
        self.notifier.offer(note_for(event, asked), self.visible())

    def _follow_model(self) -> None:
        status = self.model.status or {}
        paused = bool((status.get("schedule") or {}).get("paused"))
        self.actions.set_paused(paused)
        # Each is a job of the daemon's: offered only while it runs.
        for action in (self.actions.backup, self.actions.pause, self.actions.invite,
                       self.actions.accept, self.actions.restore,
                       self.actions.check_phrase):  # fmt: skip
            action.setEnabled(self.model.running)

    def _pause_or_resume(self) -> None:
        paused = bool(((self.model.status or {}).get("schedule") or {}).get("paused"))
        self._job("resume" if paused else "pause")

    def _job(self, name: str, params: dict | None = None) -> Request:
        request = Request(self.home, name, params, self)
        taken = []  # the daemon took the job: how it ends is told by its JobFinished

        def _failed(exc) -> None:
            if not (taken and note_for({"type": "JobFinished", "name": name, "state": "failed"})):
                self._tell(exc.message)

        request.message.connect(lambda message: "job" in message and taken.append(True))
        request.failed.connect(_failed)
        request.finished.connect(self.model.refresh)
        return request.start()

    def _tell(self, message: str) -> None:
        self.model.error = message
        self.model.changed.emit()
        self.notifier.offer(Note("request", "service", self.tr("p2pbackup"), message, True),
                            self.visible())  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``p2pbackup gui``: the app for the profile in --home, $P2PBACKUP_HOME or the
    platform's data folder. Returns the exit code."""
    parser = argparse.ArgumentParser(prog="p2pbackup gui", description="the desktop app")
    parser.add_argument("--home", help="the profile folder (default: $P2PBACKUP_HOME or the "
                        "platform's data folder)")  # fmt: skip
    args, qt_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    home = args.home or default_home()

    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("p2pbackup")
    app.setApplicationDisplayName("p2pbackup")
    app.setDesktopFileName("p2pbackup")
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)  # the tray keeps it; Quit ends it

    single = SingleInstance(home)
    if not single.claim():
        print("p2pbackup is already open for this profile; its window was brought forward.")
        return 0
    gui = App(home)
    single.activated.connect(gui.window.bring_forward)
    gui.finished.connect(app.quit)
    # Ctrl-C in the terminal that started it quits as the menu does (our daemon stopped
    # cleanly). Python runs a signal handler only between Qt's events: the timer gives it
    # a turn four times a second.
    signal.signal(signal.SIGINT, lambda *_: gui.quit_now())
    wake = QTimer(app, interval=250)
    wake.start()
    firstrun.start(gui)  # the first-run wizard when the profile does not exist yet
    code = app.exec()
    single.close()
    return code
