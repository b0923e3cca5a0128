"""Pairing on a LAN with nothing but the code: mDNS, inside a private network namespace.

The namespace has only a loopback interface with multicast on, so the
announcements never leave this test.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
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


class _Lines:
    """A daemon's log lines on its stderr (``-v``), read as they come."""

    def __init__(self, stream) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._lines.put(line)

    def wait_for(self, *texts: str, timeout: float = 30) -> None:
        missing = set(texts)
        deadline = time.monotonic() + timeout
        while missing:
            line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            missing = {t for t in missing if t not in line}


def _daemon(namespace, home: str, env, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*namespace, *CLI, "--home", home, *extra, "daemon", "--listen", LOOPBACK],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _ready(daemon: subprocess.Popen) -> tuple[subprocess.Popen, str]:
    """The daemon and its peer id, once it runs."""
    first = daemon.stdout.readline()  # "p2pbackup node <peer id> running; ..."
    assert "running" in first, daemon.stderr.read()
    return daemon, first.split()[2]


@pytest.mark.slow  # ten processes start, each in seconds here; tests/daemon/test_join.py is fast
def test_a_joiner_that_heard_a_dead_node_and_a_stranger_still_pairs(namespace, tmp_path):
    env = {**os.environ, "P2PBACKUP_MDNS": "1"}
    homes = {name: str(tmp_path / name) for name in ("ann", "bob", "carol", "gone")}
    inits = [
        subprocess.Popen([*CLI, "--home", home, "init"], stdout=subprocess.DEVNULL)
        for home in homes.values()
    ]
    assert [p.wait() for p in inits] == [0] * len(inits)
    running: list[subprocess.Popen] = []
    try:
        for name, extra in (("gone", ()), ("carol", ()), ("bob", ("-v",))):
            running.append(_daemon(namespace, homes[name], env, *extra))
        # carol is a stranger with no invite; gone will be gone.
        (gone, gone_id), (_, carol_id), (bob, _) = [_ready(d) for d in running]
        bob_log = _Lines(bob.stderr)
        bob_log.wait_for(f"heard node {gone_id}", f"heard node {carol_id}")
        gone.kill()  # gone without a word: Bob's daemon still has it on its list
        gone.wait()
        inviter = subprocess.Popen(
            [*namespace, *CLI, "--home", homes["ann"], "invite", "--listen", LOOPBACK],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        running.append(inviter)
        code = inviter.stdout.readline().strip()

        def join(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*namespace, *CLI, "--home", homes["bob"], "join", *args],
                capture_output=True,
                text=True,
                timeout=90,
                env=env,
            )

        joined = join(code, "--json")
        assert joined.returncode == 0, joined.stderr
        assert json.loads(joined.stdout)["paired"] is True
        bob_log.wait_for(f"forgot node {gone_id}")
        assert inviter.wait(timeout=30) == 0
        # The next join does not dial the dead node again: only the inviter's node, whose
        # invite is over (it stopped), cannot be reached; the stranger holds no such code.
        again = join(f"{int(code.split('-')[0]) % 999 + 1}-guitar-reveal-orbit")
        assert again.returncode == 6, again.stderr
        assert "1 node(s) heard on this network hold no invite by that number" in again.stderr
        assert "and 1 could not be reached" in again.stderr
        assert gone_id not in again.stderr and carol_id not in again.stderr
    finally:
        for process in running:
            process.kill()
