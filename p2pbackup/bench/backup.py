"""``python -m p2pbackup.bench backup``: the product's speed, end to end, on loopback.

Four friends are ``p2pbackup daemon`` processes; the owner's node runs in
this process (so its peak RSS is this process's). k=2, n=4. Every figure
comes from one run on the same data; where ``restic`` is installed, it backs
up and restores the same data to a local repository in the same run (all but
the photos, a phase kept for our own peak memory).

The random, compressible and small-file phases run ``REPEATS`` times, each on
fresh content (a new seed, so nothing is deduplicated), and report the median.
Each reports CPU seconds per GB of source as well as wall time: this process
(the owner), the four friend daemons together, and restic, because on two
cores the owner, its friends and the baseline share the same CPU. Beside
them, ``floor_cpu_s_per_gb`` is what the compiled stages alone cost per GB
(bench/floor.py): the part of our CPU no orchestration can save.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import trio

from p2pbackup import runtime
from p2pbackup.bench.cpu import Meter, per_gb
from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.daemon import jobs
from p2pbackup.daemon.node import running_node
from p2pbackup.daemon.session import session
from p2pbackup.storage.profile import Profile

FRIENDS = ("alice", "bob", "carol", "dave")
MiB = 1024 * 1024
WRITE = 4 * MiB
PHOTOS, PHOTO = 16, 15 * MiB  # a folder of camera pictures: files just under any "large" line
REPEATS = 3


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _random_file(path: str, size: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for _ in range(0, size, WRITE):
            f.write(rng.randbytes(WRITE))


def _text_file(path: str, size: int, seed: int) -> None:
    """Text-like data: words from a small vocabulary (compresses about 3:1 with zstd)."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
             for _ in range(5000)]  # fmt: skip
    with open(path, "wb") as f:
        written = 0
        while written < size:
            lines = [b" ".join(rng.choices(words, k=12)) + b"\n" for _ in range(8192)]
            block = b"".join(lines)[: size - written]
            f.write(block)
            written += len(block)


def _small_files(root: str, count: int, seed: int) -> int:
    rng = random.Random(seed)
    total = 0
    for i in range(count):
        folder = os.path.join(root, f"d{i // 500:03d}")
        os.makedirs(folder, exist_ok=True)
        data = rng.randbytes(rng.randint(0, 4096))
        with open(os.path.join(folder, f"f{i:06d}.txt"), "wb") as f:
            f.write(data)
        total += len(data)
    return total


def _edit_set(root: str, version: int) -> None:
    """One day's edits on a set of documents: a few files change a little."""
    rng = random.Random(version)
    names = sorted(os.listdir(root))
    for name in rng.sample(names, 3):
        path = os.path.join(root, name)
        with open(path, "r+b") as f:
            data = f.read()
            at = rng.randrange(len(data))
            f.seek(0)
            f.write(data[:at] + rng.randbytes(200) + data[at:])


def _size(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(folder) for n in ns)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Owner:
    def __init__(self, profile: Profile, node) -> None:
        self.profile, self.node = profile, node

    async def job(self, name: str, **params):
        result = await self._job(name, params)
        runtime.release_memory()  # as the daemon does after every job
        return result

    async def _job(self, name: str, params: dict):
        async with session(self.node) as s:
            return await jobs.run(s, name, params)

    async def timed(self, name: str, **params) -> tuple[float, dict]:
        started = time.perf_counter()
        result = await self.job(name, **params)
        return time.perf_counter() - started, result

    async def backup(self, folder: str) -> tuple[float, dict]:
        self.profile.update_settings(folders=[folder])
        return await self.timed("backup")

    async def stored(self) -> int:
        rows = await self.job_friends()
        return sum(r["they_store_for_me"] or 0 for r in rows)

    async def job_friends(self):
        from p2pbackup.daemon.pairing import list_friends

        return await list_friends(self.node, lambda event: None)


