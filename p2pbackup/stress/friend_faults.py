"""Friends that fail while a backup streams to them: one SIGKILLed mid-upload (and
restarted later), one whose disk fills up.

Both are issue 9's first case: a friend failing while a file over 4 MiB streams must
not fail the backup while the remaining friends keep the promised safety (3 of 4
friends still hold k=2 of n=4 with no friend holding more than n - k shares).
"""

from __future__ import annotations

import os
import subprocess
import threading
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


class _LeastFree:
    """The least free space a folder's file system had while the block ran (sampled every
    10 ms: a friend removes what did not fit, so the end says nothing)."""

    def __init__(self, folder: str) -> None:
        self.folder, self.bytes = folder, 1 << 62
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            stat = os.statvfs(self.folder)
            self.bytes = min(self.bytes, stat.f_bavail * stat.f_frsize)

    def __enter__(self) -> _LeastFree:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


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
            with _LeastFree(grid.pool(full)) as least:
                for number in (1, 2, 3):  # each adds a 6 MiB file or more: each must get past
                    if number > 1:
                        edit(source, s.rng, new_large=True)
                    copy = freeze(source, os.path.join(s.root, "expected", str(number)))
                    answer = grid.run(OWNER, "backup")
                    published.backed_up(s, answer, copy,
                                        f"backup {number} with {full}'s disk full")  # fmt: skip
            # About 15 MiB of shares per friend cannot fit in 4 MiB: the friend ran out of
            # room (at ENOSPC, or refusing before it); the least free space says which.
            s.notes["full_friend_least_free_bytes"] = least.bytes
            s.expect(os.path.ismount(grid.pool(full)), f"no small disk under {full}'s pool")
            s.tally.faults["disk_full"] += 1
            published.check_all(grid, s)
            verify_clean(grid, s)
    finally:
        for pool in mounted:
            subprocess.run(["umount", "-l", pool], check=False, capture_output=True)
