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


async def test_a_stream_restores_what_the_seal_vouches_for_and_names_damage_only_then(
    grid, tmp_path
):
    """Shares are hashed on the way back only when a segment fails to open: a byte flipped
    in a share's header (which decoding never reads) costs that restore nothing. Once one
    flipped in a body makes a segment fail, every damaged share read is named."""
    src = tmp_path / "src"
    src.mkdir()
    data = random.Random(6).randbytes(STREAM_FILE + 3_000_000)
    (src / "big.bin").write_bytes(data)
    await grid.backup(src)
    (record,) = [r for r in grid.state.records.values() if r.descriptor.length > STREAM_FILE]
    rid, placement = record.descriptor.record_id, record.placement
    grid.stores[placement[0]].corrupt(ShareKey(rid, 0), at=12)  # inside the header
    grid.stores[placement[1]].corrupt(ShareKey(rid, 1), at=12)
    await grid.restore_all(tmp_path / "a")
    assert (tmp_path / "a" / "snap0" / "src" / "big.bin").read_bytes() == data
    assert not [e for e in grid.events if isinstance(e, ev.FriendTrouble)]

    grid.stores[placement[1]].corrupt(ShareKey(rid, 1))  # and now inside its body
    await grid.restore_all(tmp_path / "b")
    assert (tmp_path / "b" / "snap0" / "src" / "big.bin").read_bytes() == data
    troubles = [e for e in grid.events if isinstance(e, ev.FriendTrouble)]
    assert sorted(e.friend for e in troubles) == sorted([placement[0], placement[1]])
    assert all("damaged" in e.reason for e in troubles)
