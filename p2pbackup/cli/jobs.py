"""The daemon's jobs from the command line: ``jobs`` lists them, ``cancel ID`` stops one,
``watch`` prints every event of the daemon as it happens (control protocol 2)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from p2pbackup.cli.common import add_common, caught, emit, profile_of
from p2pbackup.errors import ConfigError

if TYPE_CHECKING:  # imported where used: a command the daemon answers may hear no event
    from p2pbackup.engine import events as ev

NO_DAEMON = ("No daemon runs on this profile, so no job runs in the background ('p2pbackup "
             "daemon' starts one).")  # fmt: skip


def add_parsers(commands: argparse._SubParsersAction) -> None:
    jobs = commands.add_parser("jobs", help="the daemon's jobs: running, queued, finished")
    add_common(jobs)
    jobs.set_defaults(run=run_jobs)

    cancel = commands.add_parser("cancel", help="stop a job of the daemon (see 'jobs')")
    add_common(cancel)
    cancel.add_argument("id", type=int, help="the job's number")
    cancel.set_defaults(run=run_cancel)

    watch = commands.add_parser("watch", help="print the daemon's events as they happen")
    add_common(watch, json_help="one JSON message per line, as the daemon sends them")
    watch.set_defaults(run=run_watch)


def _ask(args: argparse.Namespace, job: str, params: dict) -> Any:
    from p2pbackup.cli import client

    try:
        return client.call(profile_of(args).require().home, job, params)
    except client.NoDaemon:
        raise ConfigError(NO_DAEMON) from None


def run_jobs(args: argparse.Namespace) -> int:
    listed = _ask(args, "jobs", {})
    emit(args, listed, "\n".join(job_line(job) for job in listed) or "No jobs yet.")
    return 0


def progress_line(p: ev.JobProgress) -> str:
    """``sending: 120 of 500 files, 12.0 of 80.0 MB, 40 s left``."""
    if p.phase == "scanning":
        return (f"scanning: {p.scanned_files} files, {p.scanned_bytes / 1e6:.1f} MB; "
                f"{p.total_files} to store")  # fmt: skip
    text = f"{p.phase}: {p.done_files} of {p.total_files} files"
    if p.total_bytes:
        text += f", {p.done_bytes / 1e6:.1f} of {p.total_bytes / 1e6:.1f} MB"
    if p.seconds_left is not None:
        text += f", {_left(p.seconds_left)} left"
    return text


def _left(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def job_line(job: dict) -> str:
    """``7  backup  running  (schedule)  sending: 3 of 9 files...``"""
    line = f"{job['id']:>4}  {job['name']:<10} {job['state']:<9}"
    if job.get("source") != "client":
        line += f" ({job['source']})"
    if job.get("progress") and job["state"] == "running":
        from p2pbackup.engine import events as ev

        line += "  " + progress_line(ev.JobProgress(job["id"], **job["progress"]))
    if job.get("error"):
        line += f"  {job['error']['message']}"
    return line


def run_cancel(args: argparse.Namespace) -> int:
    job = _ask(args, "cancel", {"id": args.id})
    named = f"Job {job['id']} ({job['name']})"
    if job["state"] in ("queued", "running"):
        emit(args, job, f"{named} is being cancelled.")
    else:
        emit(args, job, f"{named} had already ended: {job['state']}.")
    return 0


def run_watch(args: argparse.Namespace) -> int:
    from p2pbackup.cli import client

    home = profile_of(args).require().home
    as_json = getattr(args, "json", False)

    def _print(message: dict) -> None:
        if as_json:
            print(json.dumps(message), flush=True)
        elif (line := watch_line(message)) is not None:
            print(line, flush=True)

    try:
        client.watch(home, _print)
    except client.NoDaemon:
        raise ConfigError(NO_DAEMON) from None
    except BaseException as exc:
        if caught(exc, KeyboardInterrupt):  # the way to stop watching: not a failure
            return 0
        raise
    return 0


def watch_line(message: dict) -> str | None:
    """A message of ``watch`` for people: the time, the job, what happened."""
    if "watching" in message:
        running = len(message["watching"].get("jobs", []))
        print(f"Watching the daemon ({running} job(s) running or queued); Ctrl-C stops.",
              file=sys.stderr)  # fmt: skip
        return None
    from p2pbackup.engine import events as ev

    event = ev.from_dict(message.get("event", {}))
    if event is None:
        return None
    stamp = time.strftime("%H:%M:%S")
    job = f"job {message['job']} " if "job" in message else ""
    if isinstance(event, ev.JobQueued):
        text = f"queued: {event.name}" + (f" ({event.source})" if event.source != "client" else "")
    elif isinstance(event, ev.JobStarted):
        text = f"started: {event.name}"
    elif isinstance(event, ev.JobProgress):
        text = progress_line(event)
    elif isinstance(event, ev.JobFinished):
        text = f"{event.state}: {event.name} ({event.seconds:.1f} s)"
        text += f": {event.error}" if event.error else ""
    elif isinstance(event, ev.EventsDropped):
        text = f"(missed {event.count} events: this terminal read too slowly)"
    else:
        fields = ev.to_dict(event)
        kind = fields.pop("type")
        text = kind + ": " + ", ".join(f"{k}={v}" for k, v in fields.items())
    return f"{stamp} {job}{text}"
