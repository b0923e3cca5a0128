"""The control socket: the wire, events, errors, and junk from a client, over both
transports; the token and control.json of the loopback one."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import logging.handlers
import os
import socket
import stat

import pytest
import trio

from p2pbackup.daemon import control, endpoint
from p2pbackup.engine import events as ev
from p2pbackup.errors import ConfigError, InternalError, PeerError, StorageError
from p2pbackup.storage.profile import Profile

pytestmark = pytest.mark.trio


async def test_request_and_event_vectors():
    assert control._encode({"v": 2, "job": "status", "params": {}}) == (
        b'{"v":2,"job":"status","params":{}}\n'
    )
    event = ev.RecordStored(b"\xab" * 2, 10, ("alice",))
    assert ev.to_dict(event) == {"type": "RecordStored", "record_id": "abab", "size": 10,
                                 "friends": ["alice"]}  # fmt: skip
    assert ev.from_dict(ev.to_dict(event)) == event
    assert ev.from_dict({"type": "FromTheFuture", "x": 1}) is None


async def _handler(job: str, params: dict, reply):
    if job == "echo":
        reply.event(ev.FileDone("a", 1, "packed"), 3)
        reply.event(ev.Progress("records", 1, 2), 3)
        return {"params": params}
    if job == "fail":
        raise PeerError("No friend is online.")
    raise RuntimeError("a bug")


@pytest.fixture(params=["unix", "tcp"])
def transport(request, monkeypatch):
    monkeypatch.setenv(endpoint.ENV, request.param)
    return request.param


@contextlib.asynccontextmanager
async def _daemon(home, handler):
    """A control server as the daemon runs one: while it holds the profile's lock."""
    where = control.address(str(home))
    with Profile(str(home)).lock():
        async with trio.open_nursery() as nursery:
            await nursery.start(control.serve, where, handler)
            yield where
            nursery.cancel_scope.cancel()


@pytest.fixture
async def served(tmp_path, transport):
    async with _daemon(tmp_path, _handler) as where:
        yield where


async def _raw(where: control.Address) -> trio.SocketStream:
    """A connection to the daemon that sends what the test writes, token or not."""
    connected = await endpoint.connect(where)
    assert connected is not None
    return connected[0]


async def test_events_then_the_result(served):
    seen: list = []
    result = await control.call(served, "echo", {"x": [1, 2]}, seen.append)
    assert result == {"params": {"x": [1, 2]}}
    assert seen == [ev.FileDone("a", 1, "packed"), ev.Progress("records", 1, 2)]


async def test_errors_come_back_as_the_same_kind(served):
    with pytest.raises(PeerError, match="No friend is online"):
        await control.call(served, "fail", {}, ev.ignore)
    with pytest.raises(InternalError, match="internal error"):  # a bug: reported, not fatal
        await control.call(served, "bug", {}, ev.ignore)
    assert await control.call(served, "echo", {}, ev.ignore) == {"params": {}}


async def test_a_bug_is_an_internal_error_naming_the_log_and_a_full_disk_a_storage_error(
    tmp_path, transport, caplog
):
    async def _jobs(job: str, params: dict, sink):
        if job == "type":
            return len(None)  # a TypeError from a bug, not the client's parameters
        if job == "value":
            return int("not a number")  # a ValueError from a bug, not "not JSON"
        raise OSError(errno.ENOSPC, "No space left on device", "/profile/state.sqlite")

    log_file = tmp_path / "p2pbackup.log"
    handler = logging.handlers.RotatingFileHandler(log_file)  # as cli/logs.py sets up
    logging.getLogger().addHandler(handler)
    try:
        async with _daemon(tmp_path, _jobs) as where:
            for job in ("type", "value"):
                with pytest.raises(InternalError) as caught:
                    await control.call(where, job, {}, ev.ignore)
                assert caught.value.message == f"internal error, see the log ({log_file})"
                assert caught.value.exit_code == 1
            with pytest.raises(StorageError) as full:
                await control.call(where, "disk", {}, ev.ignore)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert full.value.message == "The disk refused /profile/state.sqlite: the disk is full."
    logged = log_file.read_text()
    assert "Traceback" in logged and "TypeError" in logged and "ValueError" in logged


