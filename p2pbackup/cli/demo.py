"""``p2pbackup demo [PATH]``: the whole cycle on one machine."""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import trio

from p2pbackup.core.placement import format_size
from p2pbackup.engine.demo import DemoSummary, run_demo, sample_folder
from p2pbackup.errors import ConfigError


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="back up a folder to simulated friends, lose some, restore and compare",
        description="Back up PATH (default: a sample folder) to four friends, edit it and back "
        "up again, lose one friend and let another return damaged shares, then recover from "
        "the recovery phrase alone and compare every byte. Your folder is copied first and "
        "never changed.",
    )
    parser.add_argument("path", nargs="?", help="the folder to back up (default: a sample)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    source = args.path or sample_folder()
    if not os.path.isdir(source):
        raise ConfigError(f"{source} is not a folder. Give a folder to back up, or no path.")
    with tempfile.TemporaryDirectory(prefix="p2pbackup-demo-") as workdir:
        summary = trio.run(run_demo, source, workdir)
    if args.json:
        print(json.dumps(_as_json(summary)))
    else:
        print(_as_text(source, summary))
    return 0 if summary.identical else 3


def _rate(size: int, seconds: float) -> str:
    return f"{size / max(seconds, 1e-9) / 1e6:.1f} MB/s"


def _as_text(source: str, s: DemoSummary) -> str:
    lines = [f"Backed up {source}: {s.files} files, {format_size(s.bytes)}."]
    for number, (report, seconds) in enumerate(s.backups, 1):
        lines.append(
            f"  backup {number}: {report.changed} files read, {seconds:.2f} s "
            f"({_rate(report.bytes, seconds)} of source)"
        )
    lines.append("Shares per friend (k=2 of n=4: any 2 rebuild every record):")
    for name, (count, used) in s.shares.items():
        lines.append(f"  {name:6} {count:4} shares  {format_size(used):>9}")
    lines.append(
        f"Then {s.vanished} vanished and {s.damaged} returned damaged shares "
        f"({s.rejected} caught by their hashes and fetched elsewhere)."
    )
    for number, (files, size, seconds) in enumerate(s.restored, 1):
        lines.append(
            f"  restored snapshot {number} from the phrase alone: {files} files, "
            f"{format_size(size)}, {seconds:.2f} s"
        )
    lines.append("Every byte matches." if s.identical else "MISMATCH: the restore differs!")
    return "\n".join(lines)


def _as_json(s: DemoSummary) -> dict:
    return {
        "files": s.files,
        "bytes": s.bytes,
        "backups": [{"files_read": r.changed, "seconds": t} for r, t in s.backups],
        "shares": {n: {"count": c, "bytes": b} for n, (c, b) in s.shares.items()},
        "vanished": s.vanished,
        "damaged": s.damaged,
        "rejected_shares": s.rejected,
        "restores": [{"files": f, "bytes": b, "seconds": t} for f, b, t in s.restored],
        "identical": s.identical,
    }
