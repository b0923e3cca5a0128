"""The one module that touches py-libp2p's internals refuses any version but the pinned one,
and what it changes holds."""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import multiaddr
import pytest
import trio

from p2pbackup.errors import ConfigError
from p2pbackup.net import internals
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs, serving
from tests.net.conftest import LOOPBACK


def test_the_checked_version_is_the_pinned_one():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert f"libp2p=={internals.LIBP2P_VERSION}" in pyproject["project"]["dependencies"]


def test_a_node_refuses_to_start_on_another_libp2p(monkeypatch):
    monkeypatch.setattr(internals, "_applied", False)  # as in a fresh process
    monkeypatch.setattr(internals.importlib.metadata, "version", lambda name: "0.9.0")
    with pytest.raises(ConfigError) as caught:
        build_host(NodeIdentity.from_seed(b"v" * 32))
    assert "needs py-libp2p 0.8.1, but 0.9.0 is installed" in caught.value.message
    assert caught.value.exit_code == 2


def test_the_pinned_version_starts():
    internals.check_version()  # the installed one is the pinned one


@pytest.mark.trio
async def test_a_hole_punch_attempt_ends_by_its_deadline(tmp_path):
    """The library's attempt opens its stream with no deadline: one to a peer that no
    longer answers held DCUtR's auto-drive loop for good (no friend was punched again)."""
    silent = socket.socket()  # completes the handshake, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    host = build_host(NodeIdentity.from_seed(b"h" * 32))
    gone = NodeIdentity.from_seed(b"g" * 32).peer_id
    address = multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{silent.getsockname()[1]}")
    try:
        async with serving(host, listen_addrs(LOOPBACK)):
            host.get_peerstore().add_addrs(gone, [address], 60)
            punch = internals.HolePunch(host, dial_timeout=1, deadline=2.0)
            with trio.fail_after(6):
                assert await punch.initiate_hole_punch(gone) is False
    finally:
        silent.close()


class _Chunks:
    """A raw connection that hands out ``chunks`` one receive at a time, then EOF."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.asked: list[int] = []

    async def read(self, n: int | None = None) -> bytes:
        self.asked.append(n)
        return self.chunks.pop(0) if self.chunks else b""


class _Plain:
    """A Noise state whose "decryption" marks the message, so each one is seen whole."""

    def decrypt(self, data: bytes) -> bytes:
        return b"<" + data + b">"


def _noise_reader(chunks: list[bytes]):
    from libp2p.security.noise.io import NoiseTransportReadWriter

    raw = _Chunks(chunks)
    return NoiseTransportReadWriter(raw, _Plain()), raw


def _framed(*messages: bytes) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in messages)


@pytest.mark.trio
async def test_noise_messages_are_cut_whole_from_receives_of_any_shape():
    internals.apply()
    big = bytes(range(256)) * 256  # 65,536 bytes: the length field's largest but one
    wire = _framed(b"a", big[:-1], b"", b"bc")
    # every message split across receives, several in one receive, a 1-byte receive
    chunks = [wire[:1], wire[1:3], wire[3:40000], wire[40000:]]
    reader, raw = _noise_reader(chunks)
    assert await reader.read_msg() == b"<a>"
    assert await reader.read_msg() == b"<" + big[:-1] + b">"
    assert await reader.read_msg() == b"<>"
    assert await reader.read_msg() == b"<bc>"
    assert raw.asked == [internals.NOISE_RECEIVE] * 4  # read only when no message was whole


@pytest.mark.trio
async def test_a_connection_ending_inside_a_noise_message_says_so():
    from libp2p.io.exceptions import IncompleteReadError

    internals.apply()
    reader, _ = _noise_reader([_framed(b"whole"), b"\x00\x10abc"])
    assert await reader.read_msg() == b"<whole>"
    with pytest.raises(IncompleteReadError) as caught:
        await reader.read_msg()
    assert (caught.value.expected_bytes, caught.value.received_bytes) == (18, 5)


class _Messages:
    """A Noise session's reader that hands out whole (decrypted) messages, then raises
    at the connection's end as ``read_noise_msg`` does."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = list(messages)

    async def read_msg(self) -> bytes:
        from libp2p.io.exceptions import IncompleteReadError

        if not self.messages:
            raise IncompleteReadError("closed", expected_bytes=2, received_bytes=0)
        return self.messages.pop(0)


def _muxer_over(messages: list[bytes]):
    from types import SimpleNamespace

    from libp2p.security.secure_session import SecureSession

    session = SecureSession.__new__(SecureSession)  # only its reading half is used
    session.conn = _Messages(messages)
    session._reset_internal_buffer()
    return SimpleNamespace(secured_conn=session), session


@pytest.mark.trio
async def test_yamux_frame_bodies_are_cut_from_noise_messages_of_any_shape():
    internals.apply()
    messages = [b"abc", b"defgh", b"ijklmnop", b"q"]
    muxer, session = _muxer_over(messages)
    assert await internals.read_yamux_body(muxer, 2) == b"ab"  # inside one message
    assert await internals.read_yamux_body(muxer, 8) == b"cdefghij"  # across three
    assert await session.read(3) == b"klm"  # a header read sees what a body left
    assert await internals.read_yamux_body(muxer, 4) == b"nopq"
    # and the stock reader agrees on the same stream of messages
    stock, _ = _muxer_over(messages)
    assert [await internals._STOCK_YAMUX_BODY(stock, n) for n in (2, 8, 3, 4)] == [
        b"ab", b"cdefghij", b"klm", b"nopq"
    ]  # fmt: skip


@pytest.mark.trio
async def test_a_connection_ending_inside_a_yamux_frame_says_so():
    from libp2p.io.exceptions import IncompleteReadError

    internals.apply()
    muxer, session = _muxer_over([b"abc", b"", b"de"])  # an empty message is no end
    with pytest.raises(IncompleteReadError):
        await internals.read_yamux_body(muxer, 10)
    assert session.conn.messages == []  # it read to the end of the connection
