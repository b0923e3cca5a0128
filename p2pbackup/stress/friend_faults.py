"""Friends that fail while a backup streams to them: one SIGKILLed mid-upload (and
restarted later), one whose disk fills up.

Both are issue 9's first case: a friend failing while a file over 4 MiB streams must
not fail the backup while the remaining friends keep the promised safety (3 of 4
friends still hold k=2 of n=4 with no friend holding more than n - k shares).
"""

from __future__ import annotations

import os
import subprocess
import time

from p2pbackup.stress.harness import (
    FRIENDS,
    OWNER,
    MiB,
    Published,
    Scenario,
    StressGrid,
    edit,
    freeze,
    make_source,
    pool_bytes,
    start_grid,
    verify_clean,
)

FULL_DISK = "4m"  # the tmpfs under the full friend's pool: less than its share of a backup


def run_friend_kills(s: Scenario) -> None:
    source = make_source(s)
    published = Published()
    with start_grid(s) as grid:
        grid.cli(OWNER, "folders", "add", source)
        victims = s.rng.sample(FRIENDS, 2)
        for number, victim in enumerate(victims, 1):
            if number > 1:
                edit(source, s.rng, new_large=True)
            copy = freeze(source, os.path.join(s.root, "expected", str(number)))
            answer, when = _backup_killing(grid, s, victim)
            s.notes.setdefault("killed_after_bytes", []).append(when)
            published.backed_up(s, answer, copy, f"a backup with {victim} SIGKILLed mid-upload")
            grid.start(victim)  # back later, with whatever it had written
        edit(source, s.rng)
        copy = freeze(source, os.path.join(s.root, "expected", "final"))
        final = grid.run(OWNER, "backup")
        published.backed_up(s, final, copy, "the backup once every friend was back")
        published.check_all(grid, s)
        verify_clean(grid, s)


def _backup_killing(grid: StressGrid, s: Scenario, victim: str):
    """A backup during which ``victim`` is SIGKILLed once its pool grew by a random
    0.5-3 MiB (so some parts of a streamed share reached it, and not all)."""
    pool = grid.pool(victim)
    before = pool_bytes(pool)
    at = before + int(s.rng.uniform(0.5, 3.0) * MiB)
    process = grid.command(OWNER, "backup", "--json")
    grown = before
    while process.poll() is None and grown < at:
        time.sleep(0.005)
        grown = pool_bytes(pool)
    if process.poll() is None:
        grid.stop(victim, kill=True)
        s.say(f"  {victim} SIGKILLed once its pool grew by {grown - before:,} bytes")
        s.tally.kills["friend"] += 1
        s.tally.faults["friend_sigkill"] += 1
    else:
        s.problems.append(f"the backup ended before {victim} could be killed mid-upload")
        grid.stop(victim, kill=True)
    answer = grid.answer_of(process)
    return answer, grown - before


def run_disk_full(s: Scenario) -> None:
    if os.geteuid() != 0:
        s.notes["skipped"] = ("a full disk needs a small tmpfs, which only root can mount, "
                              "and the product has no ENOSPC hook")  # fmt: skip
        return
    source = make_source(s)
    published = Published()
    full = s.rng.choice(FRIENDS)
    mounted: list[str] = []

    def _small_disk(grid: StressGrid) -> None:
        pool = grid.pool(full)
        os.makedirs(pool, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FULL_DISK}", "tmpfs", pool],
                       check=True, capture_output=True)  # fmt: skip
        mounted.append(pool)

    try:
        with start_grid(s, before_start=_small_disk) as grid:
            grid.cli(OWNER, "folders", "add", source)
            s.notes["full_friend"] = full
            for number in (1, 2, 3):  # each adds a 6 MiB file or more: each must get past
                if number > 1:
                    edit(source, s.rng, new_large=True)
                copy = freeze(source, os.path.join(s.root, "expected", str(number)))
                answer = grid.run(OWNER, "backup")
                published.backed_up(s, answer, copy, f"backup {number} with {full}'s disk full")
            # Three backups put about 15 MiB of shares on each friend: the 4 MiB disk filled
            # during the first. What it holds now is what fitted.
            free = os.statvfs(grid.pool(full))
            s.notes["full_friend_free_bytes"] = free.f_bavail * free.f_frsize
            s.tally.faults["disk_full"] += 1
            published.check_all(grid, s)
            verify_clean(grid, s)
    finally:
        for pool in mounted:
            subprocess.run(["umount", "-l", pool], check=False, capture_output=True)
