"""Backups from the command line: folders, exclude, backup, snapshots, diff, restore,
status (ls, find and log: ``browse``). Each command is a thin client of a job in ``daemon.jobs``.

File names are printed through ``core.names``: escaped for people, and in --json
with an exact ``_b64`` twin when they are not UTF-8 (docs/format.md)."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from p2pbackup.cli.common import STARTED, add_common, emit, plural
from p2pbackup.cli.jobs import job_line
from p2pbackup.cli.runner import call_job, run_job
from p2pbackup.cli.settings import duration
from p2pbackup.cli.upkeep import state_lines
from p2pbackup.core import names
from p2pbackup.core.names import shown
from p2pbackup.core.sizes import format_size
from p2pbackup.engine.diskname import from_disk
from p2pbackup.errors import ConfigError, IntegrityError, PeerError, StorageError

LATEST_HELP = (
    "'latest' (this device's newest), 'latest@DEVICE' (another device's), or the start of a "
    "snapshot id"
)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    backup = commands.add_parser("backup", help="back up the folders now")
    add_common(backup)
    backup.add_argument(
        "--force", action="store_true",
        help="publish a snapshot even when nothing changed since the last one",
    )  # fmt: skip
    backup.set_defaults(
        run=lambda args: _run_naming(
            args, "backup", {"always_snapshot": args.force}, _backup_text, _backup_json
        )
    )

    snaps = commands.add_parser("snapshots", help="list snapshots, oldest first")
    add_common(snaps)
    snaps.add_argument(
        "--sizes", action="store_true",
        help="count files and bytes of every snapshot, fetching manifests this device lacks",
    )  # fmt: skip
    snaps.set_defaults(
        run=lambda args: run_job(args, "snapshots", {"sizes": args.sizes}, _snapshots_text)
    )

    diff = commands.add_parser("diff", help="what changed between two snapshots")
    add_common(diff)
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(
        run=lambda args: _run_naming(
            args, "diff", {"old": args.old, "new": args.new}, _diff_text, _diff_json
        )
    )

    restore = commands.add_parser("restore", help="bring files back from a snapshot")
    add_common(restore)
    restore.add_argument("snapshot", help=LATEST_HELP)
    restore.add_argument("paths", nargs="*", metavar="PATH", help="only these (default: all)")
    restore.add_argument("--at", metavar="DATETIME", help="the snapshot in force at that time")
    where = restore.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="DIR", help="restore under this folder")
    where.add_argument("--in-place", action="store_true", help="back where the files came from")
    restore.add_argument(
        "--force", action="store_true", help="overwrite files that are newer on disk"
    )
    restore.set_defaults(run=run_restore, more_paths="paths")

    verify = commands.add_parser(
        "verify",
        help="check that friends still hold every share",
        epilog=f"Exit status: 0 when every record is safe; {PeerError.exit_code} when some "
        "record is at risk (still restorable, but it would not survive losing one more "
        "friend: run verify --repair, or bring friends back online); "
        f"{IntegrityError.exit_code} when some record is lost (fewer than k good shares "
        "anywhere). Lost beats at risk.",
    )
    add_common(verify)
    verify.add_argument(
        "--read-data", action="store_true", help="download every share and check its bytes"
    )
    verify.add_argument(
        "--repair", action="store_true", help="rebuild missing or bad shares on other friends"
    )
    verify.set_defaults(run=run_verify)

    forget = commands.add_parser("forget", help="drop old snapshots by a retention policy")
    add_common(forget)
    for rule in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
        forget.add_argument(f"--keep-{rule}", type=int, default=0, metavar="N")
    forget.add_argument("--prune", action="store_true", help="then free friends' space")
    forget.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    whose = forget.add_mutually_exclusive_group()
    whose.add_argument(
        "--device",
        metavar="NAME",
        help="forget among device NAME's snapshots (default: this device's only)",
    )
    whose.add_argument(
        "--all-devices", action="store_true", help="forget among every device's snapshots"
    )
    forget.set_defaults(run=run_forget)

    status = commands.add_parser("status", help="friends online, last backup, how safe it is")
    add_common(status)
    status.add_argument("--check", action="store_true", help="ask friends again now (the "
                        "daemon otherwise answers from what its last job found)")  # fmt: skip
    status.set_defaults(
        run=lambda args: _run_naming(
            args, "status", {"check": True} if args.check else {}, _status_text,
            lambda data: names.to_json(data, "folders"),
        )
    )


def run_forget(args: argparse.Namespace) -> int:
    params = {
        f"keep_{rule}": getattr(args, f"keep_{rule}")
        for rule in ("last", "hourly", "daily", "weekly", "monthly", "yearly")
    }
    params.update(prune=args.prune, dry_run=args.dry_run)
    params.update(device=args.device, all_devices=args.all_devices)
    return run_job(args, "forget", params, _forget_text)


def _forget_text(data: dict) -> str:
    verb = "would forget" if data["dry_run"] else "forgot"
    lines = [
        f"keep   {k['id'][:12]}  {k['device']}  ({', '.join(k['why'])})" for k in data["kept"]
    ]
    lines += [f"{verb} {sid[:12]}" for sid in data["forgotten"]]
    if data["other_devices_kept"]:
        lines.append(f"Left alone: {data['other_devices_kept']} snapshots of other devices "
                     "(--device NAME or --all-devices to include them).")  # fmt: skip
    if "removed_records" in data:
        lines.append(
            f"Pruned {data['removed_records']} records ({data['removed_shares']} shares)."
            + (f" Away, pruned later: {', '.join(data['unreachable'])}." if data["unreachable"]
               else "")
        )  # fmt: skip
    if data.get("unknown_shares"):
        held = ", ".join(f"{n} on {f}" for f, n in sorted(data["unknown_shares"].items()))
        lines.append(f"Kept shares this device never sent ({held}): another device's backup "
                     "may be using them.")  # fmt: skip
    return "\n".join(lines)


def run_verify(args: argparse.Namespace) -> int:
    """The report, then an exit status a script can act on (see ``verify --help``)."""
    data = call_job(args, "verify", {"read_data": args.read_data, "repair": args.repair})
    people = _verify_text(data)
    names.to_json(data, "lost_files")  # strict JSON, exact bytes in lost_files_b64
    emit(args, data, people)
    return verify_exit_code(data)


def verify_exit_code(data: dict) -> int:
    if data["lost"]:
        return IntegrityError.exit_code
    if data["at_risk"]:
        return PeerError.exit_code
    return 0


def _verify_text(data: dict) -> str:
    lines = [f"{data['records']} records checked; shares per friend:"]
    emptied = set(data.get("emptied", ()))
    for friend, counts in data["friends"].items():
        parts = [f"{counts.get(what, 0)} {what}" for what in ("good", "damaged", "missing")]
        if counts.get("unproven"):
            parts.append(f"{counts['unproven']} unproven")
        note = "  <- holds none of your shares: its pool was deleted?" if friend in emptied else ""
        lines.append(f"  {friend:16} {', '.join(parts)}{note}")
    lines += [f"  {friend:16} unreachable" for friend in data["unreachable"]]
    for rolled in data.get("head_rolled_back", ()):
        lines.append(
            f"{rolled['friend']} went back in time: it holds head {rolled['seen']}, it held "
            f"{rolled['known']}; records it lost are stored again by --repair or a backup."
        )
    for sid in data.get("damaged_snapshots", ()):
        lines.append(f"Snapshot {sid[:12]} is damaged: its manifest cannot be read.")
    if data["unproven"]:
        lines.append(f"{data['unproven']} shares have no proof left; --read-data checks them.")
    if data["repaired"]:
        lines.append(f"Repaired {data['repaired']} records.")
    if data["lost"]:
        lines.append(f"LOST: {data['lost']} records cannot be rebuilt from what friends hold.")
        lines += [f"  lost: {shown(path)}" for path in data.get("lost_files", ())]
    elif data["at_risk"]:
        lines.append(f"At risk: {data['at_risk']} records would not survive losing a friend; "
                     "run verify --repair.")  # fmt: skip
    else:
        lines.append(f"Safe: any {data['friends_that_could_disappear']} friend(s) could disappear.")
    return "\n".join(lines)


def run_restore(args: argparse.Namespace) -> int:
    at = None
    if args.at:
        try:
            at = datetime.fromisoformat(args.at).isoformat()
        except ValueError:
            raise ConfigError(
                f"--at {args.at!r} is not a date and time like 2026-11-25T14:30."
            ) from None
    params = {
        "selector": args.snapshot,
        "at": at,
        "paths": [from_disk(p) for p in args.paths],
        "to": os.path.abspath(args.to) if args.to else None,
        "in_place": args.in_place,
        "force": args.force,
    }
    return _run_naming(args, "restore", params, _restore_text, _restore_json,
                       exit_code=_restore_exit_code)  # fmt: skip


def _run_naming(
    args: argparse.Namespace,
    name: str,
    params: dict,
    text: Callable[[Any], str],
    json_form: Callable[[Any], None],
    exit_code: Callable[[Any], int] | None = None,
) -> int:
    """``run_job`` for a result that holds file names: ``json_form`` makes them strict JSON."""
    result = call_job(args, name, params)
    if isinstance(result, dict) and "seconds" in result:
        result["seconds"] = round(time.monotonic() - STARTED, 3)  # the wait, start to answer
    people = text(result)
    code = exit_code(result) if exit_code else 0  # before json_form rewrites names
    json_form(result)
    emit(args, result, people)
    return code


def _backup_text(data: dict) -> str:
    if data.get("unchanged"):
        lines = [
            f"Nothing changed since snapshot {data['snapshot'][:12]} "
            f"({plural(data['files'], 'file')}, {format_size(data['bytes'])}): no new snapshot "
            "('backup --force' makes one anyway)."
        ]
        lines += [f"skipped {shown(s['path'])}: {s['reason']}" for s in data["skipped"]]
        return "\n".join(lines)
    lines = [
        f"Snapshot {data['snapshot'][:12]}: {plural(data['files'], 'file')}, "
        f"{format_size(data['bytes'])}; {data['changed']} changed, "
        f"{format_size(data['bytes_stored'])} sent in "
        f"{plural(data['records_stored'], 'record')} to {', '.join(data['friends'])} in "
        f"{data['seconds']:.1f} s."
    ]
    lines += _offline_lines(data.get("offline", ()))
    if data.get("offline") and data.get("survives_losing") == 0 and data["records_stored"]:
        lines.append(
            f"What changed is on {', '.join(data['friends'])} alone: it survives losing no "
            "friend until the others are back and 'p2pbackup verify --repair' runs."
        )
    lines += [f"skipped {shown(s['path'])}: {s['reason']}" for s in data["skipped"]]
    return "\n".join(lines)


def _offline_lines(offline) -> list[str]:
    return [
        f"{f['name']} is unreachable"
        + (f" (last seen {f['last_seen']})." if f["last_seen"] else " (never seen online).")
        for f in offline
    ]


def _backup_json(data: dict) -> None:
    for skipped in data["skipped"]:
        names.to_json(skipped, "path")


def _snapshots_text(data: list) -> str:
    if not data:
        return "No snapshots yet."
    return "\n".join(
        f"{s['id'][:12]}  {s['time']}  DAMAGED: {s['damaged']}"
        if s.get("damaged")
        else f"{s['id'][:12]}  {s['time']}  {_files(s['files']):>13}  "
        f"{_bytes(s['bytes']):>9}  {s['device'] or '?'}"
        for s in data
    )


def _files(count: int | None) -> str:
    return "? files" if count is None else plural(count, "file")  # no copy here: --sizes


def _bytes(size: int | None) -> str:
    return "?" if size is None else format_size(size)


def _diff_text(data: dict) -> str:
    marked = [("+", p) for p in data["added"]] + [("-", p) for p in data["removed"]]
    marked += [("M", p) for p in data["changed"]]
    return "\n".join(f"{m} {shown(p)}" for m, p in sorted(marked, key=lambda x: x[1])) or (
        "No differences."
    )


def _diff_json(data: dict) -> None:
    for key in ("added", "removed", "changed"):
        names.to_json(data, key)


def _restore_text(data: dict) -> str:
    lines = [
        f"Restored {plural(data['files'], 'file')}, {format_size(data['bytes'])} from snapshot "
        f"{data['snapshot'][:12]} in {data['seconds']:.1f} s."
    ]
    lines += [f"kept (newer on disk; --force overwrites): {shown(p)}" for p in data["kept_newer"]]
    errors = data.get("errors", [])
    if errors:
        lines.append(f"NOT restored: {plural(len(errors), 'file')} could not be written:")
        lines += [f"  {shown(e['path'])}: {e['reason']}" for e in errors]
    return "\n".join(lines)


def _restore_exit_code(data: dict) -> int:
    """Some files could not be written (each one is listed): the disk's failure, 5."""
    return StorageError.exit_code if data.get("errors") else 0


