"""Throughput tuning of py-libp2p 0.8.1, from our code, wire format unchanged.

Checked against libp2p==0.8.1 (pinned in pyproject.toml). Every setting here
is a library constant or a switch the library reads; no method is replaced.

- Yamux frames of 64 KiB are just over Noise's 65,519-byte plaintext limit,
  so stock every frame becomes two Noise messages. A 65,519-byte Yamux frame
  fits in one.
- Yamux grows a stream's receive window up to 16 MiB; here up to 2 MiB
  (``MAX_RECEIVE_WINDOW``), which bounds what a peer can make a node buffer
  on a stream it is not reading (docs/security.md, "Bounds").
- Yamux sends a window update on every read by default
  (PY_YAMUX_RELEASE_ON_READ); bulk transfers do better granting credit in
  larger steps, which the library's hysteresis then does.

``forget_unread`` drops a reset stream's unread bytes, which the library
would keep for a minute (a bound on what a stranger can make a node hold).

Both ends still speak standard Yamux over Noise: tests/net/test_tuning.py
runs a stock py-libp2p peer in another process against a tuned one.
"""

from __future__ import annotations

import os

from libp2p.abc import INetStream
from libp2p.security.noise.io import MAX_PLAINTEXT_LENGTH
from libp2p.stream_muxer.yamux import yamux

# What a peer may send on one stream before it is read: the library grows a stream's window
# up to 16 MiB, so a node that stops reading (a friend over its budget, a request at the
# disk) held 16 MiB per stream; 2 MiB still covers 200 Mbit/s at a 80 ms round trip.
MAX_RECEIVE_WINDOW = 2 << 20

_applied = False


def apply() -> None:
    """Apply once per process, before the first host starts."""
    global _applied
    if _applied:
        return
    yamux.MAX_MESSAGE_SIZE = MAX_PLAINTEXT_LENGTH
    yamux.MAX_WINDOW_SIZE = MAX_RECEIVE_WINDOW
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    _applied = True


def forget_unread(stream: INetStream) -> None:
    """Drop what a peer sent on a stream this node has reset and will never read.

    py-libp2p 0.8.1 keeps a reset stream's unread bytes for 60 s, for readers
    that might still drain them, and keeps adding what the peer sends until the
    reset reaches it. A peer whose streams are reset one after another (a
    stranger sending frames too large for a HELLO) made a node hold about half
    a MiB per stream for that minute: 100 MiB for 20 MiB sent
    (tests/net/test_flood.py). Bytes for a stream the muxer no longer knows
    are read and dropped. Call it after ``reset``.
    """
    muxed = getattr(stream, "muxed_stream", None)
    if not isinstance(muxed, yamux.YamuxStream) or not muxed.closed:
        return
    conn = muxed.conn
    if conn.streams.get(muxed.stream_id) is muxed:
        del conn.streams[muxed.stream_id]
        conn.stream_buffers.pop(muxed.stream_id, None)
        conn.stream_events.pop(muxed.stream_id, None)
