"""One node per profile: the lock refuses a second holder and frees on exit."""

from __future__ import annotations

import pytest

from p2pbackup.errors import ConfigError
from p2pbackup.storage.profile import NodeLock


def test_a_second_lock_on_a_held_profile_is_refused_until_the_first_is_released(tmp_path):
    path = str(tmp_path / "node.lock")
    first = NodeLock(path).__enter__()
    with pytest.raises(ConfigError, match="already running on this profile"):
        NodeLock(path).__enter__()
    first.__exit__(None, None, None)
    with NodeLock(path):  # released: the next node may start
        pass
