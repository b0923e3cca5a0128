"""The compiled-stage floor that ``bench backup`` reports beside restic's CPU."""

from __future__ import annotations

import json
import subprocess
import sys

from p2pbackup.bench import floor


def test_the_floor_measures_every_stage_and_adds_them_up():
    figures = floor.run(2, 4, size=4 << 20)
    assert (figures["k"], figures["n"]) == (2, 4)
    backup, restore = figures["backup"], figures["restore"]
    assert set(backup) == {"signature", "seal", "erasure_parity", "share_tree", "noise", "sum"}
    assert set(restore) == {"noise", "open", "sum"}
    for stages in (backup, restore):
        parts = [v for k, v in stages.items() if k != "sum"]
        assert all(v > 0 for v in parts)
        assert abs(stages["sum"] - sum(parts)) < 0.02


def test_the_floor_runs_as_its_own_process():
    done = subprocess.run(
        [sys.executable, "-m", "p2pbackup.bench.floor", "3", "5", "2"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    figures = json.loads(done.stdout)
    assert (figures["k"], figures["n"]) == (3, 5) and figures["backup"]["sum"] > 0
