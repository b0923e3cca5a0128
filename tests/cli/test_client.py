"""A command the daemon answers never imports trio (or libp2p, or the engine): the
process start is most of what a person waits for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from p2pbackup.cli.localgrid import LocalGrid

PROBE = """
import json, sys
from p2pbackup.cli.main import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in ("trio", "libp2p", "spake2", "zfec", "p2pbackup.engine.backup")
               if m in sys.modules)
print(json.dumps({"rc": rc, "heavy": heavy}))
"""


def _probe(grid: LocalGrid, name: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--home", grid.home(name), *args, "--json"],
        capture_output=True, text=True, env=grid.env, timeout=60,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def one_daemon(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.init("laptop")
        grid.cli("laptop", "schedule", "off")
        grid.start("laptop")
        yield grid


@pytest.mark.parametrize("command", [("status",), ("friends",), ("snapshots",)])
def test_a_command_the_daemon_answers_imports_no_event_loop(one_daemon, command):
    answer = _probe(one_daemon, "laptop", *command)
    assert answer["rc"] == 0
    assert answer["heavy"] == []


def test_without_a_daemon_the_command_runs_a_node_itself(one_daemon):
    one_daemon.stop("laptop")
    answer = _probe(one_daemon, "laptop", "friends")
    assert answer["rc"] == 0
    assert "trio" in answer["heavy"]  # it ran a node of its own, so the probe can tell