async def test_junk_gets_an_error_and_the_daemon_goes_on(served):
    for junk in (b"not json\n", b'{"v": 2, "job": 7}\n', b'["a list"]\n', b"\n"):
        async with await _raw(served) as stream:
            await stream.send_all(junk)
            answer = await stream.receive_some(4096)
        assert b'"error"' in answer
    assert await control.call(served, "echo", {}, ev.ignore) == {"params": {}}


async def test_a_client_that_sends_nothing_is_let_go(served, monkeypatch):
    monkeypatch.setattr(control, "REQUEST_DEADLINE", 0.2)
    async with await _raw(served) as stream:
        with trio.fail_after(5):
            answer = await stream.receive_some(4096)
    assert b"No request came within 0.2 s" in answer


async def test_no_daemon_is_said_plainly(tmp_path, transport):
    with pytest.raises(control.NoDaemon):
        await control.call(control.address(str(tmp_path)), "status", {}, ev.ignore)


async def test_an_oversized_request_is_refused(served):
    answer = b""
    async with await _raw(served) as stream:
        await stream.send_all(b"x" * (control.MAX_LINE + 65536))
        # The daemon answers with an error and hangs up; with bytes still unread on its side
        # the kernel may turn the hang-up into a reset that swallows the answer.
        with contextlib.suppress(trio.BrokenResourceError):
            while chunk := await stream.receive_some(4096):
                answer += chunk
    assert not answer or b"longer than 1 MiB" in answer
    assert await control.call(served, "echo", {}, ev.ignore) == {"params": {}}


async def test_the_transport_is_chosen_by_the_environment(tmp_path, monkeypatch):
    home = str(tmp_path)
    monkeypatch.delenv(endpoint.ENV, raising=False)
    assert control.address(home) == endpoint.Address(str(tmp_path / "control.sock"))
    monkeypatch.setenv(endpoint.ENV, "tcp")
    assert control.address(home) == endpoint.Address(str(tmp_path / "control.json"), tcp=True)
    monkeypatch.setenv(endpoint.ENV, "unix")
    monkeypatch.delattr(socket, "AF_UNIX")  # Windows
    assert control.address(home).tcp
    monkeypatch.setenv(endpoint.ENV, "pipe")
    with pytest.raises(ConfigError, match="'unix' or 'tcp'"):
        control.address(home)


async def test_the_socket_or_file_is_private_and_gone_when_the_daemon_stops(tmp_path, transport):
    where = control.address(str(tmp_path))
    with open(where.path, "w") as f:  # a dead daemon's: replaced
        f.write("left over")
    async with _daemon(tmp_path, _handler):
        assert stat.S_IMODE(os.stat(where.path).st_mode) == 0o600
        if where.tcp:
            with open(where.path) as f:
                found = json.load(f)
            assert set(found) == {"v", "port", "token"} and found["v"] == 1
            assert len(found["token"]) == 64 and int(found["token"], 16) >= 0
        assert await control.call(where, "echo", {}, ev.ignore) == {"params": {}}
    assert not os.path.exists(where.path)


async def test_a_wrong_or_missing_token_is_refused_and_the_job_never_runs(tmp_path, monkeypatch):
    monkeypatch.setenv(endpoint.ENV, "tcp")
    where = control.address(str(tmp_path))
    ran: list[str] = []

    async def _recording(job: str, params: dict, sink):
        ran.append(job)
        return "done"

    async with _daemon(tmp_path, _recording):
        with open(where.path) as f:
            token = json.load(f)["token"]
        wrong = ("0" if token[0] != "0" else "1") + token[1:]
        for bad in ({"token": wrong}, {}, {"token": 7}, {"token": "é" * 64}):
            async with await _raw(where) as stream:
                request = {"v": 2, **bad, "job": "echo", "params": {}}
                await stream.send_all(json.dumps(request).encode() + b"\n")
                answer = json.loads(await stream.receive_some(4096))
            assert answer["error"]["kind"] == "ConfigError"
            assert "token is missing or wrong" in answer["error"]["message"]
            assert token not in json.dumps(answer)
        assert ran == []
        assert await control.call(where, "echo", {}, ev.ignore) == "done"
        assert ran == ["echo"]


