"""``watch``, ``jobs`` and ``cancel`` against a real daemon process; a client of control
protocol 1 is refused in words that name both versions, and the daemon goes on."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import threading

from p2pbackup.cli.localgrid import LocalGrid


def _lines(process) -> queue.Queue:
    """The process's output lines, read by a thread (a test never hangs on readline)."""
    lines: queue.Queue = queue.Queue()

    def _read() -> None:
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=_read, daemon=True).start()
    return lines


def test_watch_jobs_and_cancel_through_a_real_daemon(tmp_path):
    with LocalGrid(str(tmp_path / "nodes")) as grid:
        grid.init("laptop")
        grid.start("laptop")
        watch = grid.command("laptop", "watch", "--json")
        seen = _lines(watch)
        assert json.loads(seen.get(timeout=10)) == {"watching": {"jobs": []}}
        assert grid.cli("laptop", "friends") == []  # a job: watch sees it from end to end
        told = [json.loads(seen.get(timeout=10)) for _ in range(3)]
        assert [m["event"]["type"] for m in told] == ["JobQueued", "JobStarted", "JobFinished"]
        assert {m["job"] for m in told} == {told[0]["event"]["job"]}
        assert told[-1]["event"]["state"] == "finished"
        listed = grid.cli("laptop", "jobs")
        assert [(j["id"], j["name"], j["state"]) for j in listed] == [
            (told[0]["job"], "friends", "finished")
        ]
        cancel = grid.command("laptop", "cancel", "999")
        _, err = cancel.communicate(timeout=30)
        assert cancel.returncode == 2 and "There is no job 999" in err
        with socket.socket(socket.AF_UNIX) as old:  # a client of version 1
            old.settimeout(10)
            old.connect(os.path.join(grid.home("laptop"), "control.sock"))
            old.sendall(b'{"v": 1, "job": "status", "params": {}}\n')
            answer = json.loads(old.makefile().readline())
        assert answer["error"]["kind"] == "ConfigError"
        assert "speaks control protocol 2, and the client speaks 1" in answer["error"]["message"]
        assert len(grid.cli("laptop", "jobs")) == 1  # still serving, and no job for either
        watch.send_signal(signal.SIGINT)  # how a person stops watching: not a failure
        assert watch.wait(timeout=15) == 0


def test_ctrl_c_leaves_the_job_to_the_daemon_and_says_how_to_cancel_it(tmp_path, monkeypatch,
                                                                        capsys):  # fmt: skip
    import argparse

    import pytest

    from p2pbackup.cli import runner
    from tests.daemon.conftest import make_profile

    profile = make_profile(tmp_path, "laptop")

    def _call(home, name, params, on_event, on_job):
        on_job({"id": 7, "name": name, "state": "queued"})
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.client, "call", _call)
    with pytest.raises(KeyboardInterrupt):
        runner.call_job(argparse.Namespace(home=profile.home, json=False), "backup", {})
    told = capsys.readouterr().err
    assert "goes on with this backup (job 7)" in told and "`p2pbackup cancel 7`" in told


def test_progress_with_totals_as_a_terminal_shows_it():
    from p2pbackup.cli.jobs import progress_line
    from p2pbackup.engine import events as ev

    scanning = ev.JobProgress(3, "scanning", 120, 5_000_000, 10, 1_000_000)
    assert progress_line(scanning) == "scanning: 120 files, 5.0 MB; 10 to store"
    sending = ev.JobProgress(3, "sending", 500, 9e7, 20, 8e7, 5, 2e7, 130.0)
    assert progress_line(sending) == "sending: 5 of 20 files, 20.0 of 80.0 MB, 2 min left"
