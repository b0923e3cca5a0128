"""Desktop notifications: what is worth telling, when, and through what.

``note_for`` (pure) says what an event of the daemon's is worth telling: a backup that
failed (or finished, when a person asked for it), a restore finished or failed, a repair
done, a friend unseen for days, a quota nearly full. ``Gate`` (pure, with its own memory)
says whether to tell it now: not while the app already shows that thing, not the same
thing again within its quiet time (a friend that comes and goes, a backup failing every
hour), and not more than a few at once. Both are tested without D-Bus.

``Notifier`` delivers: org.freedesktop.Notifications on the session bus where it runs
(also with no tray, as on vanilla GNOME), else the tray icon's balloon, else nothing
(the window's Activity tab has it all). The call is made with ``gdbus`` in a QProcess,
not QtDBus: PySide6 marshals every Python int as int32, and the Notify method takes a
uint32 ``replaces_id``, which GDBus-based servers (GNOME Shell) refuse by signature.
QtDBus asks the bus once, at the first note, whether it has the service (a local call).
"""

from __future__ import annotations

import html
import shutil
import time
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, QObject, QProcess
from PySide6.QtWidgets import QSystemTrayIcon

from p2pbackup.core.sizes import format_size

# Seconds during which the same thing (same key) is not told again.
QUIET = {"backup-failed": 6 * 3600, "unseen": 24 * 3600, "quota": 24 * 3600, "repair": 3600}
BURST, BURST_SECONDS = 3, 60.0  # at most this many notes in this many seconds
ERROR_TIMEOUT_MS = 0  # a failure stays until the person closes it
INFO_TIMEOUT_MS = 8000
SERVICE = "org.freedesktop.Notifications"


def _tr(text: str) -> str:
    return QCoreApplication.translate("Notify", text)


@dataclass(frozen=True)
class Note:
    key: str  # what it is about; a newer note of the same key replaces the older
    topic: str  # where the app shows the same thing: "backup", "restore", "friends"...
    title: str
    body: str
    urgent: bool = False


def note_for(event: dict, asked: bool = True) -> Note | None:
    """What ``event`` is worth telling; None for the rest. ``asked``: the job was asked
    for by a person (a finished scheduled backup is not news; a failed one is)."""
    kind, name = event.get("type"), str(event.get("name") or "")
    if kind == "JobFinished" and name in ("backup", "restore"):
        state, error = event.get("state"), str(event.get("error") or "")
        if name == "backup" and state == "finished":
            return Note("backup-finished", "backup", _tr("Backup finished"),
                        _tr("Your files are backed up."), False) if asked else None  # fmt: skip
        if name == "backup" and state == "failed":
            return Note("backup-failed", "backup", _tr("Backup failed"),
                        error or _tr("See the Activity tab."), True)  # fmt: skip
        if name == "restore" and state == "finished":
            return Note("restore", "restore", _tr("Restore finished"),
                        _tr("Your files are restored."))  # fmt: skip
        if name == "restore" and state == "failed":
            return Note("restore", "restore", _tr("Restore failed"),
                        error or _tr("See the Activity tab."), True)  # fmt: skip
        return None  # cancelled: the person who stopped it knows
    if kind == "RepairDone":
        return Note("repair", "activity", _tr("Backup repaired"), _tr(
            "%1 pieces of your backup were stored again (%2).").replace(
            "%1", str(event.get("shares") or 0)).replace("%2", str(event.get("why") or "")))
    if kind == "FriendUnseen":
        days = int(float(event.get("days") or 0))
        return Note(f"unseen:{event.get('owner_id')}", "friends",
                    _tr("%1 has been away for %2 days").replace("%1", name).replace(
                        "%2", str(days)),
                    _tr("Their part of your backup may have to be stored with other "
                        "friends. Ask them to turn their computer on."), True)  # fmt: skip
    if kind == "QuotaNearlyFull":
        used, quota = (format_size(int(event.get(k) or 0)) for k in ("used", "quota"))
        if event.get("whose") == "theirs":
            body = _tr("The space %1 gives you is nearly full (%2 of %3). Ask them for more, "
                       "or invite another friend.")  # fmt: skip
        else:
            body = _tr("The space you give %1 is nearly full (%2 of %3).")
        return Note(f"quota:{event.get('owner_id')}:{event.get('whose')}", "friends",
                    _tr("Space nearly full"), body.replace("%1", name).replace("%2", used)
                    .replace("%3", quota))  # fmt: skip
    return None


