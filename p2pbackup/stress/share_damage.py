"""Shares damaged and deleted in friends' pool folders, then ``verify --repair``.

First, bytes flipped in some share files and others deleted, never more than n - k = 2
shares of one record (more would be a loss no code could undo). ``verify --read-data``
must then say something is at risk, with a non-zero exit (issue 9, case 9); ``verify
--repair`` must rebuild the shares, after which verify is clean and every snapshot
restores. Second, a whole friend's pool deleted: nothing is at risk yet (no friend holds
more than n - k shares of a record), but verify must count that friend's shares as
missing, and --repair put them back.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict

from p2pbackup.stress.harness import (
    FRIENDS,
    OWNER,
    Published,
    Scenario,
    StressGrid,
    edit,
    freeze,
    make_source,
    record_of,
    share_files,
    start_grid,
    verify_clean,
)

DAMAGED_RECORDS = 0.5  # the share of records that lose one or two shares


def run(s: Scenario) -> None:
    source = make_source(s)
    published = Published()
    with start_grid(s) as grid:
        grid.cli(OWNER, "folders", "add", source)
        for number in (1, 2):
            if number > 1:
                edit(source, s.rng)
            copy = freeze(source, os.path.join(s.root, "expected", str(number)))
            published.backed_up(s, grid.run(OWNER, "backup"), copy, f"backup {number}")

        _damage_shares(grid, s)
        _expect_alarm_then_repair(grid, s, "damaged shares")
        published.check_all(grid, s)

        gone = s.rng.choice(FRIENDS)
        s.notes["pool_deleted"] = gone
        grid.stop(gone)
        shutil.rmtree(grid.pool(gone))
        s.tally.faults["pool_deleted"] += 1
        grid.start(gone)
        # Placement leaves at most n - k shares of a record on one friend, so nothing is at
        # risk yet; but verify must count what that friend lost, and repair it.
        report = _expect_alarm_then_repair(grid, s, f"{gone}'s pool deleted", at_risk=False)
        counts = report.get("friends", {}).get(gone) or {}
        s.expect(bool(counts.get("missing")) and not counts.get("good"),
                 f"verify does not count {gone}'s shares as missing after its whole pool was "
                 f"deleted: {counts}")  # fmt: skip
        published.check_all(grid, s)


def _damage_shares(grid: StressGrid, s: Scenario) -> None:
    by_record: dict[str, list[str]] = defaultdict(list)
    for friend in FRIENDS:
        for share in share_files(grid.pool(friend)):
            by_record[record_of(share)].append(share)
    s.expect(len(by_record) > 0, "no share files found in any friend's pool")
    for record in sorted(by_record):
        if s.rng.random() > DAMAGED_RECORDS:
            continue
        shares = by_record[record]
        for share in s.rng.sample(shares, min(len(shares), s.rng.choice((1, 2)))):
            if s.rng.random() < 0.5:
                os.unlink(share)
                s.tally.faults["share_deleted"] += 1
            else:
                _flip_bytes(share, s)
                s.tally.faults["share_corrupted"] += 1


def _flip_bytes(path: str, s: Scenario) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        for _ in range(s.rng.randint(1, 3)):
            at = s.rng.randrange(size)
            f.seek(at)
            byte = f.read(1)[0]
            f.seek(at)
            f.write(bytes([byte ^ (1 << s.rng.randrange(8))]))


def _expect_alarm_then_repair(
    grid: StressGrid, s: Scenario, what: str, at_risk: bool = True
) -> dict:
    """verify sees the damage (nothing lost; ``at_risk``: records at risk and a non-zero
    exit), --repair mends it."""
    alarm = grid.run(OWNER, "verify", "--read-data")
    data = alarm.data if isinstance(alarm.data, dict) else {}
    s.expect(data.get("lost") == 0, f"verify after {what}: {data.get('lost')} records lost "
                                     f"{alarm.error}".strip())  # fmt: skip
    if at_risk:
        s.expect(bool(data.get("at_risk")), f"verify after {what} finds nothing at risk")
        s.expect(alarm.code != 0, f"verify after {what} says {data.get('at_risk')} records "
                                  "are at risk, yet exits 0")  # fmt: skip
    repair = grid.run(OWNER, "verify", "--read-data", "--repair")
    repaired = repair.data.get("repaired") if isinstance(repair.data, dict) else None
    s.expect(bool(repaired), f"verify --repair after {what} repaired nothing: "
                             f"exit {repair.code} {repair.error}".strip())  # fmt: skip
    verify_clean(grid, s, f"verify --read-data after repairing {what}")
    return data