async def _measure(
    profile: Profile, root: str, size: int, small: int, unchanged: int, friends: tuple[int, ...]
) -> dict:
    out: dict = {"cpu_s_per_gb": {}}
    async with running_node(profile) as node:
        owner = _Owner(profile, node)
        for kind, make in (("random", _random_file), ("compressible", _text_file)):
            runs: dict[str, list[float]] = {}
            for run in range(REPEATS):
                folder = os.path.join(root, f"{kind}{run}")
                os.makedirs(folder)
                make(os.path.join(folder, f"{kind}.bin"), size, 1 + run)
                meter = Meter(friends).start()
                seconds, _ = await owner.backup(folder)
                meter.stop()
                runs.setdefault("backup", []).append(size / seconds / 1e6)
                runs.setdefault("owner", []).append(per_gb(meter.own_s, size))
                runs.setdefault("friends", []).append(per_gb(meter.others_s, size))
                meter = Meter(friends).start()
                back, _ = await owner.timed("restore", to=os.path.join(root, "out"))
                meter.stop()
                runs.setdefault("restore", []).append(size / back / 1e6)
                runs.setdefault("restore_owner", []).append(per_gb(meter.own_s, size))
                runs.setdefault("restore_friends", []).append(per_gb(meter.others_s, size))
                shutil.rmtree(os.path.join(root, "out"))
                shutil.rmtree(folder)
            out[f"backup_{kind}_mb_s"] = _median(runs["backup"])
            out[f"restore_{kind}_mb_s"] = _median(runs["restore"])
            out["cpu_s_per_gb"][f"backup_{kind}"] = {
                "owner": _median(runs["owner"]), "friends": _median(runs["friends"]),
            }  # fmt: skip
            out["cpu_s_per_gb"][f"restore_{kind}"] = {
                "owner": _median(runs["restore_owner"]),
                "friends": _median(runs["restore_friends"]),
            }
            out[f"rss_after_{kind}_mb"] = round(_peak_rss_mb(), 1)

        folder = os.path.join(root, "photos")
        os.makedirs(folder)
        for i in range(PHOTOS):
            _random_file(os.path.join(folder, f"IMG_{i:04d}.jpg"), PHOTO, 100 + i)
        seconds, _ = await owner.backup(folder)
        back, _ = await owner.timed("restore", to=os.path.join(root, "out"))
        shutil.rmtree(os.path.join(root, "out"))
        shutil.rmtree(folder)
        out["backup_photos_mb_s"] = round(PHOTOS * PHOTO / seconds / 1e6, 1)
        out["restore_photos_mb_s"] = round(PHOTOS * PHOTO / back / 1e6, 1)
        out["rss_after_photos_mb"] = round(_peak_rss_mb(), 1)

        out["small_files"] = small
        times: dict[str, list[float]] = {"backup": [], "restore": []}
        for run in range(REPEATS):
            folder = os.path.join(root, f"small{run}")  # a new folder: a first backup each time
            out["small_bytes"] = _small_files(folder, small, 2 + run)
            seconds, _ = await owner.backup(folder)
            back, _ = await owner.timed("restore", to=os.path.join(root, "out"))
            shutil.rmtree(os.path.join(root, "out"))
            shutil.rmtree(folder)
            times["backup"].append(seconds)
            times["restore"].append(back)
        out["small_backup_s"] = _median(times["backup"])
        out["small_restore_s"] = _median(times["restore"])
        out["rss_after_small_mb"] = round(_peak_rss_mb(), 1)

        folder = os.path.join(root, "many")
        _small_files(folder, unchanged, 3)
        seconds, _ = await owner.backup(folder)
        again, result = await owner.backup(folder)
        out["many_files"] = unchanged
        out["many_first_backup_s"] = round(seconds, 2)
        out["many_unchanged_backup_s"] = round(again, 2)
        assert result["changed"] == 0, result
        out["rss_after_many_mb"] = round(_peak_rss_mb(), 1)

        folder = os.path.join(root, "documents")
        os.makedirs(folder)
        for i in range(16):
            (_text_file if i % 2 else _random_file)(os.path.join(folder, f"doc{i}"), 2 * MiB, i)
        before = await owner.stored()
        for version in range(10):
            if version:
                _edit_set(folder, version)
            await owner.backup(folder)
        source = _size(folder)
        out["versions_stored_over_source"] = round((await owner.stored() - before) / source, 3)
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return out