class Gate:
    """Whether a note is told now. ``visible`` names the topics the app shows on screen
    at this moment; ``now`` is time.monotonic() unless a test says otherwise."""

    def __init__(self) -> None:
        self._told: dict[str, float] = {}  # key: when it was last told (or seen on screen)
        self._recent: deque[float] = deque()

    def admit(self, note: Note, visible: frozenset[str] = frozenset(),
              now: float | None = None) -> bool:  # fmt: skip
        now = time.monotonic() if now is None else now
        if note.key == "backup-finished":
            self._told.pop("backup-failed", None)  # the next failure is news again
        quiet = QUIET.get(note.key.split(":")[0], 0)
        last = self._told.get(note.key)
        if last is not None and now - last < quiet:
            return False
        self._told[note.key] = now
        if note.topic in visible:
            return False  # on screen already: it counts as told
        while self._recent and now - self._recent[0] >= BURST_SECONDS:
            self._recent.popleft()
        if len(self._recent) >= BURST:
            return False  # a burst: the Activity tab has the rest
        self._recent.append(now)
        return True


class Notifier(QObject):
    """Tells a note through the desktop's notification service, or the tray's balloon."""

    def __init__(self, tray: QSystemTrayIcon | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.tray = tray
        self.gate = Gate()
        self.told: list[Note] = []  # what was told, newest last (the tests read it)
        self._ids: dict[str, int] = {}  # key: the service's id, to replace that note
        self._gdbus = shutil.which("gdbus")
        self._bus: bool | None = None  # asked at the first note, not while the app starts

    def offer(self, note: Note | None, visible: frozenset[str] = frozenset()) -> bool:
        """Tell ``note`` if the gate lets it through; whether it was told."""
        if note is None or not self.gate.admit(note, visible):
            return False
        self.told.append(note)
        del self.told[:-50]
        if self._bus is None:
            self._bus = self._gdbus is not None and _bus_has_service()
        if self._bus:
            self._notify(note)
        elif self.tray is not None and self.tray.isVisible():
            icon = (QSystemTrayIcon.MessageIcon.Warning if note.urgent
                    else QSystemTrayIcon.MessageIcon.Information)  # fmt: skip
            self.tray.showMessage(note.title, note.body, icon)
        return True

    def _notify(self, note: Note) -> None:
        # Typed GVariant text, so the call is right whatever the service's introspection says.
        hints = "@a{sv} {'urgency': <byte 2>}" if note.urgent else "@a{sv} {}"
        timeout = ERROR_TIMEOUT_MS if note.urgent else INFO_TIMEOUT_MS
        process = QProcess(self)
        process.setProgram(self._gdbus)
        process.setArguments([
            "call", "--session", "--dest", SERVICE, "--object-path",
            "/org/freedesktop/Notifications", "--method", f"{SERVICE}.Notify", "p2pbackup",
            f"uint32 {self._ids.get(note.key, 0)}", "p2pbackup", note.title,
            html.escape(note.body), "@as []", hints, f"int32 {timeout}",
        ])  # fmt: skip
        process.finished.connect(lambda code, _s: self._sent(process, note, code))
        process.errorOccurred.connect(lambda _e: process.deleteLater())
        process.start()

    def _sent(self, process: QProcess, note: Note, code: int) -> None:
        out = bytes(process.readAllStandardOutput().data()).decode(errors="replace")
        process.deleteLater()
        if code != 0:  # the service went away: the tray's balloon from now on
            self._bus = False
            return
        digits = "".join(c for c in out.split(",")[0] if c.isdigit())  # "(uint32 12,)"
        if digits:
            self._ids[note.key] = int(digits)


def _bus_has_service() -> bool:
    """Whether the session bus runs a notification service (or can start one)."""
    from PySide6.QtDBus import QDBusConnection  # only where notes are sent

    bus = QDBusConnection.sessionBus()
    if not bus.isConnected():
        return False
    iface = bus.interface()
    reply = iface.isServiceRegistered(SERVICE)
    if reply.isValid() and reply.value():
        return True
    names = iface.activatableServiceNames()
    return names.isValid() and SERVICE in (names.value() or [])
