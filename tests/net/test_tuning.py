"""The tuned stack still speaks standard Yamux over Noise with a stock py-libp2p peer."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.stream_muxer.yamux import yamux

from p2pbackup.net import internals
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs

pytestmark = pytest.mark.trio

STOCK = [sys.executable, str(Path(__file__).with_name("stock_peer.py"))]
PROTOCOL = "/p2pbackup/interop/1.0.0"
SIZE = 8 << 20
PAYLOAD = bytes(range(256)) * (SIZE // 256)


def _stock_env() -> dict[str, str]:
    """This process's environment without the tuning it set (internals.apply): the stock
    peer must run as py-libp2p does out of the box. It checks that itself, and exits."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PY_YAMUX_")}


def _tuned_here() -> None:
    assert yamux.MAX_MESSAGE_SIZE == internals.YAMUX_FRAME > 64 * 1024, "the tuning is applied"
    assert not yamux._yamux_release_on_read(), "and Yamux grants credit in large steps"


async def _read_exactly(stream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        data += await stream.read(min(1 << 20, size - len(data)))
    return bytes(data)


async def _read_message(stream) -> bytes:
    return await _read_exactly(stream, int.from_bytes(await _read_exactly(stream, 8), "big"))


async def test_tuned_sends_to_stock():
    host = build_host(NodeIdentity.from_seed(b"t" * 32))
    _tuned_here()
    stock = subprocess.Popen(
        [*STOCK, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_stock_env(),
    )  # fmt: skip
    try:
        address = await trio.to_thread.run_sync(stock.stdout.readline)
        if not address:
            raise AssertionError(f"the stock peer did not start: {stock.stderr.read()[-2000:]}")
        peer = info_from_p2p_addr(multiaddr.Multiaddr(address.strip()))
        async with host.run(listen_addrs(["/ip4/127.0.0.1/tcp/0"])):
            await host.connect(peer)
            stream = await host.new_stream(peer.peer_id, [PROTOCOL])
            await stream.write(SIZE.to_bytes(8, "big"))
            for start in range(0, SIZE, 1 << 20):
                await stream.write(PAYLOAD[start : start + (1 << 20)])
            with trio.fail_after(30):
                answer = await _read_exactly(stream, 128)
        assert answer.decode() == hashlib.blake2b(PAYLOAD).hexdigest()
    finally:
        stock.kill()


async def test_stock_sends_to_tuned():
    host = build_host(NodeIdentity.from_seed(b"u" * 32))
    received = []

    async def answer(stream) -> None:
        data = await _read_message(stream)
        received.append(len(data))
        await stream.write(hashlib.blake2b(data).hexdigest().encode())
        await stream.close()

    host.set_stream_handler(PROTOCOL, answer)
    _tuned_here()
    async with host.run(listen_addrs(["/ip4/127.0.0.1/tcp/0"])):
        address = str(host.get_addrs()[0])
        command = [*STOCK, "send", address, str(SIZE)]
        result = await trio.to_thread.run_sync(
            lambda: subprocess.run(
                command, capture_output=True, text=True, timeout=60, env=_stock_env()
            )
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == hashlib.blake2b(PAYLOAD).hexdigest()
    assert received == [SIZE]
