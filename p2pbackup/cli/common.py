"""What every subcommand shares: the profile it acts on and how it prints."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from p2pbackup.storage.profile import Profile, default_home

# Imported first thing by the command: what it reports as its time is what the user waited.
STARTED = time.monotonic()


def add_home(parser: argparse.ArgumentParser, default: object = None) -> None:
    parser.add_argument(
        "--home",
        default=default,
        help="the profile folder (default: $P2PBACKUP_HOME or the platform's data folder)",
    )


def add_common(
    parser: argparse.ArgumentParser, json_output: bool = True,
    json_help: str = "print one JSON document",
) -> None:  # fmt: skip
    # SUPPRESS: given after the command it wins, given before it (global) it is kept.
    add_home(parser, default=argparse.SUPPRESS)
    parser.add_argument(
        "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help="say more"
    )
    if json_output:
        parser.add_argument("--json", action="store_true", help=json_help)


def profile_of(args: argparse.Namespace) -> Profile:
    return Profile(args.home or default_home())


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with --json, else ``text`` for people."""
    print(json.dumps(data) if getattr(args, "json", False) else text)
    sys.stdout.flush()


def caught(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is a ``kind``, or holds one: trio delivers Ctrl-C and a closed pipe
    inside the exception groups of its nurseries."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(kind) is not None
    return isinstance(exc, kind)


def plural(count: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{count} {word}{'' if count == 1 else 's'}"
