"""Upkeep's re-placement, measured: the time from a friend vanishing to full safety again.

``replace_phase`` is the ``replace`` phase of ``python -m p2pbackup.bench upkeep``: on
the owner's backed-up grid in this process (four in-memory friends), one friend's pool
goes away and engine/replace.py makes every record whole on the other three (time,
bytes stored again, CPU, and what ``verify`` says after); then the friend is back and
its extras are dropped. Then ``vanish_to_safety`` measures the same end to end, with
the detection and the daemon's job, on a smaller data set (``END_TO_END``):

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

import trio

from p2pbackup.bench.cpu import of as cpu_of
from p2pbackup.bench.cpu import own
from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.daemon.friends import BEAT_TIMEOUT, HEARTBEAT
from p2pbackup.daemon.replacer import WATCHED
from p2pbackup.daemon.upkeep import UpkeepSettings
from p2pbackup.engine.replace import Replacement
from p2pbackup.engine.verify import Verifier
from p2pbackup.storage.profile import Profile

FRIENDS = ("alice", "bob", "carol", "dave")
VICTIM = "bob"
MiB = 1024 * 1024
FILE = 64 * MiB  # the data set in files of at most this size
WAIT = 1800.0  # seconds a phase may take before the benchmark gives up
END_TO_END = 64 * MiB  # the real-process run's data set


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


async def replace_phase(grid) -> dict:
    """On ``grid`` (bench/upkeep.py's: ``stores``, ``state``, ``events``): one friend's pool
    goes away, its shares are made again on the others; then it is back, and its extras
    go. The grid is left as it was found, for the phases after."""
    victim = grid.stores[VICTIM]
    victim.online = False
    online = {name: store for name, store in grid.stores.items() if store.online}
    before = sum(store._used for store in online.values())
    usage = {name: await store.stat() for name, store in online.items()}
    start, cpu = time.perf_counter(), own()
    work = Replacement(online, usage, grid.state, grid.events.append, trio.CapacityLimiter(2))
    done = await work.run({VICTIM}, grid.stores)
    rebuild_s, cpu = time.perf_counter() - start, own() - cpu
    stored = sum(store._used for store in online.values()) - before
    verifier = Verifier(online, grid.state, grid.events.append, trio.CapacityLimiter(2))
    report = await verifier.verify([r.descriptor for r in grid.state.records.values()], False)
    victim.online = True
    usage = {name: await store.stat() for name, store in grid.stores.items()}
    start = time.perf_counter()
    back = await Replacement(grid.stores, usage, grid.state, grid.events.append,
                             trio.CapacityLimiter(2)).run(set(), grid.stores)  # fmt: skip
    drop_s = time.perf_counter() - start
    grace = UpkeepSettings().grace
    detect = HEARTBEAT + BEAT_TIMEOUT  # at most, for a friend gone without a word
    return {
        "records": len(grid.state.records),
        "records_placed_again": done.records,
        "shares_stored_again": done.shares,
        "bytes_stored_again": stored,
        "rebuild_s": round(rebuild_s, 2),
        "rebuild_mb_s": round(stored / MiB / rebuild_s, 1) if rebuild_s else None,
        "owner_cpu_s": round(cpu, 2),
        "owner_cpu_s_per_gb_stored_again": round(cpu / (stored / 1e9), 2) if stored else None,
        "survives_losing_after": min(h.safe_losses for h in report.records.values()),
        "at_risk_after": len(report.at_risk()),
        "extras_dropped_when_back": back.dropped,
        "drop_s": round(drop_s, 2),
        # A friend is gone after the grace period (default a week) from when it was last
        # seen, and once missed by the daemon itself for WATCHED: the work is the rest.
        "grace_s": grace,
        "safe_again_after_s_at_most": round(max(grace, detect + WATCHED) + rebuild_s, 2),
        "end_to_end": await trio.to_thread.run_sync(vanish_to_safety, END_TO_END),
    }
