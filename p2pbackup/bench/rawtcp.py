"""The ceiling for ``bench net``: the same messages over plain trio TCP, no libp2p.

A sink is a separate process (as each friend is), serving one connection at a
time: ``P`` + length + bytes is a put, answered with one byte; ``G`` + length
is a get, answered with that many bytes. The client keeps ``in_flight``
messages outstanding per sink, as the share client pipelines its requests.
Nothing is encrypted or multiplexed: what is left is the cost of moving the
bytes through Python and the kernel, which nothing built on it can beat.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time

import trio

HEADER = struct.Struct(">cI")
CHUNK = 1 << 20


async def _exactly(stream: trio.SocketStream, size: int) -> None:
    left = size
    while left:
        data = await stream.receive_some(min(left, CHUNK))
        if not data:
            raise EOFError("the other side hung up")
        left -= len(data)


async def _header(stream: trio.SocketStream) -> tuple[bytes, int] | None:
    raw = b""
    while len(raw) < HEADER.size:
        data = await stream.receive_some(HEADER.size - len(raw))
        if not data:
            return None
        raw += data
    return HEADER.unpack(raw)


async def _serve_one(stream: trio.SocketStream) -> None:
    payload = bytes(CHUNK)
    async with stream:
        while (header := await _header(stream)) is not None:
            op, size = header
            if op == b"P":
                await _exactly(stream, size)
                await stream.send_all(b"!")
            else:
                while size:
                    piece = min(size, CHUNK)
                    await stream.send_all(payload[:piece])
                    size -= piece


async def _serve() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(_serve_one, listeners)


def start_sink() -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "p2pbackup.bench.rawtcp"],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    return process, int(process.stdout.readline())


async def _one_sink(port: int, op: bytes, count: int, size: int, in_flight: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    window = trio.Semaphore(in_flight)
    message = bytes(size)

    async def _send() -> None:
        for _ in range(count):
            await window.acquire()
            if op == b"P":
                await stream.send_all(HEADER.pack(op, size) + message)
            else:
                await stream.send_all(HEADER.pack(op, size))

    async def _receive() -> None:
        for _ in range(count):
            await _exactly(stream, 1 if op == b"P" else size)
            window.release()

    async with stream, trio.open_nursery() as nursery:
        nursery.start_soon(_send)
        nursery.start_soon(_receive)


async def throughput(ports: list[int], op: bytes, total: int, size: int, in_flight: int) -> float:
    """MB/s to move ``total`` bytes in ``size`` messages spread over the sinks at ``ports``."""
    count = total // size // len(ports)
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for port in ports:
            nursery.start_soon(_one_sink, port, op, count, size, in_flight)
    return count * len(ports) * size / (time.perf_counter() - started) / 1e6


if __name__ == "__main__":
    trio.run(_serve)
