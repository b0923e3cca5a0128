"""``p2pbackup gui``, and ``p2pbackup`` alone on a desktop: the app for the profile. No
other command loads Qt, and without a display the command says so."""

from __future__ import annotations

import os
import subprocess
import sys
import types

from p2pbackup.cli import desktop
from p2pbackup.cli import main as cli
from p2pbackup.cli.localgrid import CLI

NO_DISPLAY = {k: v for k, v in os.environ.items()
              if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}  # fmt: skip


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=NO_DISPLAY,
                          timeout=60)  # fmt: skip


def test_gui_help_works_without_a_display():
    done = _run("gui", "--help")
    assert done.returncode == 0, done.stderr
    assert "desktop app" in done.stdout and "--home" in done.stdout


def test_without_a_display_gui_says_why_and_no_command_is_the_usage_as_before(tmp_path):
    done = _run("--home", str(tmp_path), "gui")
    assert done.returncode == 2
    assert "no display here" in done.stderr and "p2pbackup --help" in done.stderr
    alone = _run()
    assert alone.returncode == 2 and alone.stderr.startswith("usage: p2pbackup")


def test_only_the_gui_command_loads_qt():
    probe = ("import sys; from p2pbackup.cli import main; main._parse(['gui']); "
             "main._parse(['status']); print('PySide6' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=NO_DISPLAY, timeout=60)  # fmt: skip
    assert done.stdout.strip() == "False", done.stderr


def _launched(monkeypatch) -> list[list[str]]:
    """Stand in for the app: record what it is started with."""
    calls: list[list[str]] = []
    app = types.SimpleNamespace(main=lambda argv: calls.append(argv) or 0)
    monkeypatch.setattr(desktop.importlib, "import_module",
                        lambda name: app if name == desktop.APP else None)  # fmt: skip
    return calls


def test_no_command_on_a_desktop_opens_the_app_for_the_profile(monkeypatch, tmp_path):
    calls = _launched(monkeypatch)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("P2PBACKUP_HOME", str(tmp_path / "from-env"))
    assert cli.main([]) == 0
    assert cli.main(["--home", str(tmp_path / "given")]) == 0
    assert cli.main(["gui", "--home", str(tmp_path / "after")]) == 0
    assert calls == [["--home", str(tmp_path / "from-env")], ["--home", str(tmp_path / "given")],
                     ["--home", str(tmp_path / "after")]]  # fmt: skip


def test_which_platforms_have_a_display():
    assert desktop.display_available({}, "win32") and desktop.display_available({}, "darwin")
    assert not desktop.display_available({}, "linux")
    assert desktop.display_available({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert desktop.display_available({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not desktop.display_available({"DISPLAY": ""}, "linux")
