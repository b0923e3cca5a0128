"""Errors as the user meets them: a bug is "internal error, see the log", the disk's
refusal a plain StorageError (exit 5), friends away a PeerError naming them (exit 4), a
restore lists every file it could not write and restores the rest (exit 5); with --json
each error carries its exit code. No traceback reaches the terminal."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from p2pbackup.cli import backups
from p2pbackup.cli import main as cli_main
from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.core.keys import new_secret
from p2pbackup.storage import statedb
from p2pbackup.storage.profile import Profile

FRIENDS = ("alice", "bob", "carol", "dave")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("P2PBACKUP_MDNS", "0")
    profile = Profile(str(tmp_path / "profile"))
    profile.create(new_secret())
    return profile.home


def _run(capsys, home: str, *args: str) -> tuple[int, str, str]:
    code = cli_main.main(["--home", home, *args])
    out, err = capsys.readouterr()
    return code, out, err


def _log(home: str) -> str:
    return open(os.path.join(home, "logs", "p2pbackup.log")).read()


def test_a_bug_is_an_internal_error_that_names_the_log(home, capsys, monkeypatch):
    def _buggy(args) -> int:
        return len(None)  # a TypeError from a bug: not "bad parameters"

    monkeypatch.setattr(backups, "run_restore", _buggy)
    log_file = os.path.join(home, "logs", "p2pbackup.log")
    code, out, err = _run(capsys, home, "restore", "latest", "--to", "x")
    assert code == 1 and out == ""
    assert err == f"p2pbackup: internal error, see the log ({log_file})\n"
    assert "Traceback" in _log(home) and "TypeError" in _log(home)
    code, out, err = _run(capsys, home, "restore", "latest", "--to", "x", "--json")
    assert code == 1 and "Traceback" not in err
    assert json.loads(out) == {"error": f"internal error, see the log ({log_file})",
                               "kind": "InternalError", "exit_code": 1}  # fmt: skip


def test_a_profile_whose_state_cannot_be_written_is_a_storage_error(home, capsys, monkeypatch):
    state = os.path.join(home, "state.sqlite")
    statedb.StateDB(state).close()
    real_connect = sqlite3.connect

    def _read_only(path, *args, **kwargs):  # the profile on a read-only disk
        if str(path) == state:
            return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)
        return real_connect(path, *args, **kwargs)

    monkeypatch.setattr(statedb.sqlite3, "connect", _read_only)
    code, out, err = _run(capsys, home, "backup", "--json")
    assert code == 5 and "Traceback" not in err
    error = json.loads(out)
    assert error["kind"] == "StorageError" and error["exit_code"] == 5
    assert error["error"].startswith(f"{state} cannot be written: it is read-only.")

    def _full(args) -> int:  # the disk fills while a job writes its state
        db = real_connect(":memory:")
        db.execute("CREATE TABLE t (x BLOB)")
        db.execute("PRAGMA max_page_count = 2")
        db.execute("INSERT INTO t VALUES (zeroblob(90000))")
        return 0

    monkeypatch.setattr(backups, "run_restore", _full)
    code, out, err = _run(capsys, home, "restore", "latest", "--to", "x")
    assert code == 5 and out == "" and "Traceback" not in err
    assert err.startswith("p2pbackup: The profile's database cannot be written: the disk is full.")


@pytest.mark.slow
def test_restore_reports_every_file_it_cannot_write_and_friends_away_by_name(tmp_path):
    folder = tmp_path / "Docs"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "sub/c.txt", "sub/d.txt"):
        (folder / name).write_text(f"this is {name}\n")
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.init_all(["laptop", *FRIENDS])
        grid.cli("laptop", "schedule", "off")
        grid.start("laptop", *FRIENDS)
        grid.pair("laptop", *FRIENDS)
        grid.cli("laptop", "folders", "add", str(folder))
        grid.cli("laptop", "backup")

        target = tmp_path / "out"
        (target / "Docs" / "b.txt").mkdir(parents=True)  # a folder where a file goes
        (target / "Docs" / "sub").write_text("a file where a folder goes")
        process = grid.command("laptop", "restore", "latest", "--to", str(target), "--force",
                               "--json")  # fmt: skip
        out, err = process.communicate(timeout=120)
        assert process.returncode == 5, err
        result = json.loads(out.strip().splitlines()[-1])
        failed = {e["path"]: e["reason"] for e in result["errors"]}
        assert failed["Docs/b.txt"] == "Is a directory"
        assert {"Docs/sub/c.txt", "Docs/sub/d.txt"} <= set(failed)
        assert result["files"] == 1 and (target / "Docs" / "a.txt").read_text() == (
            "this is a.txt\n"
        )
        process = grid.command("laptop", "restore", "latest", "--to", str(target), "--force")
        out, err = process.communicate(timeout=120)
        assert process.returncode == 5 and "Traceback" not in err
        assert "NOT restored:" in out and "  Docs/b.txt: Is a directory" in out

        for name in ("bob", "carol", "dave"):
            grid.stop(name)
        process = grid.command("laptop", "restore", "latest", "--to", str(tmp_path / "again"),
                               "--json")  # fmt: skip
        out, err = process.communicate(timeout=120)
        assert process.returncode == 4, err
        error = json.loads(out.strip().splitlines()[-1])
        assert error["kind"] == "PeerError" and error["exit_code"] == 4
        assert "away (bob, carol, dave)" in error["error"]
