"""Files larger than the streaming threshold go out and come back a batch at a time."""

from __future__ import annotations

import os
import random

import pytest

from p2pbackup.cli.demo import same_tree
from p2pbackup.engine import events as ev
from p2pbackup.engine.backup import STREAM_FILE
from p2pbackup.storage.store import ShareKey

pytestmark = pytest.mark.trio


async def test_a_large_file_streams_out_and_back_through_edits_and_damage(grid, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(5)
    big = src / "big.bin"
    data = rng.randbytes(STREAM_FILE + 5_000_000)
    big.write_bytes(data)
    first = await grid.backup(src)
    # Streamed records reached every friend in pieces, each share checked whole there.
    streamed = [r for r in grid.state.records.values() if r.descriptor.length > STREAM_FILE]
    assert len(streamed) == 1 and len(set(streamed[0].placement.values())) == 4
    (tmp_path / "v1").mkdir()
    os.link(big, tmp_path / "v1-big.bin")  # keep version 1's bytes
    big.unlink()
    big.write_bytes(b"a new header" + data + b"a new trailer")
    second = await grid.backup(src)
    assert second.changed == 1 and first.manifest.snapshot_id != second.manifest.snapshot_id

    # The friend holding its share 0 returns damage: the stream restarts on another share.
    holder = streamed[0].placement[0]
    grid.stores[holder].corrupt(ShareKey(streamed[0].descriptor.record_id, 0))
    manifests = await grid.restore_all(tmp_path / "restored")
    assert len(manifests) == 2
    restored_first = tmp_path / "restored" / "snap0" / "src" / "big.bin"
    assert restored_first.read_bytes() == (tmp_path / "v1-big.bin").read_bytes()
    assert same_tree(str(src), str(tmp_path / "restored" / "snap1" / "src"))
    assert any(isinstance(e, ev.FriendTrouble) and e.friend == holder for e in grid.events)
