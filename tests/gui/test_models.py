"""The models from plain dicts, without widgets."""

from __future__ import annotations

from PySide6.QtCore import Qt

from p2pbackup.gui.bridge import DaemonState, Watch
from p2pbackup.gui.models.friends import ONLINE_ROLE, QUOTA_ROLE, Column, FriendsModel
from p2pbackup.gui.models.status import StatusModel, TrayState, tray_state, warnings, when

GIB = 1 << 30
ALICE = {  # as list_friends answers (daemon/pairing.py)
    "name": "alice", "owner_id": "a7" * 32, "node_ids": ["12D3KooW"], "addresses": [],
    "online": True, "i_store_for_them": GIB // 2, "i_give": 2 * GIB,
    "they_store_for_me": 3 * GIB // 2, "they_give": 2 * GIB,
}  # fmt: skip
BOB = {**ALICE, "name": "Bob", "online": False, "they_store_for_me": None,
       "last_seen": "2026-12-01T10:00:00+00:00"}  # fmt: skip
STATUS = {
    "friends": 2, "friends_online": ["alice"], "offline": ["Bob"], "backup_now_survives": 1,
    "folders": ["/home/me/Documents"], "last_backup": "2026-12-05T10:00:00+00:00",
    "snapshots": 3, "protected_bytes": 5 * GIB, "protected_files": 1200,
    "friends_that_could_disappear": 1, "head_rolled_back": [],
    "schedule": {"interval": 3600.0, "paused": False, "next_run": 0, "last_error": None},
}  # fmt: skip
NOW = 1_796_470_000.0  # 2026-12-05, a few hours after STATUS's last backup


def test_friends_model_rows_columns_and_roles():
    model = FriendsModel()
    model.set_friends([BOB, ALICE])
    assert (model.rowCount(), model.columnCount()) == (2, 4)
    name = model.index(0, Column.NAME)
    assert name.data() == "alice"  # sorted by name, whatever the case
    assert model.index(1, Column.NAME).data() == "Bob"
    assert model.index(0, Column.SEEN).data() == "Online"
    assert model.index(0, Column.SEEN).data(ONLINE_ROLE) is True
    assert model.index(1, Column.SEEN).data().startswith("Last seen ")
    assert model.index(0, Column.THEY_KEEP).data(QUOTA_ROLE) == (3 * GIB // 2, 2 * GIB)
    assert model.index(0, Column.THEY_KEEP).data() == "1.5 GiB of 2.0 GiB"
    assert model.index(0, Column.I_KEEP).data() == "512.0 MiB of 2.0 GiB"
    assert model.index(1, Column.THEY_KEEP).data() == "2.0 GiB given (offline)"
    assert model.index(0, Column.NAME).data(QUOTA_ROLE) is None
    assert "alice" in model.index(0, Column.I_KEEP).data(Qt.ItemDataRole.ToolTipRole)
    assert model.headerData(Column.THEY_KEEP, Qt.Orientation.Horizontal) == "They keep for you"
    # The column holds "Online" or "Last seen ...": its header names what it tells.
    assert model.headerData(Column.SEEN, Qt.Orientation.Horizontal) == "Status"


def test_friends_model_reset_tells_views():
    model = FriendsModel()
    resets = []
    model.modelReset.connect(lambda: resets.append(model.rowCount()))
    model.set_friends([ALICE])
    model.set_friends([])
    assert resets == [1, 0]


def test_tray_state_reads_status():
    assert tray_state(STATUS, busy=False, running=True) is TrayState.SAFE
    assert tray_state(STATUS, busy=True, running=True) is TrayState.BUSY
    assert tray_state(STATUS, busy=False, running=False) is TrayState.ATTENTION
    assert tray_state(None, busy=False, running=True) is TrayState.ATTENTION
    offline = {**STATUS, "friends_online": []}
    assert tray_state(offline, busy=False, running=True) is TrayState.OFFLINE
    paused = {**STATUS, "schedule": {**STATUS["schedule"], "paused": True}}
    assert tray_state(paused, busy=True, running=True) is TrayState.PAUSED
    failed = {**STATUS, "schedule": {**STATUS["schedule"], "last_error": "bob is full"}}
    assert tray_state(failed, busy=False, running=True) is TrayState.ATTENTION


def test_warnings_say_what_to_do():
    assert warnings(STATUS, now=NOW) == []
    empty = {**STATUS, "friends": 0, "friends_online": [], "folders": [], "snapshots": 0}
    texts = [a.text for a in warnings(empty, now=NOW)]
    assert texts == ["No friend keeps your backup yet.", "No folder is chosen for backup."]
    old = warnings({**STATUS, "last_backup": "2026-11-20T10:00:00+00:00"}, now=NOW)
    assert [a.text for a in old] == ["No backup for 15 days."]
    assert all(a.todo for a in warnings(empty, now=NOW) + old)


def test_an_unchecked_recovery_phrase_is_a_warning_until_checked():
    (advice,) = warnings({**STATUS, "phrase_confirmed": False}, now=NOW)
    assert "recovery phrase has not been checked" in advice.text
    assert "Check my recovery phrase" in advice.todo
    assert tray_state({**STATUS, "phrase_confirmed": False}, busy=False, running=True) \
        is TrayState.ATTENTION
    assert warnings({**STATUS, "phrase_confirmed": True}, now=NOW) == []
    assert "phrase_confirmed" not in STATUS and warnings(STATUS, now=NOW) == []  # old daemons


def test_when_says_times_as_people_do():
    assert when(None) == "never"
    assert when(NOW - 10, now=NOW) == "just now"
    assert when(NOW - 300, now=NOW) == "5 minutes ago"
    assert when(NOW + 7200, now=NOW) == "in 2 hours"
    assert when(NOW - 86400, now=NOW) == "1 day ago"


def test_status_model_follows_job_events(qtbot, tmp_path):
    model = StatusModel(str(tmp_path), Watch(str(tmp_path)))
    model.watch.state = DaemonState.RUNNING  # as if the watch had found the daemon
    model.status = STATUS
    model.feed({"type": "JobStarted", "job": 7, "name": "backup"})
    assert model.busy and model.tray_state() is TrayState.BUSY
    assert model.progress_text() == "Backing up…"
    model.feed({"type": "JobProgress", "job": 7, "phase": "sending", "total_bytes": 200,
                "done_bytes": 50})  # fmt: skip
    assert model.progress_text() == "Backing up: 25 %"
    model.feed({"type": "JobFinished", "job": 7, "name": "backup", "state": "finished"})
    assert not model.busy and model.tray_state() is TrayState.SAFE
