"""What every stress scenario shares: a grid of real nodes, data that changes, and the
byte-exact check of every published snapshot.

A scenario never raises on a broken promise: it writes it down (``Scenario.expect``)
and carries on, so one run shows every promise that failed, not only the first.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from p2pbackup.cli.localgrid import GridError, LocalGrid
from p2pbackup.storage.profile import Profile

OWNER = "laptop"
FRIENDS = ("alice", "bob", "carol", "dave")  # k=2 of n=4: any one friend may go
MiB = 1024 * 1024
LARGE = 6 * MiB  # over the 4 MiB streaming line
COMMAND_TIMEOUT = 300


@dataclass
class Answer:
    """What one CLI command did: exit code, its JSON document, its first error line."""

    code: int
    data: Any
    error: str

    @property
    def ok(self) -> bool:
        return self.code == 0


class Tally:
    """The suite's counters, shared by every scenario."""

    def __init__(self) -> None:
        self.kills = Counter[str]()  # "owner", "friend"
        self.faults = Counter[str]()  # per kind
        self.bytes_compared = 0
        self.snapshots_restored = 0
        self.lost: list[str] = []  # every published snapshot that did not come back whole


@dataclass
class Scenario:
    name: str
    root: str
    rng: random.Random
    tally: Tally
    problems: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    say: Callable[[str], None] = lambda line: None  # each command, with --verbose

    def expect(self, condition: bool, problem: str) -> bool:
        if not condition:
            self.problems.append(problem)
        return condition

    def answered(self, answer: Answer, what: str) -> bool:
        """A command that must succeed; its failure is a problem, named with its error."""
        return self.expect(answer.ok, f"{what}: exit {answer.code}: {answer.error}")


class StressGrid(LocalGrid):
    """LocalGrid, plus what a fault injector needs: pids, pool folders, raw answers."""

    say: Callable[[str], None] = staticmethod(lambda line: None)

    def pid(self, name: str) -> int:
        return self._daemons[name].pid

    def start(self, *names: str) -> None:
        """As LocalGrid.start, but a node started before keeps its port, as ``p2pbackup
        daemon`` without --listen does: LocalGrid always listens on a new port, which
        friends (no mDNS here) would not find."""
        started = time.monotonic()
        fresh = [name for name in names if not Profile(self.home(name)).settings().get("listen")]
        if fresh:
            super().start(*fresh)
        again = {name: self.command(name, "daemon") for name in names if name not in fresh}
        for name, process in again.items():
            line = process.stdout.readline()
            if "running" not in line:
                process.kill()
                raise GridError(f"{name}: no daemon: {process.stderr.read().strip()}")
            self._daemons[name] = process
        self.say(f"  started {' '.join(names)} in {time.monotonic() - started:.1f} s")

    def stop(self, name: str, kill: bool = False) -> None:
        started = time.monotonic()
        super().stop(name, kill)
        how = "killed" if kill else "stopped"
        self.say(f"  {how} {name} in {time.monotonic() - started:.1f} s")

    def alive(self, name: str) -> bool:
        return name in self._daemons and self._daemons[name].poll() is None

    def pool(self, name: str) -> str:
        return os.path.join(self.home(name), "pool")

    def run(self, name: str, *args: str, timeout: float = COMMAND_TIMEOUT) -> Answer:
        """A command with --json, whatever its exit code."""
        started = time.monotonic()
        answer = self.answer_of(self.command(name, *args, "--json"), timeout)
        said = answer.error or json.dumps(answer.data)
        self.say(f"  {name} {' '.join(args)}: exit {answer.code} in "
                 f"{time.monotonic() - started:.1f} s: {said[:300]}")  # fmt: skip
        return answer

    def answer_of(self, process: subprocess.Popen, timeout: float = COMMAND_TIMEOUT) -> Answer:
        """The answer of a command started with ``command(..., "--json")``."""
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            return Answer(-1, None, f"no answer in {timeout} s")
        data = None
        lines = out.strip().splitlines()
        if lines:
            try:
                data = json.loads(lines[-1])
            except ValueError:
                data = None
        error = ""
        if process.returncode:
            if isinstance(data, dict) and "error" in data:
                error = str(data["error"])
            elif data is None:  # no JSON: a crash, whose traceback says what
                error = first_line(err) or first_line(out)
            else:  # an answer that says its trouble itself (verify, say)
                error = first_line(err)
        return Answer(process.returncode, data, error)


_RAISED = re.compile(r"^[\w.]+(Error|Exception|Group|Exit|Interrupt)\w*(:|$)")


