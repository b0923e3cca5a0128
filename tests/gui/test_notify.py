"""Which notifications are told, and when: pure functions, no D-Bus, no tray."""

from __future__ import annotations

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
