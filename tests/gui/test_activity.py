"""The Activity tab's model from the daemon's dicts, without widgets, and the tab itself."""

from __future__ import annotations

import os

from p2pbackup.gui.models.activity import (
    ActivityModel,
    Column,
    Severity,
    entry_of_event,
    entry_of_job,
    failure_words,
)
from p2pbackup.gui.windows.activity import ActivityTab, log_path

JOBS = [  # a `jobs` answer, oldest first
    {"id": 1, "name": "status", "source": "client", "state": "finished",
     "queued": "2026-12-05T10:00:00+00:00", "started": "2026-12-05T10:00:00+00:00",
     "ended": "2026-12-05T10:00:01+00:00", "progress": None},
    {"id": 2, "name": "backup", "source": "schedule", "state": "failed",
     "queued": "2026-12-05T11:00:00+00:00", "started": "2026-12-05T11:00:00+00:00",
     "ended": "2026-12-05T11:00:09+00:00", "progress": None,
     "error": {"message": "internal error, see the log (/x/p2pbackup.log)",
               "kind": "InternalError", "exit_code": 1}},
    {"id": 3, "name": "restore", "source": "client", "state": "finished",
     "queued": "2026-12-05T12:00:00+00:00", "started": "2026-12-05T12:00:00+00:00",
     "ended": "2026-12-05T12:00:30+00:00", "progress": None},
    {"id": 4, "name": "backup", "source": "client", "state": "running",
     "queued": "2026-12-05T13:00:00+00:00", "started": "2026-12-05T13:00:00+00:00",
     "ended": None, "progress": {"phase": "sending", "total_bytes": 4 << 20,
                                 "done_bytes": 1 << 20}},
]  # fmt: skip


def test_jobs_become_rows_newest_first_and_only_those_a_person_cares_about():
    model = ActivityModel()
    model.set_jobs(JOBS)
    rows = [(model.index(r, Column.WHAT).data(), model.index(r, Column.TEXT).data())
            for r in range(model.rowCount())]  # fmt: skip
    assert rows == [
        ("Backup", "Running… 1.0 MiB of 4.0 MiB"),
        ("Restore", "Finished."),
        ("Backup", "Failed: p2pbackup ran into a problem of its own. Open the log for the "
                   "details, and please report it."),
    ]  # status is not news; a bug's message (a path, "internal error") is not shown as is
    assert [e.severity for e in model.entries()] == [Severity.RUNNING, Severity.DONE,
                                                     Severity.FAILED]


def test_failures_are_worded_by_their_kind_never_by_their_words():
    friend = {"message": "bob's node cannot be reached.", "kind": "PeerError", "exit_code": 4}
    assert failure_words(friend) == "bob's node cannot be reached."
    # A message that looks like a bug's, under another kind, is shown as it is.
    odd = {"message": "internal error, see the log", "kind": "StorageError", "exit_code": 5}
    assert failure_words(odd) == "internal error, see the log"
    assert failure_words(None).startswith("It failed without saying why")
    cancelled = entry_of_job({"id": 9, "name": "verify", "state": "cancelled"})
    assert (cancelled.what, cancelled.text) == ("Check", "Stopped before it finished.")


def test_live_events_start_progress_and_finish_a_row():
    model = ActivityModel()
    model.feed({"type": "JobQueued", "job": 7, "name": "backup", "source": "client"})
    assert model.rowCount() == 0
    model.feed({"type": "JobStarted", "job": 7, "name": "backup"}, 7)
    assert model.entries()[0].text == "Running…"
    model.feed({"type": "JobProgress", "job": 7, "phase": "sending", "total_bytes": 2 << 30,
                "done_bytes": 1 << 30}, 7)  # fmt: skip
    assert model.entries()[0].text == "Running… 1.0 GiB of 2.0 GiB"
    model.feed({"type": "JobFinished", "job": 7, "name": "backup", "state": "failed",
                "error": "No friend can be reached.", "seconds": 3.0}, 7)  # fmt: skip
    assert model.rowCount() == 1
    assert model.entries()[0].text == "Failed: No friend can be reached."
    assert model.entries()[0].severity is Severity.FAILED
    model.feed({"type": "JobStarted", "job": 8, "name": "ls"}, 8)  # browsing: not news
    assert model.rowCount() == 1


