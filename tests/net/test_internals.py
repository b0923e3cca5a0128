"""The one module that touches py-libp2p's internals refuses any version but the pinned one."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from p2pbackup.errors import ConfigError
from p2pbackup.net import internals
from p2pbackup.net.host import NodeIdentity, build_host


def test_the_checked_version_is_the_pinned_one():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert f"libp2p=={internals.LIBP2P_VERSION}" in pyproject["project"]["dependencies"]


def test_a_node_refuses_to_start_on_another_libp2p(monkeypatch):
    monkeypatch.setattr(internals, "_applied", False)  # as in a fresh process
    monkeypatch.setattr(internals.importlib.metadata, "version", lambda name: "0.9.0")
    with pytest.raises(ConfigError) as caught:
        build_host(NodeIdentity.from_seed(b"v" * 32))
    assert "needs py-libp2p 0.8.1, but 0.9.0 is installed" in caught.value.message
    assert caught.value.exit_code == 2


def test_the_pinned_version_starts():
    internals.check_version()  # the installed one is the pinned one
