"""Pairing on a LAN with nothing but the code: mDNS, inside a private network namespace.

The namespace has only a loopback interface with multicast on, so the
announcements never leave this test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

CLI = [sys.executable, "-m", "p2pbackup.cli.main"]
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


@pytest.fixture
def namespace():
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 to make a private network namespace")
    name = f"p2pb-{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode:
        pytest.skip("network namespaces are not available here")
    try:
        for command in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "link", "set", "lo", "multicast", "on"],
            ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"],
        ):
            subprocess.run(["ip", "netns", "exec", name, *command], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def test_join_finds_the_inviter_on_the_lan(namespace, tmp_path):
    env = {**os.environ, "P2PBACKUP_MDNS": "1"}
    ann, bob = str(tmp_path / "ann"), str(tmp_path / "bob")
    for home in (ann, bob):
        subprocess.run([*CLI, "--home", home, "init"], check=True, capture_output=True)
    inviter = subprocess.Popen(
        # Listening everywhere, as by default: it must announce a dialable address.
        [*namespace, *CLI, "--home", ann, "invite", "--listen", "/ip4/0.0.0.0/tcp/0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        code = inviter.stdout.readline().strip()
        joined = subprocess.run(
            [*namespace, *CLI, "--home", bob, "join", code, "--listen", LOOPBACK, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert joined.returncode == 0, joined.stderr
        assert json.loads(joined.stdout)["paired"] is True
        inviter.communicate(timeout=30)
        assert inviter.returncode == 0
        # Bob's node comes back on another port; Ann hears it on the LAN.
        daemon = subprocess.Popen(
            [*namespace, *CLI, "--home", bob, "daemon", "--listen", LOOPBACK],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            daemon.stdout.readline()
            friends = subprocess.run(
                [*namespace, *CLI, "--home", ann, "friends", "--json"],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
            assert json.loads(friends.stdout)[0]["online"] is True, friends.stderr
        finally:
            daemon.kill()
    finally:
        inviter.kill()
