"""``p2pbackup upkeep`` against real daemon processes: it shows upkeep's settings and
state, changes them (intervals in days or seconds), refuses a bad value with nothing
changed; ``status`` carries the upkeep block; and the daemon applies retention by
itself after a scheduled backup, which ``watch`` sees as a job of its own."""

from __future__ import annotations

import json
import signal

from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.storage.profile import Profile
from tests.cli.test_jobs_cli import _lines
from tests.daemon.test_cycle import make_tree


def _refused(grid: LocalGrid, *args: str) -> str:
    process = grid.command("laptop", "upkeep", *args)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    return err.strip()


def test_upkeep_shows_and_changes_settings_and_refuses_bad_values_whole(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.init("laptop")
        grid.start("laptop")
        shown = grid.cli("laptop", "upkeep")
        assert shown["daemon"] is True and shown["changed"] == []
        assert shown["settings"]["keep_hourly"] == 24 and shown["settings"]["grace"] == 7 * 86400
        assert shown["retention"]["policy"] == {"hourly": 24, "daily": 7, "weekly": 4,
                                                "monthly": 12}  # fmt: skip
        done = grid.cli("laptop", "upkeep", "--audit-every", "1d", "--grace", "30s",
                        "--keep-daily", "3", "--quota-warn", "85%")  # fmt: skip
        assert done["changed"] == ["audit_every", "grace", "keep_daily", "quota_warn"]
        wanted = {"audit_every": 86400.0, "grace": 30.0, "keep_daily": 3, "quota_warn": 0.85}
        assert Profile(grid.home("laptop")).settings()["upkeep"] == wanted
        assert grid.cli("laptop", "upkeep", "--grace", "45")["settings"]["grace"] == 45.0

        before = Profile(grid.home("laptop")).settings()
        assert _refused(grid, "--grace", "0") == (
            "p2pbackup: --grace must be between 1 second and 366 days.")  # fmt: skip
        assert "not an interval" in _refused(grid, "--audit-every", "soon")
        assert _refused(grid, "--keep-daily", "-1") == (
            "p2pbackup: --keep-daily: give a whole number.")  # fmt: skip
        assert "between 0.01 and 1" in _refused(grid, "--quota-warn", "1.5")
        # A good value beside a bad one: neither is changed.
        assert "--grace" in _refused(grid, "--keep-weekly", "9", "--grace", "400d")
        assert Profile(grid.home("laptop")).settings() == before

        status = grid.cli("laptop", "status")
        assert status["upkeep"]["retention"]["policy"]["daily"] == 3
        text = grid.command("laptop", "upkeep").communicate(timeout=60)[0]
        assert "re-placement     after a friend is unseen for 45 s" in text
        assert "retention        keep 24 hourly, 3 daily, 4 weekly, 12 monthly" in text


def _quota_events(seen, until: str) -> list[dict]:
    """The QuotaNearlyFull events ``watch`` told before the job ``until`` finished."""
    told = []
    while True:
        event = json.loads(seen.get(timeout=60)).get("event", {})
        if event.get("type") == "QuotaNearlyFull":
            told.append(event)
        if event.get("type") == "JobFinished" and event["name"] == until:
            return told


def test_by_itself_retention_after_a_scheduled_backup_and_quota_warnings_once(paired, tmp_path):
    grid = paired
    docs = make_tree(tmp_path)
    grid.cli("laptop", "folders", "add", docs)
    grid.cli("laptop", "upkeep", "--keep-hourly", "1", "--keep-daily", "0", "--keep-weekly",
             "0", "--keep-monthly", "0")  # fmt: skip
    first = grid.cli("laptop", "backup")["snapshot"]
    with open(f"{docs}/changed.txt", "w") as f:
        f.write("a second snapshot\n")
    watch = grid.command("laptop", "watch", "--json")
    seen = _lines(watch)
    assert "watching" in json.loads(seen.get(timeout=10))
    grid.cli("laptop", "schedule", "1s")  # due at once: the last backup is older than that
    finished = {}
    while "retention" not in finished:
        event = json.loads(seen.get(timeout=60)).get("event", {})
        if event.get("type") == "JobFinished":
            finished[event["name"]] = event
    grid.cli("laptop", "schedule", "off")
    watch.send_signal(signal.SIGINT)
    watch.wait(timeout=15)
    assert finished["backup"]["state"] == finished["retention"]["state"] == "finished"
    left = [s["id"] for s in grid.cli("laptop", "snapshots")]
    assert len(left) == 1 and first not in left  # one hour's newest: the scheduled one
    state = grid.cli("laptop", "status")["upkeep"]["retention"]
    assert state["forgotten"] == 1 and state["removed_shares"] > 0 and not state["last_error"]
    text = grid.command("laptop", "status").communicate(timeout=60)[0]
    assert "last retention" in text and "forgot 1, kept 1" in text
    jobs = grid.cli("laptop", "jobs")
    assert [(j["name"], j["source"]) for j in jobs if j["name"] == "retention"] == [
        ("retention", "upkeep")
    ]

    # Alice gives the laptop a little more than it keeps there: the line is crossed when
    # quota_warn falls under what is used, and told once, not again while it stays over.
    kept = {f["name"]: f for f in grid.cli("alice", "friends")}["laptop"]["i_store_for_them"]
    grid.cli("alice", "quota", "laptop", str(kept * 5 // 4))  # 80 % used
    watch = grid.command("alice", "watch", "--json")
    seen = _lines(watch)
    assert "watching" in json.loads(seen.get(timeout=10))
    told = []
    for line in ("95%", "50%", "60%", "95%", "70%"):  # under, over, still over, under, over
        grid.cli("alice", "upkeep", "--quota-warn", line)
        told.append([(e["name"], e["whose"]) for e in _quota_events(seen, "upkeep")])
    watch.send_signal(signal.SIGINT)
    watch.wait(timeout=15)
    assert told == [[], [("laptop", "mine")], [], [], [("laptop", "mine")]]
    nearly = grid.cli("alice", "status")["upkeep"]["retention"]["quotas_nearly_full"]
    assert [(q["name"], q["whose"], q["used"]) for q in nearly] == [("laptop", "mine", kept)]
