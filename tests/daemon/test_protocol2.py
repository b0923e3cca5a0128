"""Control protocol 2 against the daemon as it runs (in this process, on real libp2p
hosts on 127.0.0.1): job ids, watch, cancel, status without the job lock, several
clients at once, and clear errors for what a client gets wrong."""

from __future__ import annotations

import contextlib
import json
import os

import pytest
import trio

from p2pbackup import errors
from p2pbackup.daemon import control, endpoint, jobs
from p2pbackup.daemon.daemon import Daemon
from p2pbackup.daemon.watch import Outbox
from p2pbackup.engine import events as ev
from tests.daemon.conftest import started

pytestmark = pytest.mark.trio

FRIENDS = ("alice", "bob", "carol")


@contextlib.asynccontextmanager
async def _daemon(tmp_path, **settings):
    """The laptop's daemon, serving its control socket, with three friends' nodes."""
    async with started(tmp_path, friends=FRIENDS, schedule=0, **settings) as nodes:
        daemon = Daemon(nodes.nodes["laptop"])
        async with trio.open_nursery() as nursery:
            await nursery.start(daemon.serve)
            with trio.fail_after(5):  # the daemon's own first status check, out of the way
                while not daemon.jobs.last.get("status"):
                    await trio.sleep(0.01)
            yield daemon, control.address(daemon.node.profile.home)
            nursery.cancel_scope.cancel()


def _tree(root, files: int, size: int) -> str:
    folder = os.path.join(root, "Documents")
    os.makedirs(folder)
    for i in range(files):
        with open(os.path.join(folder, f"f{i:02}.bin"), "wb") as f:
            f.write(os.urandom(size))
    return folder


