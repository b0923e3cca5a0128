"""The p2pbackup command line: one subcommand per ability, each a thin client."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from p2pbackup import __version__
from p2pbackup.cli import backups, browse, completion, demo, friends, jobs, settings, setup
from p2pbackup.cli.common import add_home, caught
from p2pbackup.cli.logs import setup_logging
from p2pbackup.engine.failures import leaves, one_error
from p2pbackup.errors import InternalError, P2PBackupError
from p2pbackup.storage.diskerrors import first_storage_error

log = logging.getLogger("p2pbackup")


EXIT_CODES = """exit codes:
  0    done
  1    internal error (a bug: the log has the details)
  2    usage or settings: a wrong option, path or value
  3    integrity: data damaged or lost (verify: a record is lost)
  4    a friend's node: unreachable, or it misbehaved (verify: a record is at risk)
  5    storage: the disk is full or read-only, or a file is missing
  6    pairing: a wrong, used or expired invite code
  130  interrupted (Ctrl-C)
  141  the output was closed (as by `| head`)"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2pbackup",
        description="Friends back each other up: encrypted, erasure-coded backups.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"p2pbackup {__version__}")
    add_home(parser)
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="say more, here and in the log"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    setup.add_parsers(commands)
    friends.add_parsers(commands)
    settings.add_parsers(commands)  # what to back up, first
    backups.add_parsers(commands)
    browse.add_parsers(commands)
    jobs.add_parsers(commands)  # jobs, cancel, watch: the daemon's
    demo.add_parser(commands)
    completion.add_parser(commands, parser)
    return parser


INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `ls | head` when ls is cut off


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The arguments; options and paths may come in any order, as README shows them
    (``restore latest --to DIR Documents/notes``): paths that argparse could not place
    after an option go to the command's ``more_paths`` list, if it takes one."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    takes = getattr(args, "more_paths", None)
    given = getattr(args, takes, None) if takes else None
    if takes and not any(word.startswith("-") for word in extra):
        if isinstance(given, list):
            setattr(args, takes, [*given, *extra])
            return args
        if not given and len(extra) == 1:  # a command that takes one path
            setattr(args, takes, extra[0])
            return args
    parser.error(f"unrecognized arguments: {' '.join(extra)}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    log_file = setup_logging(args.home, args.verbose)
    log.info("p2pbackup %s: %s", __version__, args.command)
    try:
        with one_error():  # a failure inside the node's task group is still one error
            return args.run(args)
    except P2PBackupError as exc:
        return _failed(args, exc)
    except BaseException as exc:
        # trio delivers Ctrl-C and a closed pipe inside the exception groups of its nurseries.
        if caught(exc, KeyboardInterrupt):
            print("p2pbackup: interrupted", file=sys.stderr)
            return INTERRUPTED
        if caught(exc, BrokenPipeError):
            _silence_stdout()
            return BROKEN_PIPE
        if not isinstance(exc, Exception):  # SystemExit and the like: Python's to handle
            raise
        # The disk's refusal is the user's to act on; anything else is a bug, whose
        # traceback goes to the log, never to the terminal dressed as their mistake.
        disk = first_storage_error(leaves(exc))
        if disk is None and log_file is None:  # no log to send it to: the terminal must do
            raise
        log.error("%s failed", args.command, exc_info=exc, extra={"file_only": True})
        return _failed(args, disk or InternalError.see_log(log_file), logged=True)


def _failed(args: argparse.Namespace, exc: P2PBackupError, logged: bool = False) -> int:
    """Tell the error, for people or (``--json``) as one document with the exit code."""
    if not logged:
        log.error("%s failed: %s", args.command, exc.message, extra={"file_only": True})
    if getattr(args, "json", False):
        print(json.dumps({"error": exc.message, "kind": type(exc).__name__,
                          "exit_code": exc.exit_code}))  # fmt: skip
    else:
        print(f"p2pbackup: {exc.message}", file=sys.stderr)
    return exc.exit_code


def _silence_stdout() -> None:
    """The reader went away: drop what is still buffered, so the exit flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
