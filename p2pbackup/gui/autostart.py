"""Start at login: a freedesktop (XDG) autostart entry that runs ``p2pbackup gui``.

The entry is ``$XDG_CONFIG_HOME/autostart/<name>.desktop`` (``~/.config`` when the
variable is unset or not absolute, as the XDG Base Directory spec says). The profile in
the platform's data folder gets ``p2pbackup.desktop`` and a command without ``--home``;
any other profile gets its own entry, named after its real path, whose command names it
with ``--home``: a login has no ``P2PBACKUP_HOME``, so an entry without it would start
the wrong profile. Windows and macOS have their own mechanisms; ``supported()`` says
whether this one applies.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys

ENTRY = "p2pbackup"


def supported() -> bool:
    return sys.platform not in ("win32", "darwin")


def _platform_home() -> str:
    """The profile a login starts without ``--home`` (``P2PBACKUP_HOME`` is not set then)."""
    import platformdirs

    return platformdirs.user_data_dir("p2pbackup", appauthor=False)


def _is_default(home: str) -> bool:
    return os.path.realpath(home) == os.path.realpath(_platform_home())


def entry_path(home: str) -> str:
    config = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config):  # the spec: a relative value is ignored
        config = os.path.join(os.path.expanduser("~"), ".config")
    name = ENTRY
    if not _is_default(home):
        digest = hashlib.sha256(os.fsencode(os.path.realpath(home))).hexdigest()[:12]
        name = f"{ENTRY}-{digest}"
    return os.path.join(config, "autostart", f"{name}.desktop")


def command(home: str) -> list[str]:
    """``p2pbackup gui [--home HOME]``, with this installation's command (a virtualenv's
    ``bin`` is not on a login's PATH), else this Python running the CLI module."""
    script = os.path.join(os.path.dirname(sys.executable), "p2pbackup")
    argv = [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "p2pbackup.cli.main"]
    argv.append("gui")
    if not _is_default(home):
        argv += ["--home", os.path.realpath(home)]
    return argv


def _exec_argument(arg: str) -> str:
    """One argument of a desktop entry's Exec key, quoted as the spec asks: reserved
    characters inside double quotes, with ``"`, ``\\``, `` ` `` and ``$`` escaped; ``%``
    doubled (it starts a field code). The file format then escapes backslashes again."""
    arg = arg.replace("%", "%%")
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`="):
        return arg
    quoted = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return '"' + quoted.replace("\\", "\\\\") + '"'


def entry_text(home: str) -> str:
    from PySide6.QtCore import QCoreApplication

    comment = QCoreApplication.translate("autostart", "Back up to your friends' computers")
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Name=p2pbackup",
        f"Comment={comment}",
        "Exec=" + " ".join(_exec_argument(a) for a in command(home)),
        "Icon=p2pbackup",
        "Terminal=false",
        "X-GNOME-Autostart-enabled=true",
        "",
    ])  # fmt: skip


def enabled(home: str) -> bool:
    return os.path.exists(entry_path(home))


def enable(home: str) -> str:
    """Write the entry (atomically, readable by the session that starts it); its path."""
    path = entry_path(home)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(entry_text(home))
    os.replace(temporary, path)
    return path


def disable(home: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(entry_path(home))


def set_enabled(home: str, on: bool) -> None:
    if on:
        enable(home)
    else:
        disable(home)