class _Watcher:
    """A ``watch`` client that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self._changed = trio.Event()

    def __call__(self, message: dict) -> None:
        self.messages.append(message)
        self._changed.set()

    def events(self, kind: type | None = None) -> list[tuple[int | None, ev.Event]]:
        out = []
        for m in self.messages:
            event = ev.from_dict(m.get("event", {}))
            if event is not None and (kind is None or isinstance(event, kind)):
                out.append((m.get("job"), event))
        return out

    async def until(self, test) -> None:
        while not test():
            await self._changed.wait()
            self._changed = trio.Event()


async def _raw(where, line: bytes) -> dict:
    connected = await endpoint.connect(where)
    assert connected is not None
    async with connected[0] as stream:
        await stream.send_all(line)
        answer = b""
        with contextlib.suppress(trio.BrokenResourceError):
            while chunk := await stream.receive_some(65536):
                answer += chunk
    return json.loads(answer.splitlines()[-1])


async def test_watch_sees_a_scheduled_backup_from_start_to_end(tmp_path):
    async with _daemon(tmp_path) as (daemon, where), trio.open_nursery() as nursery:
        watcher = _Watcher()
        nursery.start_soon(control.watch, where, watcher)
        await watcher.until(lambda: watcher.messages)  # subscribed: {"watching": ...}
        assert watcher.messages[0] == {"watching": {"jobs": []}}
        folder = _tree(tmp_path, 6, 100_000)
        daemon.node.profile.update_settings(folders=[folder], schedule=1)
        daemon.scheduler.changed(reschedule=True)
        with trio.fail_after(8):
            await watcher.until(lambda: watcher.events(ev.JobFinished))
        nursery.cancel_scope.cancel()
    # The first check ended before; upkeep's retention may be queued after the backup.
    (job, queued), = [(j, e) for j, e in watcher.events(ev.JobQueued) if e.name == "backup"]
    assert (queued.name, queued.source) == ("backup", "schedule")
    started = [e for j, e in watcher.events(ev.JobStarted) if j == job]
    assert started == [ev.JobStarted(job, "backup")]
    (_, finished), = [(j, e) for j, e in watcher.events(ev.JobFinished) if j == job]
    assert (finished.job, finished.state, finished.error) == (job, "finished", "")
    done = watcher.events(ev.FileDone)
    assert len(done) == 6 and {j for j, _ in done} == {job}  # the job's own events, by id
    progress = [e for j, e in watcher.events(ev.JobProgress) if j == job]
    first = progress[0]  # the scan is done before a file is sent
    assert (first.phase, first.total_files, first.done_files) == ("sending", 6, 0)
    last = progress[-1]  # totals a window can draw
    assert (last.scanned_files, last.total_files, last.done_files) == (6, 6, 6)
    assert last.total_bytes == last.done_bytes == 600_000 and last.seconds_left == 0
    order = [type(e).__name__ for j, e in watcher.events() if j == job
             and type(e).__name__.startswith("Job")]  # fmt: skip
    assert order[:2] == ["JobQueued", "JobStarted"] and order[-1] == "JobFinished"


async def test_restore_progress_counts_files_and_bytes_of_the_total(tmp_path):
    folder = _tree(tmp_path, 5, 70_000)
    async with _daemon(tmp_path, folders=[folder]) as (_, where):
        await control.call(where, "backup", {}, ev.ignore)
        told: list[ev.Event] = []
        params = {"selector": "latest", "to": str(tmp_path / "back")}
        await control.call(where, "restore", params, told.append, told.append)
        kept = await control.call(where, "status", {"cached": True}, ev.ignore)
    assert kept["last_jobs"]["restore"]["result"]["files"] == 5  # the last results, kept
    assert kept["last_jobs"]["backup"]["state"] == "finished" and kept["snapshots"] == 1
    assert told[0]["name"] == "restore" and told[1] == ev.JobQueued(told[0]["id"], "restore",
                                                                   "client")  # id first
    restoring = [e for e in told if isinstance(e, ev.RestoreProgress)]
    assert restoring[0] == ev.RestoreProgress(0, 0, 5, 350_000)  # the totals, first
    assert restoring[-1] == ev.RestoreProgress(5, 350_000, 5, 350_000)
    last = [e for e in told if isinstance(e, ev.JobProgress)][-1]
    assert (last.phase, last.done_files, last.total_files) == ("restoring", 5, 5)
    assert last.done_bytes == last.total_bytes == 350_000


async def test_cancel_mid_backup_publishes_nothing_and_the_next_backup_resumes(tmp_path):
    # 12 files of 300 kB (each its own record), sent at 1 MB/s: cancelled after two.
    folder = _tree(tmp_path, 12, 300_000)
    async with _daemon(tmp_path, folders=[folder], bandwidth=1_000_000) as (daemon, where):
        taken: list[dict] = []
        stored: list[ev.Event] = []
        outcome: list[BaseException] = []

        async def _backup() -> None:
            try:
                await control.call(where, "backup", {}, stored.append, taken.append)
            except errors.P2PBackupError as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_backup)
            with trio.fail_after(8):
                while sum(isinstance(e, ev.RecordStored) for e in stored) < 2:
                    await trio.sleep(0.01)
            # status answers at once, from what the daemon keeps, while the backup runs
            with trio.fail_after(1):
                now = await control.call(where, "status", {}, ev.ignore)
            assert [j["id"] for j in now["jobs"]] == [taken[0]["id"]]
            assert now["jobs"][0]["state"] == "running" and now["jobs"][0]["progress"]
            told = await control.call(where, "cancel", {"id": taken[0]["id"]}, ev.ignore)
            assert told["name"] == "backup"
        assert isinstance(outcome[0], errors.JobCancelled)
        assert outcome[0].exit_code == 130
        status_check, job = await control.call(where, "jobs", {}, ev.ignore)
        assert (status_check["name"], status_check["source"]) == ("status", "daemon")
        assert (job["id"], job["state"]) == (taken[0]["id"], "cancelled")
        assert await control.call(where, "snapshots", {}, ev.ignore) == []  # nothing published
        daemon.node.profile.update_settings(bandwidth=0)
        again = await control.call(where, "backup", {}, ev.ignore)
    assert again["files"] == 12
    assert isinstance(stored[0], ev.JobQueued) and stored[0].job == taken[0]["id"]
    landed = [e for e in stored if isinstance(e, ev.RecordStored)]
    assert 2 <= len(landed) < 12
    # What landed before the cancel is not sent again: the other files' records and the
    # manifest's (a few kB) are.
    assert again["records_stored"] == 12 - len(landed) + 1
    assert again["bytes_stored"] < (12 - len(landed)) * 300_000 + 10_000


async def test_two_clients_at_once_and_status_does_not_wait_for_the_lock(tmp_path):
    async with _daemon(tmp_path) as (daemon, where):
        answers: dict[str, object] = {}
        watcher = _Watcher()

        async def _ask(name: str) -> None:
            answers[name] = await control.call(where, name, {}, ev.ignore)

        async with daemon.jobs_lock, trio.open_nursery() as nursery:  # as a backup holds it
            with trio.fail_after(5):
                nursery.start_soon(control.watch, where, watcher)  # a third client, connected
                await watcher.until(lambda: watcher.messages)
                async with trio.open_nursery() as both:
                    both.start_soon(_ask, "status")
                    both.start_soon(_ask, "friends")
                answers["jobs"] = await control.call(where, "jobs", {}, ev.ignore)
            nursery.cancel_scope.cancel()
        assert sorted(f["name"] for f in answers["friends"]) == list(FRIENDS)
        assert answers["status"]["schedule"]["interval"] == 0
        # status (kept, as the lock is held) is no job; friends is one, and did not wait
        assert [j["name"] for j in answers["jobs"] if j["source"] == "client"] == ["friends"]
        assert [e.name for _, e in watcher.events(ev.JobFinished)] == ["friends"]
        fresh = await control.call(where, "status", {}, ev.ignore)  # idle: what it keeps
        assert sorted(fresh["friends_online"]) == list(FRIENDS) and fresh["checked_at"]


async def test_bad_requests_get_clear_errors_and_the_daemon_goes_on(tmp_path):
    async with _daemon(tmp_path) as (_, where):
        with pytest.raises(errors.ConfigError, match="no job called 'frobnicate'"):
            await control.call(where, "frobnicate", {}, ev.ignore)
        with pytest.raises(errors.ConfigError, match="There is no job 999"):
            await control.call(where, "cancel", {"id": 999}, ev.ignore)
        junk = await _raw(where, b"not json\n")
        assert junk["error"]["kind"] == "FormatError" and "Not JSON" in junk["error"]["message"]
        huge = await _raw(where, b'{"v": 2, "job": "' + b"x" * control.MAX_LINE + b'"}\n')
        assert "longer than 1 MiB" in huge["error"]["message"]
        old = await _raw(where, b'{"v": 1, "job": "status", "params": {}}\n')
        assert old["error"]["kind"] == "ConfigError" and old["error"]["exit_code"] == 2
        assert "speaks control protocol 2" in old["error"]["message"]
        assert "client speaks 1" in old["error"]["message"]
        listed = await control.call(where, "jobs", {}, ev.ignore)  # still serving
        assert [j["source"] for j in listed] == ["daemon"]  # no id went to a bad request


async def test_a_version_1_daemon_is_told_apart_from_other_errors(tmp_path):
    """An old daemon refuses a version 2 request without a "v" in its answer."""
    where = control.address(str(tmp_path))

    async def _old(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b'{"error": {"message": "Send one JSON request of version 1 per '
                              b'line.", "kind": "FormatError", "exit_code": 3}}\n')  # fmt: skip
        await stream.aclose()

    async with endpoint.listening(where) as (listener, _), trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, _old, [listener])
        with pytest.raises(errors.ConfigError, match="speaks control protocol 1"):
            await control.call(where, "status", {}, ev.ignore)
        nursery.cancel_scope.cancel()


async def test_a_slow_reader_loses_the_oldest_messages_and_is_told():
    outbox = Outbox(limit=3)
    for i in range(10):  # put never waits, whoever reads
        outbox.event(ev.Progress("records", i, 10), job=1)
    taken = await outbox.take()
    assert taken[0] == {"event": {"type": "EventsDropped", "count": 7}}
    assert [m["event"]["done"] for m in taken[1:]] == [7, 8, 9]
    outbox.close()
    assert await outbox.take() == []


async def test_a_bug_in_the_first_status_check_does_not_stop_the_daemon(tmp_path, monkeypatch):
    async def _bug(s):
        raise TypeError("a bug")  # as fromtimestamp(None) for a friend never seen was

    monkeypatch.setitem(jobs.JOBS, "status", _bug)
    async with _daemon(tmp_path) as (daemon, where):  # waits for the first check to end
        assert daemon.jobs.last["status"].state == "failed"
        (check,) = await control.call(where, "jobs", {}, ev.ignore)  # still serving
        assert check["error"]["kind"] == "InternalError"


async def test_status_answers_from_what_the_daemon_keeps_unless_asked_to_check(tmp_path):
    async with _daemon(tmp_path) as (_, where):
        kept = await control.call(where, "status", {}, ev.ignore)
        assert not [j for j in await control.call(where, "jobs", {}, ev.ignore)
                    if j["source"] == "client"]  # fmt: skip
        assert sorted(kept["friends_online"]) == list(FRIENDS) and kept["checked_at"]
        checked = await control.call(where, "status", {"check": True}, ev.ignore)
        ran = [j["name"] for j in await control.call(where, "jobs", {}, ev.ignore)
               if j["source"] == "client"]  # fmt: skip
        assert ran == ["status"]
        assert checked["checked_at"] >= kept["checked_at"]
