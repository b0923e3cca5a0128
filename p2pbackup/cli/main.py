"""The p2pbackup command line: one subcommand per ability, each a thin client."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from p2pbackup import __version__
from p2pbackup.cli import backups, browse, completion, demo, desktop, friends, jobs, settings, setup
from p2pbackup.cli import upkeep as upkeep_cli
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


def _parser(wanted: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``wanted``, only that command's parser is built (each
    costs about a millisecond, mostly argparse asking gettext for its words, and a
    command the daemon answers takes a few)."""
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
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = subparsers if wanted is None else _Only(subparsers, wanted)
    setup.add_parsers(commands)
    friends.add_parsers(commands)
    settings.add_parsers(commands)  # what to back up, first
    backups.add_parsers(commands)
    browse.add_parsers(commands)
    jobs.add_parsers(commands)  # jobs, cancel, watch: the daemon's
    upkeep_cli.add_parsers(commands)  # audits, re-placement, retention
    demo.add_parser(commands)
    desktop.add_parser(commands)  # gui
    completion.add_parser(commands, parser)
    if wanted is not None and not commands.found:  # a typo: argparse lists every command
        return _parser()
    return parser


class _Only:
    """The subcommands as the modules register them, keeping only the one being run; the
    others get a stand-in that takes every call and builds nothing."""

    def __init__(self, subparsers: argparse._SubParsersAction, wanted: str) -> None:
        self._subparsers, self._wanted, self.found = subparsers, wanted, False

    def add_parser(self, name: str, **kwargs: object) -> object:
        if name == self._wanted:
            self.found = True
            return self._subparsers.add_parser(name, **kwargs)
        return _Skipped()


class _Skipped:
    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: self


def _command(argv: list[str]) -> str | None:
    """The command named in ``argv`` (its first word that is neither an option nor the
    value of ``--home``); None when there is none, or help or the completion script is
    wanted (those read the whole parser)."""
    words = iter(argv)
    for word in words:
        if word == "--home":
            next(words, None)
        elif word in ("-h", "--help"):
            return None
        elif not word.startswith("-"):
            return None if word in ("completion", "__complete") else word
    return None


INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `ls | head` when ls is cut off


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The arguments; options and paths may come in any order, as README shows them
    (``restore latest --to DIR Documents/notes``): paths that argparse could not place
    after an option go to the command's ``more_paths`` list, if it takes one."""
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser(_command(argv))
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


def _only_options(argv: list[str]) -> bool:
    """No command, and nothing asked of the parser itself (help, version): ``p2pbackup``
    alone, or with ``--home DIR`` or ``--verbose``."""
    words = iter(argv)
    for word in words:
        if word == "--home":
            next(words, None)
        elif not (word.startswith("--home=") or word in ("--verbose", "-v")):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if _only_options(argv) and desktop.display_available():
        argv = [*argv, "gui"]  # launched from a desktop: the app (without one: the usage)
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


def run() -> None:
    """The ``p2pbackup`` command: ``main``, then out without tearing the interpreter down.
    Freeing every module one by one takes about 40 ms, a third of a command the daemon
    answers, and nothing is left to do by then: every file and socket was closed by its
    own ``with``. Output and the log are flushed first; ``atexit`` handlers do not run."""
    code = main()
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away after the last write
        code = code or BROKEN_PIPE
    os._exit(code)


if __name__ == "__main__":
    run()
