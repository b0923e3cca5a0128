"""The CLI reaches its daemon over loopback with a token (the Windows transport), and
runs the node itself when control.json is a dead daemon's."""

from __future__ import annotations

import json
import pathlib

from p2pbackup.cli.localgrid import LocalGrid


def test_the_cli_over_loopback_and_after_the_daemon_died(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.env["P2PBACKUP_CONTROL"] = "tcp"
        grid.init("laptop")
        grid.start("laptop")
        control_file = pathlib.Path(grid.home("laptop"), "control.json")
        token = json.loads(control_file.read_text())["token"]
        assert grid.cli("laptop", "friends") == []
        assert _logs(grid).count("control: friends") == 1 and token not in _logs(grid)
        grid.stop("laptop", kill=True)  # SIGKILL: control.json stays, naming a closed port
        assert control_file.exists()
        assert grid.cli("laptop", "friends") == []  # the CLI ran the node itself
        assert _logs(grid).count("control: friends") == 1


def _logs(grid: LocalGrid) -> str:
    logs = pathlib.Path(grid.home("laptop"), "logs")
    return "".join(p.read_text() for p in logs.iterdir())