@pytest.mark.parametrize("transport", ["unix"], indirect=True)
async def test_the_unix_socket_ignores_a_token(served):
    async with await _raw(served) as stream:
        await stream.send_all(b'{"v": 2, "token": "anything", "job": "echo", "params": {}}\n')
        answer = b""
        while chunk := await stream.receive_some(4096):
            answer += chunk
    assert answer.endswith(b'{"result":{"params":{}}}\n')


async def test_a_control_file_nobody_answers_on_means_no_daemon(tmp_path, monkeypatch):
    monkeypatch.setenv(endpoint.ENV, "tcp")
    where = control.address(str(tmp_path))
    with socket.socket() as probe:  # a port just free: a daemon killed with SIGKILL
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(where.path, "w") as f:
        json.dump({"v": 1, "port": port, "token": "ab" * 32}, f)
    with pytest.raises(control.NoDaemon):
        await control.call(where, "status", {}, ev.ignore)


async def test_a_control_file_whose_port_another_daemon_took_means_no_daemon(tmp_path, monkeypatch):
    """A daemon killed with SIGKILL left its file; the system gave its port to another
    profile's daemon, which would refuse this profile's token. No node holds this
    profile's lock, so the CLI knows the file is stale and runs the node itself."""
    monkeypatch.setenv(endpoint.ENV, "tcp")
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    async with _daemon(theirs, _handler) as other:
        with open(other.path) as f:
            port = json.load(f)["port"]
        where = control.address(str(mine))
        with open(where.path, "w") as f:
            json.dump({"v": 1, "port": port, "token": "ab" * 32}, f)
        with pytest.raises(control.NoDaemon):
            await control.call(where, "echo", {}, ev.ignore)
        assert await control.call(other, "echo", {}, ev.ignore) == {"params": {}}


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"\xff\xfe", b"[1]", b'{"v": 2, "port": 1, "token": "t"}',
     b'{"v": 1, "port": "1", "token": "t"}', b'{"v": 1, "port": true, "token": "t"}',
     b'{"v": 1, "port": 70000, "token": "t"}', b'{"v": 1, "port": 1}'],
)  # fmt: skip
async def test_a_malformed_control_file_means_no_daemon(tmp_path, monkeypatch, content):
    monkeypatch.setenv(endpoint.ENV, "tcp")
    where = control.address(str(tmp_path))
    with open(where.path, "wb") as f:
        f.write(content)
    with pytest.raises(control.NoDaemon):
        await control.call(where, "status", {}, ev.ignore)


async def test_a_name_that_is_not_utf8_crosses_the_socket_exactly(tmp_path, transport):
    """A lone surrogate (the byte 0xff of a file name) in an event or a result cannot break
    the JSON line; a ValueError in a job is the bug it is, not 'Not JSON'."""
    name = b"Docs/bad\xffname.txt".decode("utf-8", "surrogateescape")

    async def _names(job: str, params: dict, reply):
        if job == "encode":  # what sqlite3 raised for such a name before (issue 9)
            name.encode("utf-8")
        reply.event(ev.FileSkipped(params["path"], "a reason"))
        return {"paths": [params["path"]]}

    async with _daemon(tmp_path, _names) as where:
        seen: list = []
        assert await control.call(where, "echo", {"path": name}, seen.append) == {"paths": [name]}
        assert seen == [ev.FileSkipped(name, "a reason")]
        with pytest.raises(InternalError, match="internal error") as caught:
            await control.call(where, "encode", {"path": name}, ev.ignore)
        assert "JSON" not in str(caught.value)
