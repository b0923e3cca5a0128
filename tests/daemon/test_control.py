"""The control socket: the wire, events, errors, and junk from a client."""

from __future__ import annotations

import contextlib

import pytest
import trio

from p2pbackup.daemon import control
from p2pbackup.engine import events as ev
from p2pbackup.errors import PeerError

pytestmark = pytest.mark.trio


async def test_request_and_event_vectors():
    assert control._encode({"v": 1, "job": "status", "params": {}}) == (
        b'{"v":1,"job":"status","params":{}}\n'
    )
    event = ev.RecordStored(b"\xab" * 2, 10, ("alice",))
    assert ev.to_dict(event) == {"type": "RecordStored", "record_id": "abab", "size": 10,
                                 "friends": ["alice"]}  # fmt: skip
    assert ev.from_dict(ev.to_dict(event)) == event
    assert ev.from_dict({"type": "FromTheFuture", "x": 1}) is None


async def _handler(job: str, params: dict, sink):
    if job == "echo":
        sink(ev.FileDone("a", 1, "packed"))
        sink(ev.Progress("records", 1, 2))
        return {"params": params}
    if job == "fail":
        raise PeerError("No friend is online.")
    raise RuntimeError("a bug")


@pytest.fixture
async def served(tmp_path):
    path = str(tmp_path / "control.sock")
    async with trio.open_nursery() as nursery:
        await nursery.start(control.serve, path, _handler)
        yield path
        nursery.cancel_scope.cancel()


async def test_events_then_the_result(served):
    seen: list = []
    result = await control.call(served, "echo", {"x": [1, 2]}, seen.append)
    assert result == {"params": {"x": [1, 2]}}
    assert seen == [ev.FileDone("a", 1, "packed"), ev.Progress("records", 1, 2)]


async def test_errors_come_back_as_the_same_kind(served):
    with pytest.raises(PeerError, match="No friend is online"):
        await control.call(served, "fail", {}, ev.ignore)
    with pytest.raises(Exception, match="failed unexpectedly"):  # a bug: reported, not fatal
        await control.call(served, "bug", {}, ev.ignore)
    assert await control.call(served, "echo", {}, ev.ignore) == {"params": {}}


async def test_junk_gets_an_error_and_the_daemon_goes_on(served):
    for junk in (b"not json\n", b'{"v": 2, "job": "echo"}\n', b'["a list"]\n', b"\n"):
        stream = await trio.open_unix_socket(served)
        async with stream:
            await stream.send_all(junk)
            answer = await stream.receive_some(4096)
        assert b'"error"' in answer
    assert await control.call(served, "echo", {}, ev.ignore) == {"params": {}}


async def test_no_daemon_is_said_plainly(tmp_path):
    with pytest.raises(control.NoDaemon):
        await control.call(str(tmp_path / "control.sock"), "status", {}, ev.ignore)


async def test_an_oversized_request_is_refused(served):
    stream = await trio.open_unix_socket(served)
    answer = b""
    async with stream:
        await stream.send_all(b"x" * (control.MAX_LINE + 65536))
        # The daemon answers with an error and hangs up; with bytes still unread on its side
        # the kernel may turn the hang-up into a reset that swallows the answer.
        with contextlib.suppress(trio.BrokenResourceError):
            while chunk := await stream.receive_some(4096):
                answer += chunk
    assert not answer or b"longer than 1 MiB" in answer
    assert await control.call(served, "echo", {}, ev.ignore) == {"params": {}}
