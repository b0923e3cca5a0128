"""The profile's daemon as the app sees it: found running, or started as our child.

A daemon that already runs (a service, a NAS) is left alone, and left running on Quit.
When none runs, the app starts ``p2pbackup daemon`` with QProcess and stops it on Quit.
A daemon that dies (ours or not) is noticed through the watch, said, and started again
once; after that the window offers to start it by hand.
"""

from __future__ import annotations

import enum
import os
import signal
import sys

from PySide6.QtCore import QObject, QProcess, QTimer, Signal
from shiboken6 import isValid

from p2pbackup.gui.bridge import DaemonState, Watch

RESTARTS = 1
STOP_GRACE = 8.0  # seconds a daemon has to stop after Ctrl-C before it is killed


class Service(enum.Enum):
    LOOKING = "looking"  # not known yet whether one runs
    STARTING = "starting"  # our child is starting
    RUNNING = "running"
    STOPPED = "stopped"  # died and not started again (or failed to start)


def daemon_command(home: str, extra: list[str] | None = None) -> list[str]:
    """``p2pbackup --home HOME daemon``, with this Python (the app's own installation)."""
    return [sys.executable, "-m", "p2pbackup.cli.main", "--home", home, "daemon", *(extra or [])]


class Supervisor(QObject):
    changed = Signal()  # state, owned or problem changed
    stopped = Signal()  # after stop(): our child is gone (or there was none)

    def __init__(
        self, home: str, watch: Watch, extra_args: list[str] | None = None,
        parent: QObject | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.home, self.watch = home, watch
        self.command = daemon_command(home, extra_args)
        self.state = Service.LOOKING
        self.problem = ""  # what went wrong last, for the window; "" when nothing did
        self.restarts_left = RESTARTS
        self.process: QProcess | None = None
        self._stopping = False
        self._errors = b""
        self._kill = QTimer(self, singleShot=True, timeout=self._kill_now)
        watch.state_changed.connect(self._watched)

    @property
    def owned(self) -> bool:
        """Whether the daemon is our child (and so stops when the app quits)."""
        return self.process is not None

    def start(self) -> None:
        self.watch.start()

    def start_again(self) -> None:
        """Start it by hand (the window's button), after it stopped for good."""
        if self.state is Service.STOPPED:
            self._spawn()

    def stop(self) -> None:
        """On Quit: stop our child (Ctrl-C, then kill), then ``stopped``. A daemon that
        is not ours keeps running."""
        self._stopping = True
        self.watch.stop()
        if self.process is None:
            QTimer.singleShot(0, self, self.stopped.emit)
            return
        pid = self.process.processId()
        if sys.platform != "win32" and pid:
            os.kill(pid, signal.SIGINT)  # the daemon's clean way out: lock and socket go
        else:
            self.process.kill()  # no SIGINT on Windows: the shutdown job should stop it there
        self._kill.start(int(STOP_GRACE * 1000))

    def _watched(self, state: DaemonState) -> None:
        if self._stopping:
            return
        if state is DaemonState.RUNNING:
            self._set(Service.RUNNING, "")
        elif self.state is Service.LOOKING:
            self._spawn()  # none ran when the app started: ours
        elif self.state is Service.RUNNING and self.process is None:
            self._died(self.tr("The backup service stopped."))
        # Ours stopping is told by its QProcess (finished), with its exit code.

    def _spawn(self) -> None:
        process = self.process = QProcess(self)
        self._errors = b""
        process.setProgram(self.command[0])
        process.setArguments(self.command[1:])
        # Guarded: a QProcess destroyed with its child still running (the app torn down
        # without Quit) kills it and signals from inside its own destructor.
        process.readyReadStandardOutput.connect(
            lambda: isValid(process) and self._output(process))
        process.readyReadStandardError.connect(
            lambda: isValid(process) and self._error_output(process))
        process.finished.connect(
            lambda code, _status: isValid(process) and self._finished(process, code))
        process.errorOccurred.connect(
            lambda error: isValid(process) and self._failed_to_start(process, error))
        self._set(Service.STARTING, "")
        self.watch.reset()  # the next daemon the watch finds is this one
        process.start()

    def _output(self, process: QProcess) -> None:
        # The daemon prints "... running" once it listens: look now, not after the backoff.
        if b"running" in bytes(process.readAllStandardOutput().data()):
            self.watch.retry_now()

    def _error_output(self, process: QProcess) -> None:
        self._errors = (self._errors + bytes(process.readAllStandardError().data()))[-4000:]

    def _failed_to_start(self, process: QProcess, error: QProcess.ProcessError) -> None:
        if error is QProcess.ProcessError.FailedToStart and process is self.process:
            self.process = None
            process.deleteLater()
            self._set(Service.STOPPED, self.tr("The backup service could not be started."))

    def _finished(self, process: QProcess, code: int) -> None:
        if process is not self.process:
            return
        self.process = None
        process.deleteLater()
        if self._stopping:
            self._kill.stop()
            self.stopped.emit()
            return
        said = self._last_error_line()
        if self.state is Service.STARTING:
            # It never ran (no profile yet, or the profile is in use): starting it again
            # would fail the same way, so say why at once.
            why = self.tr("The backup service could not start.")
            self._set(Service.STOPPED, f"{why} {said}".strip())
            return
        why = self.tr("The backup service stopped (exit code %1).").replace("%1", str(code))
        self._died(f"{why} {said}".strip())

    def _died(self, why: str) -> None:
        if self.restarts_left > 0:
            self.restarts_left -= 1
            self._spawn()
            self.problem = why + " " + self.tr("It was started again.")
            self.changed.emit()
        else:
            self._set(Service.STOPPED, why)

    def _last_error_line(self) -> str:
        lines = self._errors.decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else ""

    def _kill_now(self) -> None:
        if self.process is not None:
            self.process.kill()

    def _set(self, state: Service, problem: str | None) -> None:
        changed = state is not self.state or (problem is not None and problem != self.problem)
        self.state = state
        if problem is not None and (problem or state is not Service.RUNNING):
            self.problem = problem
        if changed:
            self.changed.emit()
