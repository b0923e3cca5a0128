"""The desktop app for one profile: ``python -m p2pbackup.gui`` (later ``p2pbackup gui``).

A thin client of the profile's daemon (docs/gui.md): it starts one when none runs,
and holds no engine, network or database of its own.
"""

from __future__ import annotations

import argparse
import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from p2pbackup.gui import tray as tray_module
from p2pbackup.gui.actions import Actions
from p2pbackup.gui.bridge import Request, Watch
from p2pbackup.gui.icons import app_icon
from p2pbackup.gui.models.status import StatusModel
from p2pbackup.gui.single import SingleInstance
from p2pbackup.gui.supervisor import Supervisor
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
        self.actions = Actions(self)
        self.window = MainWindow(self.model, self.supervisor, self.actions)
        has_tray = tray_module.available() if tray is None else tray
        self.tray = tray_module.Tray(self.model, self.actions, self) if has_tray else None
        self.quitting = False

        a = self.actions
        a.open.triggered.connect(self.window.bring_forward)
        a.quit.triggered.connect(self.quit)
        a.backup.triggered.connect(lambda: self._job("backup"))
        a.pause.triggered.connect(self._pause_or_resume)
        for action, command in ((a.invite, "p2pbackup invite"), (a.accept, "p2pbackup join CODE"),
                                (a.restore, "p2pbackup restore")):  # fmt: skip
            action.triggered.connect(lambda _=False, c=command: self._not_yet(c))
        self.model.changed.connect(self._follow_model)
        if self.tray is not None:
            self.tray.activated.connect(self.window.bring_forward)
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
        if problem and problem != self._told and self.tray is not None:
            self.tray.icon.showMessage(self.tr("p2pbackup"), problem,
                                       QSystemTrayIcon.MessageIcon.Warning)  # fmt: skip
        self._told = problem

    def _follow_model(self) -> None:
        status = self.model.status or {}
        paused = bool((status.get("schedule") or {}).get("paused"))
        self.actions.set_paused(paused)
        for action in (self.actions.backup, self.actions.pause):
            action.setEnabled(self.model.running)

    def _pause_or_resume(self) -> None:
        paused = bool(((self.model.status or {}).get("schedule") or {}).get("paused"))
        self._job("resume" if paused else "pause")

    def _job(self, name: str, params: dict | None = None) -> Request:
        request = Request(self.home, name, params, self)
        request.failed.connect(lambda exc: self._tell(exc.message))
        request.finished.connect(self.model.refresh)
        return request.start()

    def _tell(self, message: str) -> None:
        self.model.error = message
        self.model.changed.emit()
        if self.tray is not None:
            self.tray.icon.showMessage(self.tr("p2pbackup"), message)

    def _not_yet(self, command: str) -> None:
        from PySide6.QtWidgets import QMessageBox  # only when asked

        QMessageBox.information(self.window, self.tr("p2pbackup"), self.tr(
            "This window is not in the app yet. For now, type this in a terminal:\n\n%1"
        ).replace("%1", command))


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
    gui.start()
    code = app.exec()
    single.close()
    return code
