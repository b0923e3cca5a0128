"""Runs a job for a CLI command: through the profile's daemon when one is running,
else on a node started for the length of the command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from p2pbackup.cli import client
from p2pbackup.cli.common import caught, emit, profile_of
from p2pbackup.cli.jobs import progress_line
from p2pbackup.core import names
from p2pbackup.errors import PeerError

if TYPE_CHECKING:  # imported at the first event (see cli/client.py)
    from p2pbackup.engine import events as ev

REDRAW = 0.1  # seconds between redraws of the progress line


def progress_sink(stream=sys.stderr, json_lines: bool = False) -> ev.EventSink:
    """Tell a person at a terminal what is happening; scripts get warnings only.

    An invite's code goes to standard output as soon as it exists, alone on its line
    (with ``json_lines``, as a JSON object of its own line, before the result's)."""
    live = stream.isatty()
    done = [0, 0]
    shown = [0.0]  # when the count was last drawn: a terminal redraw per file costs more
    totals = [False]  # the daemon sends JobProgress, with totals: drawn instead of the count

    def _sink(event: ev.Event) -> None:
        from p2pbackup.engine import events as ev

        if isinstance(event, ev.InviteReady):
            if json_lines:
                print(json.dumps(ev.to_dict(event)), flush=True)
            else:
                print(event.code, flush=True)  # alone on the first line of stdout, for scripts
            print(join_help(event), file=stream, flush=True)
        elif isinstance(event, ev.FileSkipped):
            print(f"\rskipped {names.shown(event.path)}: {event.reason}", file=stream)
        elif isinstance(event, ev.FriendTrouble):
            print(f"\rfriend {event.friend}: {event.reason}", file=stream)
        elif isinstance(event, ev.HeadRolledBack):
            print(f"\rfriend {event.friend} went back in time: it holds head {event.seen}, "
                  f"it held {event.known}", file=stream)  # fmt: skip
        elif isinstance(event, ev.RecordsMissing):
            print(f"\r{event.records} records are no longer on friends: stored again",
                  file=stream)  # fmt: skip
        elif isinstance(event, ev.SnapshotDamaged):
            print(f"\rsnapshot {event.snapshot_id.hex()[:12]} is damaged: {event.reason}",
                  file=stream)  # fmt: skip
        elif isinstance(event, ev.JobProgress) and live:
            totals[0] = True
            print(f"\r{progress_line(event)}".ljust(79), end="", file=stream, flush=True)
        elif isinstance(event, ev.FileDone | ev.FilesUnchanged) and live and not totals[0]:
            files = event.files if isinstance(event, ev.FilesUnchanged) else 1
            done[0] += files
            done[1] += event.size
            if time.monotonic() - shown[0] >= REDRAW:
                shown[0] = time.monotonic()
                print(f"\r{done[0]} files, {done[1] / 1e6:.1f} MB", end="", file=stream,
                      flush=True)  # fmt: skip

    return _sink


def join_help(invite: ev.InviteReady) -> str:
    """What the friend types to join: the exact command, for the LAN and from elsewhere."""
    lines = ["Give your friend the code. On the same network, they type:",
             f"    p2pbackup join {invite.code}"]  # fmt: skip
    if invite.rendezvous:
        lines += ["From elsewhere, through your rendezvous point:",
                  f"    p2pbackup join {invite.code} --rendezvous {invite.rendezvous}"]  # fmt: skip
    for address in invite.addresses[:1]:
        lines += ["From elsewhere, if your node can be reached directly:",
                  f"    p2pbackup join {invite.code} --peer {address}"]  # fmt: skip
    return "\n".join(lines)


async def _local(args: argparse.Namespace, name: str, params: dict, sink: ev.EventSink) -> Any:
    from p2pbackup.daemon.settings import SETTINGS_JOBS, run_settings_job

    if name in SETTINGS_JOBS:  # no daemon runs: this process changes the profile, as one would
        return await run_settings_job(profile_of(args), name, params, sink)
    # Imported here: a command that the daemon runs never needs libp2p (half a second).
    from p2pbackup.daemon import browse, jobs
    from p2pbackup.daemon.node import running_node
    from p2pbackup.daemon.pairing import HEARD_ON_LAN, NODE_JOBS, run_node_job
    from p2pbackup.daemon.session import session

    profile = profile_of(args)
    if (copy := await browse.from_copy(profile, name, params)) is not None:
        return copy  # a page of a snapshot this device holds: no node needed
    node_args = (getattr(args, "listen", None), getattr(args, "rendezvous", None))
    async with running_node(profile, *node_args, announce=name in HEARD_ON_LAN) as node:
        if name in NODE_JOBS:
            return await run_node_job(node, name, params, sink)
        async with session(node, sink) as s:
            return await jobs.run(s, name, params)


# Jobs that change something: a daemon carries them on when the CLI that asked goes away.
_LASTING_JOBS = frozenset({"backup", "restore", "verify", "forget"})


def run_here(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``main`` on trio in this process: no daemon runs, so this command is the node."""
    import trio  # here: a command the daemon answers never pays for importing it

    from p2pbackup import runtime

    runtime.tune_malloc()  # before any worker thread starts (it sets the malloc arenas)
    return trio.run(main)


def call_job(args: argparse.Namespace, name: str, params: dict) -> Any:
    """The job's result, from the daemon of the profile or from a node run here."""
    profile = profile_of(args).require()
    sink = progress_sink(json_lines=getattr(args, "json", False))
    taken: list[dict] = []  # the job as the daemon took it: its id
    try:
        try:
            return client.call(profile.home, name, params, sink, taken.append)
        except client.NoDaemon:
            pass
        return run_here(lambda: _local(args, name, params, sink))
    except BaseException as exc:
        if taken and name in _LASTING_JOBS and caught(exc, KeyboardInterrupt):
            # Ctrl-C leaves the job to the daemon: say how to stop it, by its id
            job = taken[0]["id"]
            print(f"\rp2pbackup: the daemon goes on with this {name} (job {job}) in the "
                  f"background; `p2pbackup jobs` shows it, `p2pbackup cancel {job}` stops it.",
                  file=sys.stderr)  # fmt: skip
        raise
    finally:
        if sys.stderr.isatty():
            print("\r", end="", file=sys.stderr)


Ask = client.Ask


def call_jobs(args: argparse.Namespace, work: Callable[[Ask], Awaitable[Any]]) -> Any:
    """What ``work`` returns, given a way to ask for several jobs in a row (the pages of a
    listing): from the daemon, or from one node this command runs for all of them."""
    profile = profile_of(args).require()
    sink = progress_sink(json_lines=getattr(args, "json", False))
    asked = [False]

    async def _daemon_work(ask: Ask) -> Any:
        async def _ask(name: str, params: dict) -> Any:
            result = await ask(name, params)
            asked[0] = True
            return result

        return await work(_ask)

    try:
        return client.run_with(profile.home, sink, _daemon_work)
    except client.NoDaemon:
        if asked[0]:  # it went away in the middle: say so rather than start over
            raise PeerError("The daemon stopped while answering; run the command again.") from None

    async def _main() -> Any:
        async with _local_jobs(args, sink) as ask:
            return await work(ask)

    return run_here(_main)


@asynccontextmanager
async def _local_jobs(args: argparse.Namespace, sink: ev.EventSink) -> AsyncIterator[Ask]:
    """Jobs run here, in one session started at the first job that needs friends."""
    from p2pbackup.daemon import browse, jobs
    from p2pbackup.daemon.node import running_node
    from p2pbackup.daemon.session import session

    profile = profile_of(args)
    node_args = (getattr(args, "listen", None), getattr(args, "rendezvous", None))
    async with AsyncExitStack() as stack:
        held = []

        async def _ask(name: str, params: dict) -> Any:
            if (copy := await browse.from_copy(profile, name, params)) is not None:
                return copy
            if not held:
                node = await stack.enter_async_context(running_node(profile, *node_args))
                held.append(await stack.enter_async_context(session(node, sink)))
            return await jobs.run(held[0], name, params)

        yield _ask


def run_job(args: argparse.Namespace, name: str, params: dict, text: Callable[[Any], str]) -> int:
    result = call_job(args, name, params)
    emit(args, result, text(result))
    return 0
