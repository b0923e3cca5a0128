"""The bridge against a real daemon process: requests, errors by kind, a daemon that dies."""

from __future__ import annotations

import pytest

from p2pbackup import errors
from p2pbackup.gui.bridge import DaemonState, Request, Watch, error_of

WAIT = 8000  # ms


def _run(qtbot, home: str, job: str, params: dict | None = None) -> dict:
    """What the request told: {"result": ...} / {"failed": exc} / {"no_daemon": True}..."""
    told: dict = {}
    request = Request(home, job, params)
    request.result.connect(lambda value: told.__setitem__("result", value))
    request.failed.connect(lambda exc: told.__setitem__("failed", exc))
    request.no_daemon.connect(lambda: told.__setitem__("no_daemon", True))
    request.lost.connect(lambda: told.__setitem__("lost", True))
    with qtbot.waitSignal(request.finished, timeout=WAIT):
        request.start()
    return told


def test_status_request_returns_the_daemons_answer(qtbot, laptop):
    told = _run(qtbot, laptop, "status")
    assert set(told) == {"result"}
    assert told["result"]["friends"] == 0
    assert told["result"]["snapshots"] == 0


def test_an_error_arrives_as_the_exception_of_its_kind(qtbot, laptop):
    told = _run(qtbot, laptop, "friends", {"no_such_parameter": 1})
    assert set(told) == {"failed"}
    assert type(told["failed"]) is errors.ConfigError
    assert told["failed"].message  # the daemon's words, for the user


def test_an_unknown_kind_is_the_root_error_and_a_known_one_its_class():
    assert type(error_of({"kind": "PairingError", "message": "used"})) is errors.PairingError
    assert type(error_of({"kind": "os.system", "message": "x"})) is errors.P2PBackupError
    assert type(error_of({"kind": "ValueError", "message": "x"})) is errors.P2PBackupError


def test_no_daemon_is_told_as_such(qtbot, tmp_path):
    assert _run(qtbot, str(tmp_path / "nobody"), "status") == {"no_daemon": True}


def test_the_bridge_speaks_tcp_with_the_token(qtbot, tmp_path, monkeypatch):
    from p2pbackup.cli.localgrid import LocalGrid

    monkeypatch.setenv("P2PBACKUP_CONTROL", "tcp")
    with LocalGrid(str(tmp_path)) as grid:
        grid.init("laptop")
        grid.start("laptop")
        told = _run(qtbot, grid.home("laptop"), "status")
    assert set(told) == {"result"}


def test_a_daemon_killed_under_the_watch_is_noticed_and_found_again(qtbot, grid, laptop):
    watch = Watch(laptop)
    with qtbot.waitSignal(watch.state_changed, timeout=WAIT):
        watch.start()
    assert watch.state is DaemonState.RUNNING

    with qtbot.waitSignal(watch.state_changed, timeout=WAIT) as told:
        grid.stop("laptop", kill=True)
    assert told.args == [DaemonState.NOT_RUNNING]

    with qtbot.waitSignal(watch.state_changed, timeout=WAIT) as told:
        grid.start("laptop")
    assert told.args == [DaemonState.RUNNING]
    watch.stop()


def test_the_watch_hears_a_jobs_events(qtbot, laptop):
    watch = Watch(laptop)
    with qtbot.waitSignal(watch.state_changed, timeout=WAIT):
        watch.start()
    if not watch.has_watch:
        watch.stop()
        pytest.skip("this daemon speaks control protocol 1, without watch")
    heard: list[str] = []
    watch.event.connect(lambda event, _job: heard.append(event.get("type")))
    _run(qtbot, laptop, "friends")
    qtbot.waitUntil(lambda: "JobFinished" in heard, timeout=WAIT)
    assert heard.index("JobQueued") < heard.index("JobFinished")
    watch.stop()
