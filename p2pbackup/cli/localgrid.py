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
        return self._answer(name, args, process, stdin, check)

    def init(self, name: str, recover_phrase: str | None = None) -> dict:
        if recover_phrase is not None:
            return self.cli(name, "init", "--name", name, "--recover", stdin=recover_phrase + "\n")
        return self.cli(name, "init", "--name", name)

    def init_all(self, names: list[str]) -> dict[str, dict]:
        """``init`` several profiles at once (each is a process: start-up dominates)."""
        started = {name: self.command(name, "init", "--name", name, "--json") for name in names}
        return {name: self._answer(name, ("init",), process) for name, process in started.items()}

    def _answer(
        self, name: str, args: tuple, process: subprocess.Popen, stdin: str | None = None,
        check: bool = True,
    ) -> Any:  # fmt: skip
        """The JSON document a command printed last; GridError if it failed."""
        out, err = process.communicate(stdin, timeout=TIMEOUT)
        if check and process.returncode:
            raise GridError(f"{name}: p2pbackup {' '.join(args)} failed: {err.strip()}")
        lines = out.strip().splitlines()
        return json.loads(lines[-1]) if lines else None

    def start(self, *names: str) -> None:
        """Start the daemons of ``names`` together; returns once all listen."""
        started = {name: self.command(name, "daemon", "--listen", LOOPBACK) for name in names}
        for name, process in started.items():
            line = process.stdout.readline()
            if "running" not in line:
                process.kill()
                raise GridError(f"{name}: no daemon: {process.stderr.read().strip()}")
            self._daemons[name] = process

    def pids(self, *names: str) -> tuple[int, ...]:
        """The process ids of the running daemons of ``names`` (to count their CPU)."""
        return tuple(self._daemons[name].pid for name in names)

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

    def pair(self, inviter: str, *joiners: str, offer: str = "2G") -> None:
        """``inviter`` makes one code per joiner; they all join at once at its address."""
        address = self.address(inviter)
        invites, joins = [], []
        for joiner in joiners:
            invite = self.command(inviter, "invite", "--offer", offer, "--json")
            line = invite.stdout.readline().strip()  # --json: the code's own JSON line
            ready = json.loads(line) if line else {}
            if "code" not in ready:
                invite.kill()
                why = ready.get("error") or invite.stderr.read().strip()
                raise GridError(f"{inviter}: no invite code: {why}")
            code = ready["code"]
            invites.append(invite)
            joins.append((joiner, self.command(joiner, "join", code, "--peer", address,
                                               "--offer", offer, "--json")))  # fmt: skip
        for joiner, process in joins:
            self._answer(joiner, ("join",), process)
        for invite in invites:
            invite.communicate(timeout=60)

    def close(self) -> None:
        for name in list(self._daemons):
            self.stop(name)
