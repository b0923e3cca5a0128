"""The command line builds only the parser of the command it runs, and parses exactly
as the whole parser does."""

from __future__ import annotations

import pytest

from p2pbackup.cli import main

CASES = {
    "status": ["--home", "/h", "status", "--json"],
    "restore": ["-v", "restore", "latest", "--to", "/tmp/out", "Documents/a", "Documents/b"],
    "ls": ["--home=/h", "ls", "latest", "Documents", "-R"],
    "folders": ["folders", "add", "/home/me/Documents"],
    "forget": ["forget", "--keep-daily", "7", "--prune", "--dry-run"],
    "quota": ["quota", "alice", "20G"],
}


@pytest.mark.parametrize("command", CASES)
def test_only_the_command_run_is_built_and_it_parses_as_the_whole_parser(command):
    argv = CASES[command]
    assert main._command(argv) == command
    alone, _ = main._parser(command).parse_known_args(argv)
    whole, _ = main._parser().parse_known_args(argv)
    assert {k: v for k, v in vars(alone).items() if k != "run"} == {
        k: v for k, v in vars(whole).items() if k != "run"
    }


@pytest.mark.parametrize("argv", [["--help"], ["-v"], ["completion", "bash"], []])
def test_help_and_completion_read_the_whole_parser(argv):
    assert main._command(argv) is None


def test_a_mistyped_command_is_told_every_command(capsys):
    with pytest.raises(SystemExit):
        main._parse(["statsu"])
    told = capsys.readouterr().err
    assert "invalid choice: 'statsu'" in told and "'status'" in told and "'restore'" in told
