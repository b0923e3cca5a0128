"""Two homes behind NAT and a rendezvous point, in network namespaces (``-m netns``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


@pytest.mark.netns
def test_friends_behind_two_nats_pair_back_up_and_restore():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"):
        pytest.skip("needs root, iproute2 and iptables")
    done = subprocess.run([sys.executable, "-m", "p2pbackup.netns"],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stderr
    assert "restore byte-exact: True" in done.stdout
