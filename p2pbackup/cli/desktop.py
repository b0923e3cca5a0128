"""``p2pbackup gui``: the desktop app for the profile (and ``p2pbackup`` alone, where a
display is available).

The command line never imports Qt unless the app is asked for: every other command
starts without it (PySide6 alone takes a few hundred milliseconds to load). The app is
loaded by name, ``p2pbackup.gui.app``, because the CLI and the GUI are sibling layers
that do not import each other (docs/decisions.md, "The app's shell").
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from p2pbackup.cli.common import add_home
from p2pbackup.errors import ConfigError
from p2pbackup.storage.profile import default_home

APP = "p2pbackup.gui.app"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "gui",
        help="open the desktop app (also: p2pbackup with no command, on a desktop)",
        description="Open the desktop app for the profile: a tray icon, or a window where "
        "the desktop has no tray. It uses the profile's backup service, and starts one (and "
        "stops it on Quit) when none runs. A second launch brings the open app forward.",
    )
    add_home(parser, default=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def display_available(environ: dict | None = None, platform: str | None = None) -> bool:
    """Whether a window can be shown: always on Windows and macOS; elsewhere an X11 or
    Wayland session, or a Qt platform chosen by hand (QT_QPA_PLATFORM=offscreen)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform == "win32" or platform == "darwin":
        return True
    return any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def run(args: argparse.Namespace) -> int:
    if not display_available():
        raise ConfigError(
            "There is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so the "
            "desktop app cannot open. Everything it does is also a command: see "
            "'p2pbackup --help'."
        )
    app = importlib.import_module(APP)  # by name: see the module's docstring
    return app.main(["--home", args.home or default_home()])
