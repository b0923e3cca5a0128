"""Upkeep's re-placement, measured: the time from a friend vanishing to full safety again.

An owner and four friends are ``p2pbackup daemon`` processes on loopback (k=2, n=4),
the owner's grace period set short in its settings' ``upkeep`` block before it
starts. After a backup of ``size`` bytes, one friend's daemon is killed (SIGKILL, as
a laptop that dies), and the owner's ``watch`` tells when it noticed
(``FriendOffline``), when its ``replace`` job started (the grace period after the
friend was last seen) and when it ended; ``verify`` then says whether every record
survives losing one more friend, and the survivors' pools how many bytes were stored
again. Of the whole time, the grace period is the setting's: the figure the code owns
is the job's (``rebuild_s``), reported with its rate and the owner daemon's CPU.
"""

from __future__ import annotations

import json
import os
import queue
import random
import tempfile
import threading
import time

from p2pbackup.bench.cpu import of as cpu_of
from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.storage.profile import Profile

FRIENDS = ("alice", "bob", "carol", "dave")
VICTIM = "bob"
MiB = 1024 * 1024
FILE = 64 * MiB  # the data set in files of at most this size
WAIT = 1800.0  # seconds a phase may take before the benchmark gives up


def _data(folder: str, size: int) -> None:
    rng = random.Random(14)
    os.makedirs(folder)
    for number, at in enumerate(range(0, size, FILE)):
        with open(os.path.join(folder, f"data-{number:03d}.bin"), "wb") as f:
            left = min(FILE, size - at)
            while left:
                chunk = min(left, 4 * MiB)
                f.write(rng.randbytes(chunk))
                left -= chunk


def _pool_bytes(grid: LocalGrid, name: str) -> int:
    total = 0
    for folder, _, files in os.walk(os.path.join(grid.home(name), "pool")):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def _events(process) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def _read() -> None:
        for line in process.stdout:
            try:
                lines.put((time.monotonic(), json.loads(line)))
            except ValueError:
                continue

    threading.Thread(target=_read, daemon=True).start()
    return lines


def _until(seen: queue.Queue, kind: str, name: str | None = None) -> tuple[float, dict]:
    deadline = time.monotonic() + WAIT
    while True:
        at, message = seen.get(timeout=max(0.1, deadline - time.monotonic()))
        event = message.get("event", {})
        if event.get("type") == kind and (name is None or event.get("name") == name):
            return at, event


def vanish_to_safety(size: int, grace: float = 2.0) -> dict:
    """The figures of one run with ``size`` bytes backed up (see the module's docstring)."""
    with tempfile.TemporaryDirectory(prefix="p2pb-bench-replace-") as root, \
            LocalGrid(os.path.join(root, "nodes")) as grid:  # fmt: skip
        grid.init_all(["owner", *FRIENDS])
        grid.cli("owner", "schedule", "off")
        Profile(grid.home("owner")).update_settings(upkeep={"grace": grace})
        grid.start("owner", *FRIENDS)
        grid.pair("owner", *FRIENDS, offer="8G")
        folder = os.path.join(root, "data")
        _data(folder, size)
        grid.cli("owner", "folders", "add", folder)
        began = time.monotonic()
        grid.cli("owner", "backup")
        backup_s = time.monotonic() - began
        survivors = [f for f in FRIENDS if f != VICTIM]
        before = {f: _pool_bytes(grid, f) for f in survivors}
        watch = grid.command("owner", "watch", "--json")
        seen = _events(watch)
        seen.get(timeout=30)  # watching
        (owner_pid,) = grid.pids("owner")
        cpu = cpu_of([owner_pid])
        killed = time.monotonic()
        grid.stop(VICTIM, kill=True)
        offline, _ = _until(seen, "FriendOffline", VICTIM)
        started, _ = _until(seen, "JobStarted", "replace")
        ended, finished = _until(seen, "JobFinished", "replace")
        cpu = cpu_of([owner_pid]) - cpu
        watch.kill()
        watch.wait()
        checked = grid.cli("owner", "verify")
        stored = sum(_pool_bytes(grid, f) - before[f] for f in survivors)
        rebuild = finished.get("seconds") or ended - started
        return {
            "source_bytes": size,
            "friends": len(FRIENDS),
            "grace_s": grace,
            "backup_s": round(backup_s, 2),
            "offline_after_s": round(offline - killed, 2),
            "replace_started_after_s": round(started - killed, 2),
            "safe_again_after_s": round(ended - killed, 2),
            "rebuild_s": round(rebuild, 2),
            "bytes_stored_again": stored,
            "rebuild_mb_s": round(stored / MiB / rebuild, 1) if rebuild else None,
            "owner_cpu_s": round(cpu, 2),
            "job_state": finished.get("state"),
            "survives_losing_after": checked.get("friends_that_could_disappear"),
            "at_risk_after": checked.get("at_risk"),
        }