def _restore_json(data: dict) -> None:
    names.to_json(data, "kept_newer")
    for error in data.get("errors", []):
        names.to_json(error, "path")


def _reached(data: dict) -> list[str]:
    """Each friend online and how it is reached: "bob: direct", "carol: through the relay"."""
    paths = data.get("paths") or {f["name"]: f.get("path") for f in data.get("presence", ())}
    words = {"direct": ": direct", "relay": ": through the relay"}
    return [name + words.get(paths.get(name) or "", "") for name in data["friends_online"]]


def _rendezvous_line(data: dict) -> list[str]:
    point = data.get("rendezvous")
    if not point:
        return []
    if point["registered"] and point["reserved"]:
        return [f"rendezvous       registered, relay slot held (since {point['since']})"]
    return [f"rendezvous       not reachable through it: {point['last_error']}"]


def _status_text(data: dict) -> str:
    safe = data["friends_that_could_disappear"]
    return "\n".join(
        [
            f"friends online   {len(data['friends_online'])} of {data['friends']}"
            + (f" ({', '.join(_reached(data))})" if data["friends_online"] else ""),
            f"folders          {', '.join(map(shown, data['folders'])) or 'none'}",
            f"last backup      {data['last_backup'] or 'never'}",
            f"snapshots        {_unknown(data['snapshots'])}",
            f"protected        {_unknown(data['protected_files'])} files, "
            f"{format_size(data['protected_bytes'] or 0)}",
            "could lose       "
            + ("unknown (run verify)" if safe is None else f"{safe} friend(s) without loss"),
            f"schedule         {_status_schedule(data)}",
        ]
        + ([f"checked          {data['checked_at']}"] if data.get("checked_at") else [])
        + _rendezvous_line(data)
        + state_lines(data.get("upkeep") or {})  # audits, re-placement, retention
        + [f"job {job_line(job).strip()}" for job in data.get("jobs", ())]  # the daemon's
        + [f"unreachable      {line}" for line in _offline_lines(data.get("offline", ()))]
        + (
            ["backup now       would survive losing no friend (too few online)"]
            if data.get("backup_now_survives") == 0 and data.get("offline")
            else []
        )
        + [
            f"WARNING          {r['friend']} went back in time (holds head {r['seen']}, held "
            f"{r['known']}): run 'p2pbackup verify --repair'"
            for r in data.get("head_rolled_back", ())
        ]
    )


def _unknown(value: object) -> object:
    """A count the daemon has not worked out yet (asked while a job runs, just started)."""
    return "unknown yet" if value is None else value


def _status_schedule(data: dict) -> str:
    """The daemon's schedule (``schedule`` in its status), or the profile's when no daemon
    answered: then nothing runs on schedule."""
    schedule = data.get("schedule")
    if schedule is None:
        return "no daemon runs: nothing runs on schedule ('p2pbackup daemon' starts one)"
    if schedule["paused"]:
        return "paused ('p2pbackup resume')"
    if not schedule["interval"]:
        return "off"
    text = f"every {duration(schedule['interval'])}"
    if schedule.get("next_run"):
        text += f", next at {datetime.fromtimestamp(schedule['next_run']).strftime('%H:%M')}"
    return text