def first_line(text: str) -> str:
    """The line of an error output that says what went wrong."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    # A traceback's last line says what went wrong; its first only that one did.
    if lines and "Traceback (most recent call last)" in text:
        # An exception group draws boxes: the last "SomeError: ..." line inside is it.
        raised = [
            line.strip(" |+") for line in lines if _RAISED.match(line.strip(" |+"))
        ] or [lines[-1]]
        said = lines[0].split("Traceback")[0].replace("Exception Group", "").strip(" |+")
        return f"{said} {raised[-1]}".strip()
    return lines[0] if lines else ""


def start_grid(s: Scenario, before_start=None) -> StressGrid:
    """An owner and four friends, paired, friends' daemons running, the owner's not.

    ``before_start(grid)`` runs after ``init``, before any daemon starts (to mount a
    small disk under a friend's pool, say).
    """
    grid = StressGrid(os.path.join(s.root, "nodes"))
    grid.say = s.say
    try:
        grid.init_all([OWNER, *FRIENDS])
        grid.cli(OWNER, "schedule", "off")  # the suite says when to back up
        if before_start is not None:
            before_start(grid)
        grid.start(OWNER, *FRIENDS)
        grid.pair(OWNER, *FRIENDS)
        # From now on every owner command runs a node of its own, so it can be killed.
        grid.stop(OWNER)
    except BaseException:
        grid.close()
        raise
    return grid


# --- data ---------------------------------------------------------------------------------


def write_random(path: str, size: int, rng: random.Random) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for start in range(0, size, MiB):
            f.write(rng.randbytes(min(MiB, size - start)))


def make_source(s: Scenario, small_bytes: int = 3 * MiB, large: int = 2) -> str:
    """A folder of small files in a few subfolders and ``large`` files of 6 MiB."""
    folder = os.path.join(s.root, "source", "Data")
    written, i = 0, 0
    while written < small_bytes:
        size = s.rng.choice((0, 100, 4_000, 30_000, 200_000, 700_000))
        write_random(os.path.join(folder, f"dir{i % 4}", f"file-{i:03d}.bin"), size, s.rng)
        written, i = written + size, i + 1
    for j in range(large):
        write_random(os.path.join(folder, f"large-{j}.bin"), LARGE, s.rng)
    os.symlink("dir0/file-000.bin", os.path.join(folder, "a-link"))
    return folder


def files_of(folder: str) -> list[str]:
    return sorted(
        os.path.join(d, n)
        for d, _, names in os.walk(folder)
        for n in names
        if not os.path.islink(os.path.join(d, n))
    )


def edit(folder: str, rng: random.Random, new_large: bool = False, only_add: bool = False) -> None:
    """A day's changes: a new small file; a new 6 MiB file (``new_large``) or a large one
    written anew; unless ``only_add``, edits in the middle of files, an append, a deletion.
    Whichever way, the next backup streams a file over 4 MiB."""
    stamp = f"{time.time_ns()}-{rng.randrange(1 << 30)}"
    write_random(os.path.join(folder, "new", f"added-{stamp}.bin"), rng.randint(1, 300_000), rng)
    if new_large or only_add:
        size = LARGE + rng.randrange(MiB)
        write_random(os.path.join(folder, "new", f"large-{stamp}.bin"), size, rng)
    else:
        large = [p for p in files_of(folder) if os.path.getsize(p) >= LARGE]
        write_random(rng.choice(large), LARGE, rng)
    if only_add:
        return
    files = files_of(folder)
    for path in rng.sample(files, min(4, len(files))):
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.seek(rng.randrange(size) if size else 0)
            f.write(rng.randbytes(rng.randint(1, 5000)))
    with open(rng.choice(files), "ab") as f:
        f.write(rng.randbytes(1000))
    small = [p for p in files if os.path.getsize(p) < MiB]
    if len(small) > 3:
        os.unlink(rng.choice(small))


def freeze(folder: str, where: str) -> str:
    """A copy of ``folder`` as it is now, kept as what a snapshot must give back."""
    target = os.path.join(where, os.path.basename(folder))
    shutil.copytree(folder, target, symlinks=True)
    return where


# --- checks -------------------------------------------------------------------------------


def compare(expected: str, actual: str) -> tuple[int, str | None]:
    """Bytes compared, and the first difference (None: every name, byte, link and mode
    is the same)."""
    compared = 0
    for top, other in ((expected, actual), (actual, expected)):
        for folder, dirs, names in os.walk(top):
            rel = os.path.relpath(folder, top)
            mirror = os.path.join(other, rel)
            if not os.path.isdir(mirror):
                return compared, f"{rel}: a folder only in {top}"
            extra = sorted(set(dirs + names) ^ set(os.listdir(mirror)))
            if extra:
                return compared, f"{rel}: names not in both: {extra[:3]}"
            if top != expected:
                continue  # the second pass only looks for names the first did not see
            for name in names:
                x, y = os.path.join(folder, name), os.path.join(mirror, name)
                path = os.path.join(rel, name)
                if os.path.islink(x) or os.path.islink(y):
                    if not (os.path.islink(x) and os.path.islink(y)):
                        return compared, f"{path}: a symlink on one side only"
                    if os.readlink(x) != os.readlink(y):
                        return compared, f"{path}: the symlink points elsewhere"
                    continue
                sx, sy = os.stat(x), os.stat(y)
                if stat.S_IMODE(sx.st_mode) != stat.S_IMODE(sy.st_mode):
                    return compared, f"{path}: mode {sx.st_mode:o} became {sy.st_mode:o}"
                if sx.st_size != sy.st_size:
                    return compared, f"{path}: {sx.st_size} bytes became {sy.st_size}"
                with open(x, "rb") as a, open(y, "rb") as b:
                    while block := a.read(MiB):
                        if block != b.read(len(block)):
                            return compared, f"{path}: the bytes differ"
                        compared += len(block)
    return compared, None


class Published:
    """Every snapshot the owner published, with the folder it must restore to."""

    def __init__(self) -> None:
        self.expected: dict[str, str] = {}  # snapshot id -> frozen copy

    def adopt(self, grid: StressGrid, s: Scenario, copy: str) -> list[str]:
        """Snapshots listed now that were not before are of the state frozen in ``copy``."""
        listing = grid.run(OWNER, "snapshots")
        if not s.answered(listing, "snapshots"):
            return []
        new = [e["id"] for e in listing.data if e["id"] not in self.expected]
        for snap in new:
            self.expected[snap] = copy
        return new

    def backed_up(self, s: Scenario, answer: Answer, copy: str, what: str) -> None:
        """A backup that must succeed; the snapshot it made is of the state in ``copy``."""
        if s.answered(answer, what) and isinstance(answer.data, dict):
            # An unchanged tree makes no new snapshot: "snapshot" is then the last one.
            self.expected.setdefault(answer.data["snapshot"], copy)

    def check_all(self, grid: StressGrid, s: Scenario, damaged_ok: frozenset = frozenset()) -> None:
        """Restore every published snapshot and compare every byte with what it saved.

        A snapshot in ``damaged_ok`` may be listed as damaged (what a scenario that
        destroys it on every friend promises); any other failure is a loss.
        """
        listing = grid.run(OWNER, "snapshots", "--sizes")  # reads every manifest: damage shows
        if not s.answered(listing, "snapshots"):
            listed: dict[str, dict] = {}
        else:
            listed = {e["id"]: e for e in listing.data}
        unknown = sorted(snap[:12] for snap in set(listed) - set(self.expected))
        if unknown:  # published by a backup that failed, say
            s.notes["snapshots_of_unknown_state"] = unknown
        for number, (snap, copy) in enumerate(self.expected.items(), 1):
            entry = listed.get(snap)
            if entry is not None and is_damaged(entry) and snap in damaged_ok:
                s.notes.setdefault("damaged_as_promised", []).append(snap[:12])
                continue
            target = os.path.join(s.root, "restored", f"{number}-{snap[:8]}")
            answer = grid.run(OWNER, "restore", snap, "--to", target)
            if not answer.ok:
                lost = f"{s.name}: snapshot {snap[:12]} does not restore: {answer.error}"
                if entry is None:
                    lost = f"{s.name}: snapshot {snap[:12]} is no longer listed ({answer.error})"
                s.tally.lost.append(lost)
                s.problems.append(lost)
                continue
            compared, difference = compare(copy, target)
            s.tally.bytes_compared += compared
            if difference is not None:
                lost = f"{s.name}: snapshot {snap[:12]} restored wrong: {difference}"
                s.tally.lost.append(lost)
                s.problems.append(lost)
                continue
            s.tally.snapshots_restored += 1
            shutil.rmtree(target)


def is_damaged(entry: dict) -> bool:
    """Whether ``snapshots`` marks this entry as damaged (the key is the listing's own)."""
    return bool(entry.get("damaged")) or entry.get("status") not in (None, "ok", "intact")


def verify_clean(grid: StressGrid, s: Scenario, what: str = "verify --read-data") -> Answer:
    """``verify --read-data`` finds nothing at risk or lost, no friend missing or holding a
    damaged share, and exits 0."""
    answer = grid.run(OWNER, "verify", "--read-data")
    data = answer.data if isinstance(answer.data, dict) else {}
    s.expect(
        answer.ok and data.get("lost") == 0 and data.get("at_risk") == 0,
        f"{what} not clean: exit {answer.code}, lost {data.get('lost')}, "
        f"at risk {data.get('at_risk')} {answer.error}".strip(),
    )
    for friend, counts in data.get("friends", {}).items():
        if not isinstance(counts, dict):
            continue  # an older verify: no counts per friend
        bad = {k: counts.get(k) for k in ("missing", "damaged") if counts.get(k)}
        s.expect(not bad, f"{what}: {friend} has {bad}")
    return answer


def pool_bytes(folder: str) -> int:
    """Bytes in a friend's pool now, temporary upload files included."""
    total = 0
    for d, _, names in os.walk(folder):
        for n in names:
            with contextlib.suppress(FileNotFoundError):  # a temporary renamed as we looked
                total += os.path.getsize(os.path.join(d, n))
    return total


def share_files(pool: str) -> list[str]:
    """The share files in a friend's pool (``<owner>/shares/<xx>/<record>.<i>``)."""
    return [
        path
        for path in files_of(pool)
        if os.sep + "shares" + os.sep in path and not os.path.basename(path).startswith(".")
    ]


def record_of(share: str) -> str:
    return os.path.basename(share).rsplit(".", 1)[0]