def _restic(root: str, size: int, small: int) -> dict | None:
    if shutil.which("restic") is None:
        return None
    env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": f"{root}/restic"}
    cpu: list[float] = []

    def _run(*args: str) -> float:
        meter = Meter().start()
        started = time.perf_counter()
        subprocess.run(["restic", "--quiet", *args], env=env, check=True, capture_output=True)
        seconds = time.perf_counter() - started
        cpu.append(meter.stop().children_s)
        return seconds

    def _restore(folder: str) -> float:
        return _run("restore", "latest", "--path", folder, "--target", f"{root}/r-out")

    _run("init")
    out: dict = {"cpu_s_per_gb": {}}
    for kind, make in (("random", _random_file), ("compressible", _text_file)):
        runs: dict[str, list[float]] = {}
        for run in range(REPEATS):
            folder = os.path.join(root, f"r-{kind}{run}")
            os.makedirs(folder)
            make(os.path.join(folder, f"{kind}.bin"), size, 1 + run)
            runs.setdefault("backup", []).append(size / _run("backup", folder) / 1e6)
            runs.setdefault("backup_cpu", []).append(per_gb(cpu[-1], size))
            runs.setdefault("restore", []).append(size / _restore(folder) / 1e6)
            runs.setdefault("restore_cpu", []).append(per_gb(cpu[-1], size))
            shutil.rmtree(folder)
            shutil.rmtree(f"{root}/r-out")
        out[f"backup_{kind}_mb_s"] = _median(runs["backup"])
        out[f"restore_{kind}_mb_s"] = _median(runs["restore"])
        out["cpu_s_per_gb"][f"backup_{kind}"] = _median(runs["backup_cpu"])
        out["cpu_s_per_gb"][f"restore_{kind}"] = _median(runs["restore_cpu"])
    times: dict[str, list[float]] = {"backup": [], "restore": []}
    for run in range(REPEATS):
        folder = os.path.join(root, f"r-small{run}")
        _small_files(folder, small, 2 + run)
        times["backup"].append(_run("backup", folder))
        times["restore"].append(_restore(folder))
        shutil.rmtree(folder)
        shutil.rmtree(f"{root}/r-out")
    out["small_backup_s"] = _median(times["backup"])
    out["small_restore_s"] = _median(times["restore"])
    return out


def _ratios(ours: dict, theirs: dict) -> dict:
    """Every figure as ours against restic's: >1 means we are faster, or (CPU) that we
    spend that many times restic's CPU per GB."""
    ratios = {
        key: round(ours[key] / theirs[key], 2) if key.endswith("mb_s")
        else round(theirs[key] / ours[key], 2)
        for key in theirs if key != "cpu_s_per_gb"
    }  # fmt: skip
    for phase, restic_cpu in theirs["cpu_s_per_gb"].items():
        mine = ours["cpu_s_per_gb"][phase]
        ratios[f"cpu_{phase}_owner_over_restic"] = round(mine["owner"] / restic_cpu, 2)
        ratios[f"cpu_{phase}_all_over_restic"] = round(
            (mine["owner"] + mine["friends"]) / restic_cpu, 2
        )
    return ratios


def run(size: int, small: int = 10_000, unchanged: int = 100_000) -> dict:
    os.environ["P2PBACKUP_MDNS"] = "0"  # everything stays on 127.0.0.1
    with tempfile.TemporaryDirectory(prefix="p2pbackup-bench-") as root:
        with LocalGrid(os.path.join(root, "nodes")) as grid:
            grid.init_all(["owner", *FRIENDS])
            grid.cli("owner", "schedule", "off")
            grid.start("owner", *FRIENDS)
            grid.pair("owner", *FRIENDS, offer="64G")
            grid.stop("owner")  # from here the owner's node runs in this process
            friends = grid.pids(*FRIENDS)
            ours = trio.run(_measure, Profile(grid.home("owner")), root, size, small, unchanged,
                            friends)  # fmt: skip
        theirs = _restic(root, size, small)
    floor = _floor(2, 4)
    result = {"k": 2, "n": 4, "friends": len(FRIENDS), "mib": size // MiB, "repeats": REPEATS,
              **ours, "floor_cpu_s_per_gb": floor}  # fmt: skip
    if theirs is not None:
        result["restic"] = theirs
        result["ratio_vs_restic"] = _ratios(ours, theirs)
        for phase in ("backup", "restore"):
            result["ratio_vs_restic"][f"cpu_{phase}_random_floor_over_restic"] = round(
                floor[phase]["sum"] / theirs["cpu_s_per_gb"][f"{phase}_random"], 2
            )
    return result


def _floor(k: int, n: int) -> dict:
    """The compiled stages' CPU per GB (bench/floor.py), measured in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "p2pbackup.bench.floor", str(k), str(n)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout)
