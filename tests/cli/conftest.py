"""What the CLI tests share."""

from __future__ import annotations

import pytest

from p2pbackup.cli.localgrid import LocalGrid

FRIENDS = ("alice", "bob", "carol")


@pytest.fixture
def paired(tmp_path):
    """The laptop's daemon and three friends' daemons, real processes on 127.0.0.1, paired;
    scheduled backups off, so every backup is the test's."""
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.init_all(["laptop", *FRIENDS])
        grid.cli("laptop", "schedule", "off")
        grid.start("laptop", *FRIENDS)
        grid.pair("laptop", *FRIENDS)
        yield grid
