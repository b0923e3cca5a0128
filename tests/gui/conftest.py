"""GUI tests run offscreen (no screen, no tray) against real daemons on 127.0.0.1."""

from __future__ import annotations

import os

import pytest

from p2pbackup.cli.localgrid import LocalGrid

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
