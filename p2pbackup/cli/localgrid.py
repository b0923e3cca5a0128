"""Several nodes on this machine, each a separate OS process on loopback.

The demo, the backup benchmark and the end-to-end tests drive real
``p2pbackup`` processes through this: one profile folder per node under a
temporary root, daemons listening on 127.0.0.1, pairing by invite codes.
mDNS is off in the children so nothing reaches the LAN.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from p2pbackup.errors import P2PBackupError

CLI = [sys.executable, "-m", "p2pbackup.cli.main"]
LOOPBACK = "/ip4/127.0.0.1/tcp/0"
TIMEOUT = 600


class GridError(P2PBackupError):
    """A node of the local grid failed; the message has its error output."""


class LocalGrid:
    def __init__(self, root: str) -> None:
        self.root = root
        self.env = {**os.environ, "P2PBACKUP_MDNS": "0", "PYTHONUNBUFFERED": "1"}
        self.env.pop("P2PBACKUP_HOME", None)
        self._daemons: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> LocalGrid:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def home(self, name: str) -> str:
        return os.path.join(self.root, name)

    def command(self, name: str, *args: str, stdin: str | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [*CLI, "--home", self.home(name), *args],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def cli(self, name: str, *args: str, stdin: str | None = None, check: bool = True) -> Any:
        """Run a command with --json on node ``name``; its JSON answer."""
        process = self.command(name, *args, "--json", stdin=stdin)
        out, err = process.communicate(stdin, timeout=TIMEOUT)
        if check and process.returncode:
            raise GridError(f"{name}: p2pbackup {' '.join(args)} failed: {err.strip()}")
        lines = out.strip().splitlines()
        return json.loads(lines[-1]) if lines else None

    def init(self, name: str, recover_phrase: str | None = None) -> dict:
        if recover_phrase is not None:
            return self.cli(name, "init", "--name", name, "--recover", stdin=recover_phrase + "\n")
        return self.cli(name, "init", "--name", name)

    def start(self, name: str, *extra: str) -> None:
        """Start the daemon of ``name``; returns once it listens."""
        process = self.command(name, "daemon", "--listen", LOOPBACK, *extra)
        line = process.stdout.readline()
        if "running" not in line:
            process.kill()
            raise GridError(f"{name}: the daemon did not start: {process.stderr.read().strip()}")
        self._daemons[name] = process

    def running(self, name: str) -> bool:
        return name in self._daemons

    def stop(self, name: str, kill: bool = False) -> None:
        process = self._daemons.pop(name)
        process.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def address(self, name: str) -> str:
        return self.cli(name, "id")["addresses"][0]

    def pair(self, inviter: str, joiner: str, offer: str = "2G") -> dict:
        """``inviter`` makes a code, ``joiner`` joins with it at the inviter's address."""
        invite = self.command(inviter, "invite", "--offer", offer, "--json")
        code = invite.stdout.readline().strip()
        if not code:
            invite.kill()
            raise GridError(f"{inviter}: invite printed no code: {invite.stderr.read().strip()}")
        joined = self.cli(joiner, "join", code, "--peer", self.address(inviter), "--offer", offer)
        invite.communicate(timeout=60)
        return joined

    def close(self) -> None:
        for name in list(self._daemons):
            self.stop(name)
