"""A stranger floods a friend's node with frames before any HELLO.

The stranger is a real libp2p host on 127.0.0.1 (Noise, Yamux, a fresh key), so the
node cannot tell it from a friend until HELLO. It opens the storage protocol and sends
1 MiB frames flagged MORE on several request ids, never finishing a message; when the
node closes the stream it opens another, up to a budget of bytes and of time. Issue 9
(case 2) promises that a node holds at most one small HELLO from a peer it does not
know yet, so its peak resident memory (VmHWM) must stay within ``RSS_BOUND`` of what it
was before; and it must still serve its friends: a backup, a clean ``verify
--read-data`` and byte-exact restores afterwards.
"""

from __future__ import annotations

import os

import trio

from p2pbackup.core import protocol
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs, serving
from p2pbackup.net.locate import peer_at
from p2pbackup.net.service import PROTOCOL
from p2pbackup.stress.harness import (
    FRIENDS,
    OWNER,
    MiB,
    Published,
    Scenario,
    edit,
    freeze,
    make_source,
    start_grid,
    verify_clean,
)

FLOOD_BYTES = 256 * MiB
FLOOD_SECONDS = 60
REQUEST_IDS = 4
RSS_BOUND = 64 * MiB  # the most the node's peak may grow while flooded


def run(s: Scenario) -> None:
    source = make_source(s, large=1)
    published = Published()
    with start_grid(s) as grid:
        grid.cli(OWNER, "folders", "add", source)
        copy = freeze(source, os.path.join(s.root, "expected", "1"))
        published.backed_up(s, grid.run(OWNER, "backup"), copy, "the backup before the flood")

        target = s.rng.choice(FRIENDS)
        s.notes["flooded"] = target
        pid = grid.pid(target)
        _reset_peak(pid)
        before = _status_bytes(pid, "VmRSS")
        sent = trio.run(_flood, grid.address(target))
        peak = _status_bytes(pid, "VmHWM")
        s.tally.faults["flood_frames"] += sent["frames"]
        s.tally.faults["flood_streams"] += sent["streams"]
        s.notes.update(sent)
        s.notes["rss_before_mib"] = round(before / MiB, 1)
        s.notes["peak_rss_mib"] = round(peak / MiB, 1)
        s.expect(
            peak - before <= RSS_BOUND,
            f"{target} grew by {(peak - before) / MiB:.0f} MiB under a flood of "
            f"{sent['bytes'] / MiB:.0f} MiB (bound {RSS_BOUND // MiB} MiB)",
        )
        s.expect(grid.alive(target), f"{target} died under the flood")

        edit(source, s.rng)
        copy = freeze(source, os.path.join(s.root, "expected", "2"))
        after = grid.run(OWNER, "backup")
        published.backed_up(s, after, copy, "the backup after the flood")
        served = after.data.get("friends", []) if isinstance(after.data, dict) else []
        s.expect(target in served, f"{target} no longer serves its friends after the flood")
        published.check_all(grid, s)
        verify_clean(grid, s)


async def _flood(address: str) -> dict:
    """Send the flood; how many bytes and frames went, and how often the node hung up."""
    host = build_host(NodeIdentity.from_seed(os.urandom(32)))
    peer = peer_at(address)
    body = os.urandom(protocol.MAX_FRAME - (protocol.HEADER.size - 4))
    op = protocol.Op.PUT | protocol.MORE  # a message that never ends
    length = protocol.HEADER.size - 4 + len(body)
    frames = [
        protocol.HEADER.pack(length, protocol.VERSION, op, rid) + body
        for rid in range(1, REQUEST_IDS + 1)
    ]
    sent = {"bytes": 0, "frames": 0, "streams": 0, "hung_up": 0, "stalled": False}
    async with serving(host, listen_addrs(["/ip4/127.0.0.1/tcp/0"])):
        with trio.move_on_after(FLOOD_SECONDS) as scope:
            while sent["bytes"] < FLOOD_BYTES and sent["streams"] < 64:
                try:
                    await host.connect(peer)
                    stream = await host.new_stream(peer.peer_id, [PROTOCOL])
                except Exception:  # the node refuses the stranger outright: flood over
                    sent["hung_up"] += 1
                    break
                sent["streams"] += 1
                try:
                    while sent["bytes"] < FLOOD_BYTES:
                        frame = frames[sent["frames"] % REQUEST_IDS]
                        await stream.write(frame)
                        sent["bytes"] += len(frame)
                        sent["frames"] += 1
                except Exception:  # libp2p raises several kinds for a closed stream
                    sent["hung_up"] += 1
        sent["stalled"] = scope.cancelled_caught  # the node stopped reading: fine too
    return sent


def _status_bytes(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for process {pid}")


def _reset_peak(pid: int) -> None:
    """VmHWM starts again from VmRSS (Linux 4.0+), so the peak is the flood's alone."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
