"""The ``upkeep`` settings job: every value checked before any is written, what changed
told once as ``SettingsChanged("upkeep")``, and the upkeep objects woken."""

from __future__ import annotations

import pytest

from p2pbackup.daemon.settings import run_settings_job
from p2pbackup.daemon.upkeep import UpkeepSettings
from p2pbackup.engine import events as ev
from p2pbackup.errors import ConfigError
from tests.daemon.conftest import make_profile

pytestmark = pytest.mark.trio


async def test_a_change_is_written_and_told_a_bad_value_changes_nothing(tmp_path):
    profile = make_profile(tmp_path, "laptop")
    told: list[ev.Event] = []
    done = await run_settings_job(profile, "upkeep", {"grace": "2d", "keep_weekly": 0,
                                                      "audit_read": "1%"}, told.append)  # fmt: skip
    assert done["changed"] == ["audit_read", "grace", "keep_weekly"]
    assert profile.settings()["upkeep"] == {"grace": 172800.0, "keep_weekly": 0,
                                            "audit_read": 0.01}  # fmt: skip
    assert told == [ev.SettingsChanged("upkeep")]

    same = await run_settings_job(profile, "upkeep", {"grace": 172800}, told.append)
    assert same["changed"] == [] and len(told) == 1  # nothing changed: nothing told
    before = profile.settings()
    for bad in ({"grace": "soon"}, {"audit_every": 0}, {"keep_daily": True},
                {"quota_warn": float("nan")}, {"keep_monthly": 2.5},
                {"keep_hourly": 3, "repack_cpu": 2}):  # fmt: skip
        with pytest.raises(ConfigError):
            await run_settings_job(profile, "upkeep", bad, told.append)
    with pytest.raises(ConfigError, match="Bad parameters for upkeep"):
        await run_settings_job(profile, "upkeep", {"keep_yearly": 3}, told.append)
    assert profile.settings() == before and len(told) == 1
    assert UpkeepSettings.of(profile.settings()).keep_hourly == 24


async def test_the_daemons_upkeep_objects_are_woken_and_shown(tmp_path):
    profile = make_profile(tmp_path, "laptop")

    class _Part:
        def __init__(self) -> None:
            self.woken = 0

        def changed(self) -> None:
            self.woken += 1

        def state(self) -> dict:
            return {"woken": self.woken}

    class _Daemon:  # what the settings jobs see of a daemon: its node, and its parts
        def __init__(self) -> None:
            self.node = type("Node", (), {"profile": profile, "catalog": None})()
            self.auditor, self.retention = _Part(), _Part()

    daemon = _Daemon()
    done = await run_settings_job(daemon, "upkeep", {"audit_every": "12h"}, ev.ignore)
    assert (daemon.auditor.woken, daemon.retention.woken) == (1, 1)
    assert done["auditor"] == done["retention"] == {"woken": 1} and "replacer" not in done
    assert done["daemon"] is True and done["settings"]["audit_every"] == 43200.0
