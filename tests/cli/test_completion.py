"""Shell completion scripts, run by the real shells against a real profile."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from p2pbackup.cli.localgrid import CLI, LocalGrid
from p2pbackup.storage.catalog import Catalog


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    root = tmp_path_factory.mktemp("completion")
    with LocalGrid(str(root)) as grid:
        grid.init("laptop")
        catalog = Catalog(os.path.join(grid.home("laptop"), "catalog.sqlite"))
        catalog.add_friend(b"\1" * 32, "bob", "12D3KooWbob", [], b"", 1 << 30, 1 << 30)
        catalog.close()
        yield grid.home("laptop")


def _script(shell: str) -> str:
    done = subprocess.run([*CLI, "completion", shell], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout


def _bash_complete(script: str, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (an empty one: a fresh word)."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    quoted = " ".join(f"'{w}'" for w in ("p2pbackup", *words))
    program = (f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words)}; _p2pbackup; "
               'printf "%s\\n" "${COMPREPLY[@]}"')  # fmt: skip
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, env=env,
                          timeout=60, check=True)  # fmt: skip
    return done.stdout.split()


def test_bash_completes_commands_options_friends_and_snapshots(profile, tmp_path):
    script = _script("bash")
    assert sorted(_bash_complete(script, "re")) == ["rename", "restore", "resume"]
    assert _bash_complete(script, "restore", "--f") == ["--force"]
    assert _bash_complete(script, "--home", profile, "unfriend", "") == ["bob"]
    # Without a daemon nothing waits on friends: only what needs no node is offered.
    assert _bash_complete(script, "--home", profile, "ls", "l") == ["latest"]
    # The second word of ls is a path in the snapshot, and --to's value is a folder.
    (tmp_path / "somewhere").mkdir()
    assert _bash_complete(script, "restore", "latest", "--to", f"{tmp_path}/some") == [
        f"{tmp_path}/somewhere"
    ]


def test_zsh_and_fish_scripts_cover_every_command():
    zsh, fish = _script("zsh"), _script("fish")
    assert zsh.startswith("#compdef p2pbackup") and "complete -F _p2pbackup p2pbackup" in zsh
    for command in ("backup", "restore", "unfriend", "forget"):
        assert f"-a {command} " in fish
    assert "__fish_seen_subcommand_from unfriend' -a '(p2pbackup __complete friends)'" in fish
    assert "__fish_seen_subcommand_from forget' -l keep-daily" in fish
