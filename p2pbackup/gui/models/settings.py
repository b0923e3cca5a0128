"""The daemon's ``settings`` answer (folders, excludes, schedule, bandwidth), kept fresh,
and the settings jobs that change it (daemon/settings.py).

The daemon is the one writer of settings: a change is a job sent to it, and what the
window shows is the daemon's answer afterwards, never what the window thinks it wrote.
Asked again when the daemon comes up, after each change, and on ``SettingsChanged``
from anyone else (the CLI, another window).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QObject, Signal

from p2pbackup.gui.bridge import DaemonState, Request, Watch

HOUR = 3600
INTERVALS = (15 * 60, HOUR, 6 * HOUR, 24 * HOUR, 0)  # seconds; 0: only when asked


def _tr(text: str) -> str:
    return QCoreApplication.translate("settings", text)


def interval_text(seconds: float) -> str:
    """``every hour``, ``every 15 minutes``, ``only when I ask`` (0)."""
    seconds = int(seconds)
    if seconds <= 0:
        return _tr("Only when I ask")
    if seconds % 86400 == 0:
        n, one, many = seconds // 86400, _tr("Every day"), _tr("Every %1 days")
    elif seconds % HOUR == 0:
        n, one, many = seconds // HOUR, _tr("Every hour"), _tr("Every %1 hours")
    elif seconds % 60 == 0:
        n, one, many = seconds // 60, _tr("Every minute"), _tr("Every %1 minutes")
    else:
        n, one, many = seconds, _tr("Every second"), _tr("Every %1 seconds")
    return one if n == 1 else many.replace("%1", str(n))


def interval_choices(current: float | None) -> list[tuple[float, str]]:
    """The intervals a window offers, with the current one among them if it is unusual."""
    values = list(INTERVALS)
    if current is not None and int(current) not in values:
        values.insert(-1, int(current))
        values[:-1] = sorted(values[:-1])
    return [(float(v), interval_text(v)) for v in values]


class SettingsModel(QObject):
    """``values``: the latest ``settings`` answer ({} before the first). ``changed`` after
    it moves. ``refusal``: why the last change was refused (its error's words; "" once
    another change is sent), also sent as ``failed``."""

    changed = Signal()
    failed = Signal(str)

    def __init__(self, home: str, watch: Watch, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.home, self.watch = home, watch
        self.values: dict = {}
        self.pending = 0  # changes sent and not answered yet
        self.refusal = ""
        self._asking = False
        self._again = False
        watch.state_changed.connect(self._daemon)
        watch.event.connect(self._event)

    @property
    def running(self) -> bool:
        return self.watch.state is DaemonState.RUNNING

    @property
    def settled(self) -> bool:
        """No change on its way, and the answer after the last one is in."""
        return self.pending == 0 and not self._asking

    @property
    def folders(self) -> list[str]:
        return list(self.values.get("folders") or [])

    @property
    def excludes(self) -> list[str]:
        return list(self.values.get("excludes") or [])

    @property
    def interval(self) -> float | None:
        return (self.values.get("schedule") or {}).get("interval")

    @property
    def paused(self) -> bool:
        return bool((self.values.get("schedule") or {}).get("paused"))

    @property
    def bandwidth(self) -> int:
        return int(self.values.get("bandwidth") or 0)

    def refresh(self) -> None:
        """Ask for the settings; while a question is out, once more after its answer (it
        may predate the change that made us ask)."""
        if not self.running:
            return
        if self._asking:
            self._again = True
            return
        self._asking, self._again = True, False
        request = Request(self.home, "settings", None, self)
        request.result.connect(self._answer)
        request.finished.connect(self._asked)
        request.start()

    def _asked(self) -> None:
        self._asking = False
        if self._again:
            self.refresh()

    def _answer(self, result: object) -> None:
        if isinstance(result, dict):
            self.values = result
            self.changed.emit()

    def change(self, job: str, params: dict | None = None) -> Request:
        """Send settings job ``job`` (``folders``, ``excludes``, ``schedule``, ``pause``,
        ``resume``, ``bandwidth``); the answer is read again after it."""
        self.pending += 1
        self.refusal = ""
        request = Request(self.home, job, params, self)
        request.failed.connect(lambda exc: self._refused(exc.message))
        request.no_daemon.connect(
            lambda: self._refused(_tr("The backup service is not running, so nothing was changed."))
        )
        request.lost.connect(
            lambda: self._refused(
                _tr("The backup service stopped before it answered; nothing may have changed.")
            )
        )
        request.finished.connect(self._changed)
        return request.start()

    def _refused(self, message: str) -> None:
        self.refusal = message
        self.failed.emit(message)

    def _changed(self) -> None:
        self.pending -= 1
        self.refresh()
        self.changed.emit()

    def _daemon(self, state: DaemonState) -> None:
        if state is DaemonState.RUNNING:
            self.refresh()
        self.changed.emit()

    def _event(self, event: dict, _job: object = None) -> None:
        if event.get("type") == "SettingsChanged":
            self.refresh()
