"""Throughput tuning of py-libp2p 0.8.1, from our code, wire format unchanged.

Checked against libp2p==0.8.1 (pinned in pyproject.toml). Every setting here
is a library constant or a switch the library reads; no method is replaced.

- Yamux frames of 64 KiB are just over Noise's 65,519-byte plaintext limit,
  so stock every frame becomes two Noise messages. A 65,519-byte Yamux frame
  fits in one.
- Yamux sends a window update on every read by default
  (PY_YAMUX_RELEASE_ON_READ); bulk transfers do better granting credit in
  larger steps, which the library's hysteresis then does.

Both ends still speak standard Yamux over Noise: tests/net/test_tuning.py
runs a stock py-libp2p peer in another process against a tuned one.
"""

from __future__ import annotations

import os

from libp2p.security.noise.io import MAX_PLAINTEXT_LENGTH
from libp2p.stream_muxer.yamux import yamux

_applied = False


def apply() -> None:
    """Apply once per process, before the first host starts."""
    global _applied
    if _applied:
        return
    yamux.MAX_MESSAGE_SIZE = MAX_PLAINTEXT_LENGTH
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    _applied = True
