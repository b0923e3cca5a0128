"""README's examples, run command by command against a local grid, as a reader would type
them: README and the CLI cannot drift apart. A `p2pbackup` line that README gains must be
run here, or named in NOT_RUN with the reason."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
from datetime import datetime, timedelta

from p2pbackup.cli.localgrid import LocalGrid
from tests.daemon.test_cycle import make_tree

README = pathlib.Path(__file__).parents[2] / "README.md"
SECTIONS = ("Friends", "Backups", "Shell completion")

NOT_RUN = {
    # Writes outside the test's home: checked as `p2pbackup completion SHELL` instead.
    "p2pbackup completion bash > ~/.local/share/bash-completion/completions/p2pbackup",
    'p2pbackup completion zsh > "${fpath[1]}/_p2pbackup"',
    "p2pbackup completion fish > ~/.config/fish/completions/p2pbackup.fish",
}


def readme_commands() -> list[str]:
    """Every `p2pbackup` line of the sh blocks in SECTIONS, comments stripped."""
    text = README.read_text()
    lines = []
    for section in SECTIONS:
        body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
        for block in re.findall(r"```sh\n(.*?)```", body, re.S):
            for line in block.splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command.startswith("p2pbackup "):
                    lines.append(command)
    return lines


def _variants(command: str) -> list[str]:
    """A README line as the command it stands for: `[--x]` optional flags given, and
    `[PATH...]` a path in the snapshot."""
    command = command.replace(" [PATH...]", " Documents/notes")
    return [re.sub(r"\[(--[\w-]+)\]", r"\1", command)]


def test_every_readme_example_runs(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    make_tree(home)  # ~/Documents, with notes/ in it
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.init_all(["desktop", "alice", "bob", "carol"])
        grid.start("desktop", "alice", "bob", "carol")
        # Two more friends: README unfriends bob, and k=2 of n=4 needs two to be safe.
        grid.pair("desktop", "bob", "carol")
        env = {
            **grid.env,
            "HOME": str(home),
            "P2PBACKUP_HOME": grid.home("desktop"),
            "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        }
        facts: dict[str, str] = {}

        def run(command: str, **extra: str) -> str:
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                                  env={**env, **extra}, timeout=300)  # fmt: skip
            assert done.returncode == 0, f"{command}: {done.stderr}"
            return done.stdout

        ran = []
        for line in readme_commands():
            if line in NOT_RUN:
                continue
            for command in _variants(line):
                command = _concrete(command, facts)
                if command.startswith("p2pbackup invite"):
                    _invite_and_join(grid, command, env, facts)
                elif command.startswith("p2pbackup join"):
                    pass  # run by the invite above, at the friend
                else:
                    out = run(command)
                    if command == "p2pbackup backup":
                        facts["snapshot"] = json.loads(run("p2pbackup snapshots --json"))[0]["id"]
                    if command.startswith("p2pbackup friends"):
                        assert "alice" in out and "bob" in out
                ran.append(command)
        assert (home / "restored" / "Documents" / "notes" / "todo.txt").exists()
        assert len(ran) >= 20, ran
        assert run("p2pbackup completion bash").startswith("# p2pbackup completion")


def _concrete(command: str, facts: dict[str, str]) -> str:
    """Placeholders as a reader fills them in."""
    if "snapshot" in facts:
        command = command.replace(" 3f2a", " " + facts["snapshot"][:8])
    soon = (datetime.now() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")  # after backup
    return command.replace("2026-11-20T18:00", soon)


def _invite_and_join(grid: LocalGrid, command: str, env: dict, facts: dict) -> None:
    """The desktop invites as README shows; alice types what the invite told her to."""
    invite = subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    code = invite.stdout.readline().strip()
    told = ""
    while "--peer" not in told:
        told = invite.stderr.readline()
        assert told, "invite did not say what the friend types"
    join = told.split("p2pbackup ", 1)[1].split()  # join CODE --peer ADDR
    assert join[:2] == ["join", code]
    joined = grid.cli("alice", *join, "--offer", "20G")
    assert joined["name"] == "desktop"
    out, err = invite.communicate(timeout=60)
    assert invite.returncode == 0, err
    assert "Paired with alice" in out
    facts["code"] = code
