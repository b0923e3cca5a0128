"""Run the scenarios, one after another, each in a grid of its own; sum them up.

A scenario that fails (a broken promise, or an exception) is written down and the
next one runs. The summary counts the kills made, the faults injected per kind, the
bytes compared and snapshots restored, and names every snapshot lost.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import time
import traceback
from collections.abc import Callable

from p2pbackup.stress import flood, friend_faults, owner_kills, rollback, share_damage
from p2pbackup.stress.harness import Scenario, Tally, first_line

DEFAULT_KILLS = 20

SCENARIOS: dict[str, Callable[[Scenario, int], None]] = {
    "owner-kills": owner_kills.run,
    "friend-kills": lambda s, kills: friend_faults.run_friend_kills(s),
    "disk-full": lambda s, kills: friend_faults.run_disk_full(s),
    "share-damage": lambda s, kills: share_damage.run(s),
    "rollback": lambda s, kills: rollback.run(s),
    "flood": lambda s, kills: flood.run(s),
}


def run_one(
    name: str, seed: int, kills: int, tally: Tally, say=print, verbose: bool = False,
    keep: bool = False,
) -> dict:  # fmt: skip
    """One scenario in a fresh temporary folder; its result (never raises). With ``keep``
    the folder (profiles, logs, pools) stays for a post-mortem."""
    started = time.monotonic()
    prefix = f"p2pbackup-stress-{name}-"
    with contextlib.ExitStack() as stack:
        root = tempfile.mkdtemp(prefix=prefix) if keep else stack.enter_context(
            tempfile.TemporaryDirectory(prefix=prefix))  # fmt: skip
        # Each scenario draws from its own generator, so --only NAME repeats it exactly.
        s = Scenario(name, root, random.Random(f"{seed}:{name}"), tally)
        if verbose:
            s.say = say
        if keep:
            s.notes["kept"] = root
        try:
            SCENARIOS[name](s, kills)
        except Exception as exc:
            s.problems.append(f"{type(exc).__name__}: {first_line(str(exc))}")
            s.notes["traceback"] = traceback.format_exc().splitlines()[-6:]
    skipped = s.notes.pop("skipped", None)
    result = {
        "status": "skipped" if skipped else ("pass" if not s.problems else "fail"),
        "error": skipped or (s.problems[0] if s.problems else None),
        "problems": s.problems,
        "seconds": round(time.monotonic() - started, 1),
        "notes": s.notes,
    }
    say(f"{name}: {result['status']} in {result['seconds']} s"
        + (f": {result['error']}" if result["error"] else ""))  # fmt: skip
    return result


def run_all(
    seed: int, kills: int = DEFAULT_KILLS, only: list[str] | None = None, say=print,
    verbose: bool = False, keep: bool = False,
) -> dict:  # fmt: skip
    started = time.monotonic()
    tally = Tally()
    say(f"stress: seed {seed}, {kills} owner kills")
    scenarios = {
        name: run_one(name, seed, kills, tally, say, verbose, keep) for name in (only or SCENARIOS)
    }
    return {
        "seed": seed,
        "kills": dict(tally.kills),
        "faults": dict(tally.faults),
        "bytes_compared": tally.bytes_compared,
        "snapshots_restored": tally.snapshots_restored,
        "lost": tally.lost,
        "scenarios": scenarios,
        "passed": all(r["status"] != "fail" for r in scenarios.values()),
        "seconds": round(time.monotonic() - started, 1),
    }


def text(summary: dict) -> str:
    """The summary for people."""
    lines = [
        f"seed {summary['seed']}, {summary['seconds']} s",
        "kills: " + (", ".join(f"{k} {n}" for k, n in summary["kills"].items()) or "none"),
        "faults: " + (", ".join(f"{k} {n}" for k, n in summary["faults"].items()) or "none"),
        f"compared {summary['bytes_compared']:,} bytes in "
        f"{summary['snapshots_restored']} restored snapshots",
        "lost: " + ("nothing" if not summary["lost"] else "; ".join(summary["lost"])),
    ]
    for name, result in summary["scenarios"].items():
        lines.append(f"  {name:14} {result['status']:7} {result['seconds']:6.1f} s"
                     + (f"  {result['error']}" if result["error"] else ""))  # fmt: skip
        lines += [f"  {'':14} also: {problem}" for problem in result["problems"][1:]]
    return "\n".join(lines)
