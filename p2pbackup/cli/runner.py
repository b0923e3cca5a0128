"""Runs a job for a CLI command: through the profile's daemon when one is running,
else on a node started for the length of the command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import trio

from p2pbackup.cli.common import emit, profile_of
from p2pbackup.daemon import jobs
from p2pbackup.daemon.node import running_node
from p2pbackup.daemon.session import session
from p2pbackup.engine import events as ev


def progress_sink(stream=sys.stderr) -> ev.EventSink:
    """Tell a person at a terminal what is happening; stay quiet for scripts."""
    live = stream.isatty()
    done = [0, 0]

    def _sink(event: ev.Event) -> None:
        if isinstance(event, ev.FileSkipped):
            print(f"\rskipped {event.path}: {event.reason}", file=stream)
        elif isinstance(event, ev.FriendTrouble):
            print(f"\rfriend {event.friend}: {event.reason}", file=stream)
        elif isinstance(event, ev.FileDone) and live:
            done[0] += 1
            done[1] += event.size
            print(f"\r{done[0]} files, {done[1] / 1e6:.1f} MB", end="", file=stream, flush=True)

    return _sink


def run_job(args: argparse.Namespace, name: str, params: dict, text: Callable[[Any], str]) -> int:
    profile = profile_of(args).require()

    async def _main() -> Any:
        async with running_node(profile) as node, session(node, progress_sink()) as s:
            return await jobs.run(s, name, params)

    result = trio.run(_main)
    if sys.stderr.isatty():
        print("\r", end="", file=sys.stderr)
    emit(args, result, text(result))
    return 0
