"""Where a command's log goes: a rotating file per profile, and the terminal.

The file gets our records from INFO up (DEBUG with --verbose) and other
libraries' only from WARNING, so a user can send it with a bug report; the
terminal gets only our own records: warnings, or everything with --verbose.
A library's line (libp2p's failed dials, multiaddr's debug chatter) never
reaches the terminal. Nothing logs secrets: keys, the phrase and
invite codes never reach a log call (tests/cli/test_logs.py checks the file).
"""

from __future__ import annotations

import logging
import logging.handlers
import os

from p2pbackup.storage.profile import LOG_NAME, Profile, default_home, log_folder

LOG_BYTES = 1024 * 1024
LOG_FILES = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(home: str | None, verbose: bool) -> str | None:
    """Configure logging for this process; the log file's path, or None if it has none."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    terminal = logging.StreamHandler()
    terminal.setFormatter(logging.Formatter("p2pbackup: %(message)s"))
    terminal.setLevel(logging.DEBUG if verbose else logging.WARNING)
    terminal.addFilter(_ours)
    # The command prints its own error line; the log file keeps it too.
    terminal.addFilter(lambda record: not getattr(record, "file_only", False))
    root.addHandler(terminal)
    # libp2p turns off propagation, so its records would reach Python's last-resort stderr
    # handler: send them through ours instead (where only the file takes them).
    libp2p = logging.getLogger("libp2p")
    libp2p.setLevel(logging.WARNING)
    libp2p.propagate = True
    profile = Profile(home or default_home())
    if not profile.exists:
        return None
    folder = log_folder(profile.home)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            os.path.join(folder, LOG_NAME), maxBytes=LOG_BYTES, backupCount=LOG_FILES,
            encoding="utf-8", errors="backslashreplace",  # a file name that is not UTF-8
        )  # fmt: skip
    except OSError:
        return None  # a read-only home: log to the terminal only
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.addFilter(lambda record: _ours(record) or record.levelno >= logging.WARNING)
    root.addHandler(handler)
    return handler.baseFilename


def _ours(record: logging.LogRecord) -> bool:
    return record.name == "p2pbackup" or record.name.startswith("p2pbackup.")
