"""Every friend rolled back: each friend's pool is put back to a copy taken after
snapshot 1 while the owner has made snapshots 2 and 3 since.

What issue 9 (case 3) promises then: ``status`` and ``verify`` name the rollback; the
next backup uploads again what the friends no longer hold (local state is a cache a
friend's answer overrules); ``snapshots`` lists what it can and marks what is damaged;
every snapshot listed intact restores byte-exact. Snapshots 2 and 3 only add files, so
every source file they need is still on disk to upload again.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from p2pbackup.stress.harness import (
    FRIENDS,
    OWNER,
    Published,
    Scenario,
    edit,
    freeze,
    make_source,
    start_grid,
    verify_clean,
)


def run(s: Scenario) -> None:
    source = make_source(s)
    published = Published()
    with start_grid(s) as grid:
        grid.cli(OWNER, "folders", "add", source)
        copy = freeze(source, os.path.join(s.root, "expected", "1"))
        published.backed_up(s, grid.run(OWNER, "backup"), copy, "backup 1")

        saved = os.path.join(s.root, "saved-pools")
        for friend in FRIENDS:
            grid.stop(friend)
            shutil.copytree(grid.pool(friend), os.path.join(saved, friend), symlinks=True)
        grid.start(*FRIENDS)

        for number in (2, 3):
            edit(source, s.rng, only_add=True)
            copy = freeze(source, os.path.join(s.root, "expected", str(number)))
            published.backed_up(s, grid.run(OWNER, "backup"), copy, f"backup {number}")
        between = frozenset(list(published.expected)[1:])

        for friend in FRIENDS:
            grid.stop(friend)
            shutil.rmtree(grid.pool(friend))
            shutil.copytree(os.path.join(saved, friend), grid.pool(friend), symlinks=True)
            s.tally.faults["pool_rollback"] += 1
        grid.start(*FRIENDS)

        status = grid.run(OWNER, "status")
        s.answered(status, "status after the rollback")
        s.expect(_names_rollback(status.data), "status does not name the rollback")
        check = grid.run(OWNER, "verify")
        s.expect(_names_rollback(check.data), "verify does not name the rollback")
        s.expect(check.code != 0, "verify exits 0 though every friend lost snapshots 2 and 3")

        copy = freeze(source, os.path.join(s.root, "expected", "4"))
        again = grid.run(OWNER, "backup")
        published.backed_up(s, again, copy, "the backup after the rollback")
        stored = again.data.get("records_stored", 0) if isinstance(again.data, dict) else 0
        s.expect(stored > 0, "the backup after the rollback uploaded nothing again")
        repair = grid.run(OWNER, "verify", "--repair")
        s.notes["verify_repair"] = repair.data if repair.data is not None else repair.error

        # Snapshots 2 and 3 may be marked damaged if what they need was on no friend any
        # more and cannot be rebuilt; listed intact, or not marked, they must restore.
        published.check_all(grid, s, damaged_ok=between)
        verify_clean(grid, s)


def _names_rollback(data: Any) -> bool:
    """Whether a JSON answer has a non-empty entry whose key speaks of a rollback."""
    if isinstance(data, dict):
        return any(
            ("roll" in str(key).lower() and bool(value)) or _names_rollback(value)
            for key, value in data.items()
        )
    if isinstance(data, list):
        return any(_names_rollback(item) for item in data)
    return False
