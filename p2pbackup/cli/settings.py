"""The settings a daemon acts on, from the command line: folders, excludes, the schedule,
pause and resume, the bandwidth limit. They live in the profile, and the settings jobs
(daemon/settings.py) change them: in the daemon when one runs (the only writer of the
profile then), else here."""

from __future__ import annotations

import argparse
import os

from p2pbackup.cli.common import add_common
from p2pbackup.cli.runner import run_job
from p2pbackup.core import names
from p2pbackup.core.names import shown
from p2pbackup.core.sizes import format_size, parse_size
from p2pbackup.errors import ConfigError


def add_parsers(commands: argparse._SubParsersAction) -> None:
    folders = commands.add_parser("folders", help="list, add or remove folders to back up")
    add_common(folders)
    action = folders.add_subparsers(dest="action", metavar="ACTION")
    for name, helptext in (("add", "protect a folder"), ("remove", "stop protecting a folder")):
        sub = action.add_parser(name, help=helptext)
        add_common(sub)
        sub.add_argument("path")
    folders.set_defaults(run=run_folders)

    exclude = commands.add_parser("exclude", help="skip names or paths matching a pattern")
    add_common(exclude)
    exclude.add_argument("pattern", nargs="?", help="e.g. '*.tmp' or 'Documents/cache'")
    exclude.add_argument("--remove", action="store_true", help="stop excluding PATTERN")
    exclude.set_defaults(run=run_exclude)
    add_schedule_parsers(commands)


def _folders_text(data: dict) -> str:
    return ("\n".join(map(shown, names.from_json(data, "folders")))
            or "No folders yet: 'p2pbackup folders add PATH'.")  # fmt: skip


def run_folders(args: argparse.Namespace) -> int:
    params = {}
    if args.action:  # a full path: the daemon does not know this shell's folder
        params[args.action] = os.path.abspath(os.path.expanduser(args.path))
    return run_job(args, "folders", params, _folders_text)


def run_exclude(args: argparse.Namespace) -> int:
    params = {"remove" if args.remove else "add": args.pattern} if args.pattern else {}
    return run_job(args, "excludes", params,
                   lambda data: "\n".join(data["excludes"]) or "Nothing is excluded.")  # fmt: skip


def add_schedule_parsers(commands: argparse._SubParsersAction) -> None:
    for name, helptext in (
        ("pause", "stop scheduled backups until 'resume'"),
        ("resume", "start scheduled backups again"),
    ):
        sub = commands.add_parser(name, help=helptext)
        add_common(sub)
        sub.set_defaults(run=lambda args, name=name: run_schedule(args, name, {}))
    schedule = commands.add_parser("schedule", help="how often the daemon backs up")
    add_common(schedule)
    schedule.add_argument(
        "interval", nargs="?", help="e.g. 30m, 1h, 1d, or 'off' (none: show the schedule)"
    )
    limit = commands.add_parser("limit", help="cap upload bandwidth (all friends together)")
    add_common(limit)
    limit.add_argument("rate", help="per second, e.g. 500K, 2M; or 'off'")
    limit.set_defaults(run=run_limit)
    schedule.set_defaults(
        run=lambda args: run_schedule(
            args, "schedule",
            {} if args.interval is None else {"interval": parse_interval(args.interval)},
        )
    )  # fmt: skip


def run_limit(args: argparse.Namespace) -> int:
    off = args.rate.strip().lower() in ("off", "0", "none")
    return run_job(args, "bandwidth", {"limit": 0 if off else parse_size(args.rate)},
                   _limit_text)  # fmt: skip


def _limit_text(data: dict) -> str:
    rate = data["bandwidth"]
    return f"Uploads limited to {format_size(rate)}/s." if rate else "Uploads are not limited."


def parse_interval(text: str) -> float:
    text = text.strip().lower()
    if text in ("off", "never", "0"):
        return 0.0
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not an interval like 30m, 1h or 1d.") from None


def run_schedule(args: argparse.Namespace, name: str, params: dict) -> int:
    """Kept in the profile, so it holds without a daemon; one that runs changes it."""
    return run_job(args, name, params, _schedule_text)


def _schedule_text(schedule: dict) -> str:
    interval = schedule["interval"]
    text = f"Scheduled backups: {'never' if not interval else 'every ' + duration(interval)}"
    text += ", paused." if schedule["paused"] else "."
    if interval and not schedule["daemon"]:
        text += ("\nNo daemon runs for this profile, so nothing runs on schedule until "
                 "'p2pbackup daemon' (or the app) does.")  # fmt: skip
    return text


def duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
