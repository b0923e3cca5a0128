"""The stress suite (``p2pbackup/stress``) under pytest: ``pytest -m stress``.

Each scenario drives real daemons on 127.0.0.1 for a minute or more, so the marker keeps
them out of the default run. ``P2PBACKUP_STRESS_SEED`` repeats a run; the seed of a
failure is in its message.
"""

from __future__ import annotations

import os
import random

import pytest

from p2pbackup.stress.harness import Tally
from p2pbackup.stress.suite import DEFAULT_KILLS, SCENARIOS, run_one

SEED = int(os.environ.get("P2PBACKUP_STRESS_SEED") or random.randrange(1 << 32))


@pytest.mark.stress
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_nothing_is_lost(name):
    tally = Tally()
    result = run_one(name, SEED, DEFAULT_KILLS, tally, say=lambda line: None)
    if result["status"] == "skipped":
        pytest.skip(result["error"])
    assert not tally.lost, f"seed {SEED}: {tally.lost}"
    assert result["status"] == "pass", f"seed {SEED}: " + "; ".join(result["problems"])
