"""A stock py-libp2p peer (no p2pbackup tuning) for interop tests; run as a script.

serve: listen, print our address, answer each stream's message (8-byte length, then
the bytes) with its BLAKE2b in hex.
send ADDR SIZE: dial ADDR, send a message of SIZE bytes, print the peer's answer.
"""

import hashlib
import os
import sys

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as x25519_pair
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID, Transport
from libp2p.stream_muxer.yamux import yamux

PROTOCOL = "/p2pbackup/interop/1.0.0"
STOCK_FRAME = 64 * 1024  # yamux.MAX_MESSAGE_SIZE in libp2p 0.8.1, before any tuning


def require_stock() -> None:
    """Refuse to run with any of p2pbackup's tuning (net/internals.py) leaked into this
    process: an interop test against a tuned "stock" peer proves nothing."""
    leaked = sorted(name for name in os.environ if name.startswith("PY_YAMUX_"))
    if leaked:
        sys.exit(f"not a stock peer: {', '.join(leaked)} set in its environment")
    if "p2pbackup" in sys.modules or "p2pbackup.net.internals" in sys.modules:
        sys.exit("not a stock peer: p2pbackup was imported")
    if yamux.MAX_MESSAGE_SIZE != STOCK_FRAME or not yamux._yamux_release_on_read():
        sys.exit(
            f"not a stock peer: Yamux frames of {yamux.MAX_MESSAGE_SIZE} bytes, "
            f"release on read {yamux._yamux_release_on_read()}"
        )


async def read_exactly(stream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        data += await stream.read(min(1 << 20, size - len(data)))
    return bytes(data)


async def read_message(stream) -> bytes:
    """An 8-byte length, then that many bytes."""
    return await read_exactly(stream, int.from_bytes(await read_exactly(stream, 8), "big"))


async def main() -> None:
    require_stock()
    key_pair = create_new_key_pair()
    noise = Transport(key_pair, noise_privkey=x25519_pair().private_key)
    host = new_host(key_pair=key_pair, sec_opt={PROTOCOL_ID: noise})

    async def answer(stream) -> None:
        data = await read_message(stream)
        await stream.write(hashlib.blake2b(data).hexdigest().encode())
        await stream.close()

    host.set_stream_handler(PROTOCOL, answer)
    async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        if sys.argv[1] == "serve":
            print(host.get_addrs()[0], flush=True)
            await trio.sleep_forever()
        peer = info_from_p2p_addr(multiaddr.Multiaddr(sys.argv[2]))
        await host.connect(peer)
        stream = await host.new_stream(peer.peer_id, [PROTOCOL])
        payload = bytes(range(256)) * (int(sys.argv[3]) // 256)
        await stream.write(len(payload).to_bytes(8, "big"))
        for start in range(0, len(payload), 1 << 20):
            await stream.write(payload[start : start + (1 << 20)])
        print((await read_exactly(stream, 128)).decode(), flush=True)


trio.run(main)
