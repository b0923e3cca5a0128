"""Which notifications are told, and when: pure functions, no D-Bus, no tray."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from p2pbackup.gui.notify import BURST, QUIET, Gate, note_for

FAILED = {"type": "JobFinished", "job": 4, "name": "backup", "state": "failed",
          "error": "No friend can be reached.", "seconds": 2.0}  # fmt: skip
FINISHED = {**FAILED, "state": "finished", "error": ""}
UNSEEN = {"type": "FriendUnseen", "name": "carol", "owner_id": "cd", "days": 5.2,
          "last_seen": None}  # fmt: skip


def test_what_is_worth_telling():
    failed = note_for(FAILED, asked=False)
    assert (failed.title, failed.body, failed.urgent) == ("Backup failed",
                                                          "No friend can be reached.", True)
    assert note_for(FINISHED, asked=True).title == "Backup finished"
    assert note_for(FINISHED, asked=False) is None  # a scheduled backup that worked: quiet
    assert note_for({**FAILED, "state": "cancelled"}) is None  # whoever stopped it knows
    assert note_for({**FINISHED, "name": "restore"}).title == "Restore finished"
    assert note_for({**FINISHED, "name": "status"}) is None
    assert note_for(UNSEEN).title == "carol has been away for 5 days"
    quota = note_for({"type": "QuotaNearlyFull", "name": "bob", "owner_id": "ab",
                      "whose": "theirs", "used": 19 << 30, "quota": 20 << 30})  # fmt: skip
    assert quota.body.startswith("The space bob gives you is nearly full (19.0 GiB of 20.0 GiB)")
    assert note_for({"type": "RepairDone", "records": 1, "shares": 4, "why": "bob away"}).body \
        == "4 pieces of your backup were stored again (bob away)."
    assert note_for({"type": "FriendOnline", "name": "bob"}) is None


def test_a_flapping_friend_is_told_once_a_day():
    gate = Gate()
    note = note_for(UNSEEN)
    assert gate.admit(note, now=0.0)
    for hour in range(1, 24):
        assert not gate.admit(note, now=hour * 3600.0)
    assert gate.admit(note, now=QUIET["unseen"] + 1.0)
    other = note_for({**UNSEEN, "name": "dave", "owner_id": "ef"})
    assert gate.admit(other, now=QUIET["unseen"] + 2.0)  # another friend is other news


def test_a_failing_backup_is_told_again_only_after_quiet_time_or_a_success():
    gate = Gate()
    failed = note_for(FAILED)
    assert gate.admit(failed, now=0.0)
    assert not gate.admit(failed, now=3600.0)  # the hourly retry fails again: quiet
    assert gate.admit(note_for(FINISHED, asked=True), now=7200.0)
    assert gate.admit(failed, now=7300.0)  # it worked in between: a new failure is news


def test_nothing_is_told_that_is_already_on_screen():
    gate = Gate()
    assert not gate.admit(note_for(FAILED), visible=frozenset({"backup"}), now=0.0)
    assert not gate.admit(note_for(FAILED), now=60.0)  # it was seen: not told later either
    restore = note_for({**FINISHED, "name": "restore"})
    assert not gate.admit(restore, visible=frozenset({"restore"}), now=0.0)
    assert gate.admit(restore, visible=frozenset({"backup"}), now=1.0)


def test_a_burst_is_cut_short():
    gate = Gate()
    notes = [note_for({**UNSEEN, "name": f"f{i}", "owner_id": f"{i:02x}"}) for i in range(6)]
    told = [gate.admit(note, now=float(i)) for i, note in enumerate(notes)]
    assert told == [True] * BURST + [False] * (len(notes) - BURST)
    assert gate.admit(note_for({**UNSEEN, "owner_id": "zz"}), now=100.0)


STAND_IN = """
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtDBus import QDBusConnection, QDBusVirtualObject
from PySide6.QtWidgets import QApplication
from p2pbackup.gui.notify import Note, Notifier
XML = ('<interface name="org.freedesktop.Notifications"><method name="Notify">'
       + ''.join(f'<arg type="{t}" direction="in"/>' for t in
                 ["s", "u", "s", "s", "s", "as", "a{sv}", "i"])
       + '<arg type="u" direction="out"/></method></interface>')
qt = QApplication([])
calls = []
class StandIn(QDBusVirtualObject):
    def introspect(self, path):
        return XML if "--no-introspection" not in sys.argv else ""
    def handleMessage(self, message, connection):
        if message.member() != "Notify":
            return False
        arguments = message.arguments()
        calls.append({"signature": message.signature(), "replaces": arguments[1],
                      "title": arguments[3], "body": arguments[4]})
        connection.send(message.createReply([41 + len(calls)]))
        if len(calls) == 2:
            QTimer.singleShot(0, qt.quit)
        return True
bus = QDBusConnection.sessionBus()
stand_in = StandIn()
bus.registerVirtualObject("/org/freedesktop/Notifications", stand_in)
bus.registerService("org.freedesktop.Notifications")
notifier = Notifier()
failed = Note("backup-failed", "backup", "Backup failed", "Bob & Carol are away", True)
notifier.offer(failed)
QTimer.singleShot(1500, lambda: notifier.gate._told.clear() or notifier.offer(failed))
QTimer.singleShot(10000, qt.quit)
qt.exec()
print(json.dumps(calls))
"""


@pytest.mark.skipif(not (shutil.which("dbus-run-session") and shutil.which("gdbus")),
                    reason="needs dbus-run-session and gdbus")  # fmt: skip
@pytest.mark.parametrize("introspection", [True, False])
def test_a_note_reaches_the_desktop_service_with_the_right_types(tmp_path, introspection):
    """On a private session bus, a stand-in notification service gets Notify with the
    signature GNOME Shell checks (also from a service that does not describe itself:
    the arguments are typed), and the second note of a key replaces the first."""
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": os.getcwd()}
    flags = [] if introspection else ["--no-introspection"]
    done = subprocess.run(["dbus-run-session", "--", sys.executable, str(script), *flags],
                          capture_output=True, text=True, env=env, timeout=30)  # fmt: skip
    calls = json.loads(done.stdout.strip().splitlines()[-1])
    assert [c["signature"] for c in calls] == ["susssasa{sv}i"] * 2, done.stderr
    assert [c["replaces"] for c in calls] == [0, 42]  # the service's id for that key
    assert calls[0]["title"] == "Backup failed"
    assert calls[0]["body"] == "Bob &amp; Carol are away"  # bodies may carry markup
