"""``bench gui`` end to end with a small backup (slow: three daemons and four app starts)."""

from __future__ import annotations

import pytest

from p2pbackup.bench import gui


@pytest.mark.slow
def test_bench_gui_measures_stalls_and_start_up():
    figures = gui.run(size=3 << 20, runs=1)
    assert figures["files_restored"] == 1
    for phase in ("backup", "restore"):
        assert figures["stall"][phase]["state"] == "finished"
        assert figures["stall"][phase]["ticks"] > 0
        assert figures["stall"][phase]["cpu_max_ms"] is not None
    assert 0 < figures["startup"]["daemon_running_s"]["median"] < 30
    assert 0 < figures["startup"]["app_starts_daemon_s"]["median"] < 30
