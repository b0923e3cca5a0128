"""Settings every test shares."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_multicast_outside_test_namespaces(monkeypatch):
    """mDNS would announce on the machine's real network; tests that want it turn it
    back on inside a network namespace of their own (tests/cli/test_mdns.py)."""
    monkeypatch.setenv("P2PBACKUP_MDNS", "0")
