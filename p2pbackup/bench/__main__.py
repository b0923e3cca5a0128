"""Benchmarks that print figures measured in one run.

``python -m p2pbackup.bench core --json`` (the pipeline), ``... net --json``
(shares over libp2p to friend nodes in separate processes) and ``... backup
--json`` (backup and restore end to end, against restic where installed), ``... latency
--json`` (how long each command takes a user, through the daemon and without), ``... gui
--json`` (the app's GUI thread while a backup and a restore run, and its start-up), ``...
upkeep --json`` (what audits cost a day, per GB stored at friends; re-placement, repack).
"""

from __future__ import annotations

import argparse
import json

from p2pbackup import runtime


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m p2pbackup.bench")
    parser.add_argument("suite", choices=["core", "net", "backup", "latency", "gui", "upkeep"])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--mib", type=int, default=256, help="size of each data set")
    parser.add_argument("--small", type=int, default=10_000, help="backup: small files")
    parser.add_argument("--many", type=int, default=100_000, help="backup: unchanged files")
    parser.add_argument("--calls", type=int, default=30, help="latency: calls per figure")
    parser.add_argument("--size", default="1G", help="gui, upkeep: bytes backed up (1G, 64M...)")
    parser.add_argument("--runs", type=int, default=3, help="gui: start-ups timed each way")
    parser.add_argument("--no-mallopt", action="store_true", help="keep glibc's malloc defaults")
    args = parser.parse_args()
    tuned = False if args.no_mallopt else runtime.tune_malloc()
    if args.suite == "core":
        from p2pbackup.bench import core as suite
    elif args.suite == "net":
        from p2pbackup.bench import net as suite
    elif args.suite == "latency":
        from p2pbackup.bench import latency

        figures = latency.run(args.calls)
    elif args.suite == "upkeep":
        from p2pbackup.bench import upkeep
        from p2pbackup.core.sizes import parse_size

        figures = upkeep.run(parse_size(args.size))
    elif args.suite == "gui":
        from p2pbackup.bench import gui
        from p2pbackup.core.sizes import parse_size

        figures = gui.run(parse_size(args.size), args.runs)
    else:
        from p2pbackup.bench import backup

        figures = backup.run(args.mib * 1024 * 1024, args.small, args.many)
    if args.suite not in ("backup", "latency", "gui", "upkeep"):
        figures = suite.run(args.mib * 1024 * 1024)
    result = {"suite": args.suite, "mallopt": tuned, **figures}
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