def test_the_upkeep_the_daemon_runs_by_itself_has_rows_in_plain_words():
    model = ActivityModel()
    model.set_jobs([{"id": 5, "name": "retention", "source": "upkeep", "state": "finished",
                     "ended": "2026-12-05T14:00:00+00:00"}])  # fmt: skip
    assert [(e.what, e.text) for e in model.entries()] == [("Tidy up old backups", "Finished.")]
    model.feed({"type": "JobStarted", "job": 6, "name": "audit"}, 6)
    assert (model.entries()[0].what, model.entries()[0].text) == ("Check a friend", "Running…")
    model.feed({"type": "JobFinished", "job": 7, "name": "replace", "state": "failed",
                "error": "No friend has room.", "seconds": 1.0}, 7)  # fmt: skip
    assert (model.entries()[0].what, model.entries()[0].text) == (
        "Store again", "Failed: No friend has room.")
    assert model.rowCount() == 3


def test_upkeep_news_and_warnings_in_plain_words():
    said = {
        kind: entry_of_event({"type": kind, **fields}, now=0.0)
        for kind, fields in {
            "AuditDone": {"name": "bob", "owner_id": "ab", "proved": 12, "missing": 0,
                          "damaged": 0},
            "RepairDone": {"records": 3, "shares": 9, "why": "bob was away 8 days"},
            "SafetyChanged": {"survives_losing": 0, "promised": 1, "why": "friend unseen"},
            "FriendUnseen": {"name": "carol", "owner_id": "cd", "days": 8.4,
                             "last_seen": None},
            "QuotaNearlyFull": {"name": "bob", "owner_id": "ab", "whose": "theirs",
                                "used": 19 << 30, "quota": 20 << 30},
            "UpkeepNeeds": {"problem": "Only 2 friends can keep your backup.",
                            "advice": "Invite another friend."},
        }.items()
    }  # fmt: skip
    assert said["AuditDone"].text == "bob still holds your backup (12 pieces checked)."
    assert said["RepairDone"].text == "Stored 9 pieces of your backup again (bob was away 8 days)."
    assert said["SafetyChanged"].text == ("Your backup now survives losing 0 friends. You "
                                          "asked for 1.")  # fmt: skip
    assert said["SafetyChanged"].severity is Severity.WARNING
    assert said["FriendUnseen"].text.startswith("carol has not been online for 8 days.")
    assert said["QuotaNearlyFull"].text == ("The space bob gives you is nearly full: 19.0 GiB "
                                            "of 20.0 GiB.")  # fmt: skip
    assert said["UpkeepNeeds"].text == "Only 2 friends can keep your backup. Invite another friend."
    lost = entry_of_event({"type": "AuditDone", "name": "bob", "proved": 10, "missing": 2,
                           "damaged": 1})  # fmt: skip
    assert lost.severity is Severity.WARNING and "3 pieces" in lost.text
    for quiet in ({"type": "FriendOnline", "name": "bob"}, {"type": "FileDone", "path": "a"},
                  {"type": "SomethingNew"}):  # fmt: skip
        assert entry_of_event(quiet) is None


def test_a_daemon_that_stops_leaves_its_jobs_as_history():
    model = ActivityModel()
    model.set_jobs(JOBS)
    model.daemon_gone()
    entries = model.entries()
    assert (entries[0].what, entries[0].text) == ("Backup",
                                                  "Stopped when the backup service stopped.")
    assert entries[0].severity is Severity.FAILED
    model.set_jobs([{**JOBS[2], "id": 1}])  # a new daemon counts from 1 again
    assert model.rowCount() == 4  # the old daemon's rows stay


def test_the_tab_lists_the_rows_and_says_where_the_log_is_when_there_is_none(qtbot, tmp_path):
    model = ActivityModel()
    tab = ActivityTab(str(tmp_path), model)
    qtbot.addWidget(tab)
    assert not tab.empty.isHidden()
    model.set_jobs(JOBS)
    assert tab.empty.isHidden() and tab.table.model().rowCount() == 3
    assert log_path(str(tmp_path)) == os.path.join(str(tmp_path), "logs", "p2pbackup.log")
    assert not tab.open_log()  # no log yet: said, with where it will be
    assert log_path(str(tmp_path)) in tab.log_missing.text()
    assert "&" in tab.log_button.text()
