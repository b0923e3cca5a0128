"""GUI tests run offscreen (no screen, no tray) against real daemons on 127.0.0.1."""

from __future__ import annotations

import os
from typing import Any

import pytest

from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.gui.bridge import Request

# Before pytest-qt makes the QApplication: every GUI test draws offscreen.
os.environ["QT_QPA_PLATFORM"] = "offscreen"


@pytest.fixture
def grid(tmp_path):
    with LocalGrid(str(tmp_path)) as local:
        yield local


@pytest.fixture
def laptop(grid) -> str:
    """The home of a profile whose daemon runs (started by the test, not by the app)."""
    grid.init("laptop")
    grid.start("laptop")
    return grid.home("laptop")


@pytest.fixture
def answer(qtbot):
    """``answer(home, job)``: the daemon's answer to one request, waited for (a test
    checks what a window did by asking the daemon, as the CLI would)."""

    def ask(home: str, job: str, timeout: int = 15000) -> Any:
        told: list = []
        request = Request(home, job)
        request.result.connect(told.append)
        with qtbot.waitSignal(request.finished, timeout=timeout):
            request.start()
        return told[0]

    return ask
