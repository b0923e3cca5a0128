"""The owner's backup process SIGKILLed at random moments, over several backups of
changing data; then a backup that finishes, and every published snapshot restored.

Each round changes the data once (a new 6 MiB file, so every round streams), then
starts backups and kills them after a random delay, drawn over the length of the last
backup that finished, until the round has made its kills. A killed run may or may not
have published its snapshot; whichever did must restore to the round's data exactly.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time

from p2pbackup.stress.harness import (
    OWNER,
    Published,
    Scenario,
    edit,
    freeze,
    make_source,
    start_grid,
    verify_clean,
)

ROUNDS = 4


def run(s: Scenario, kills: int) -> None:
    source = make_source(s)
    published = Published()
    with start_grid(s) as grid:
        grid.cli(OWNER, "folders", "add", source)
        copy = freeze(source, os.path.join(s.root, "expected", "0"))
        started = time.monotonic()
        published.backed_up(s, grid.run(OWNER, "backup"), copy, "the first backup")
        length = time.monotonic() - started

        per_round = math.ceil(kills / ROUNDS)
        attempts = 0
        for number in range(1, ROUNDS + 1):
            edit(source, s.rng)
            copy = freeze(source, os.path.join(s.root, "expected", str(number)))
            made = 0
            while made < per_round and s.tally.kills["owner"] < kills and attempts < 4 * kills:
                attempts += 1
                process = grid.command(OWNER, "backup", "--json")
                began = time.monotonic()
                delay = s.rng.uniform(0.05, max(1.0, length))
                try:
                    process.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGKILL)
                    made += 1
                    s.tally.kills["owner"] += 1
                    s.tally.faults["owner_sigkill"] += 1
                    s.say(f"  round {number}: backup SIGKILLed after {delay:.2f} s")
                _, err = process.communicate(timeout=60)
                if process.returncode == 0:
                    length = time.monotonic() - began
                    s.say(f"  round {number}: backup finished in {length:.2f} s")
                elif process.returncode != -signal.SIGKILL:
                    s.problems.append(f"a backup after a kill failed: {err.strip()[-300:]}")
            published.adopt(grid, s, copy)
        s.notes["attempts"] = attempts

        edit(source, s.rng)
        copy = freeze(source, os.path.join(s.root, "expected", "final"))
        final = grid.run(OWNER, "backup")
        published.backed_up(s, final, copy, "the backup after the kills")
        s.notes["snapshots_published"] = len(published.expected)
        s.expect(
            s.tally.kills["owner"] >= kills,
            f"only {s.tally.kills['owner']} kills landed in {attempts} backups",
        )
        published.check_all(grid, s)
        verify_clean(grid, s)
