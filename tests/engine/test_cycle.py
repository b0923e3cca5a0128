"""Backup and restore end to end on an in-process grid of four friends."""

from __future__ import annotations

import os

import pytest

from p2pbackup.cli.demo import same_tree as _same_tree
from p2pbackup.engine import events as ev
from p2pbackup.errors import PlacementError

pytestmark = pytest.mark.trio


def _tree(root, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _stored(grid, how: str) -> list[str]:
    return [e.path for e in grid.events if isinstance(e, ev.FileDone) and e.stored == how]


async def test_a_tree_comes_back_byte_for_byte(grid, tmp_path):
    src = tmp_path / "docs"
    _tree(
        src,
        {
            "a.txt": b"hello\n",
            "sub/b.bin": os.urandom(700_000),
            "sub/deeper/c": b"",
            "small/1": b"x" * 10,
            "small/2": b"y" * 20,
        },
    )
    (src / "empty-dir").mkdir()
    os.symlink("a.txt", src / "link")
    os.chmod(src / "a.txt", 0o640)
    report = await grid.backup(src)
    assert report.files == 5
    await grid.restore_all(tmp_path / "out")
    assert _same_tree(str(src), str(tmp_path / "out" / "snap0" / "docs"))
    assert os.readlink(tmp_path / "out" / "snap0" / "docs" / "link") == "a.txt"


async def test_second_backup_reads_only_changed_files_and_stores_deltas(grid, tmp_path):
    src = tmp_path / "docs"
    big = os.urandom(3_000_000)
    _tree(src, {"big.bin": big, "same.txt": b"unchanged\n"})
    await grid.backup(src)
    records_before = set(grid.state.records)
    (src / "big.bin").write_bytes(b"inserted at the front" + big)
    grid.events.clear()
    report = await grid.backup(src)
    assert report.changed == 1
    assert [e for e in grid.events if isinstance(e, ev.FilesUnchanged)] == [
        ev.FilesUnchanged(1, len(b"unchanged\n"))
    ]
    assert _stored(grid, "delta") == ["docs/big.bin"]
    new_records = set(grid.state.records) - records_before
    new_bytes = sum(grid.state.records[r].descriptor.length for r in new_records)
    assert new_bytes < 600_000, "a front insertion must not store the file again"
    await grid.restore_all(tmp_path / "out")
    assert (
        tmp_path / "out" / "snap1" / "docs" / "big.bin"
    ).read_bytes() == b"inserted at the front" + big
    assert (tmp_path / "out" / "snap0" / "docs" / "big.bin").read_bytes() == big


async def test_an_unchanged_tree_publishes_no_new_snapshot_unless_asked(grid, tmp_path):
    from p2pbackup.engine.backup import Settings

    src = tmp_path / "docs"
    _tree(src, {"a.txt": b"one\n", "sub/b.txt": b"two\n"})
    first = await grid.backup(src)
    again = await grid.backup(src)
    assert again.unchanged and again.manifest.snapshot_id == first.manifest.snapshot_id
    assert (again.files, again.bytes) == (2, 8)
    assert len(grid.state.head.tips) == 1
    forced = await grid.backup(src, settings=Settings(always_snapshot=True))
    assert not forced.unchanged and forced.manifest.snapshot_id != first.manifest.snapshot_id
    (src / "sub" / "b.txt").unlink()  # a removal changes the tree too
    gone = await grid.backup(src)
    assert not gone.unchanged and len(grid.state.head.tips) == 3


async def test_a_large_delta_is_streamed_both_ways_and_never_held(grid, tmp_path, monkeypatch):
    from p2pbackup.engine import backup as backup_module
    from p2pbackup.engine import restore as restore_module
    from p2pbackup.engine import sourcefile

    monkeypatch.setattr(backup_module, "STREAM_FILE", 200_000)
    monkeypatch.setattr(restore_module, "STREAM_FILE", 200_000)
    src = tmp_path / "docs"
    texts = {f"f{i}.bin": os.urandom(1_000_000) for i in range(3)}
    _tree(src, texts)
    await grid.backup(src)
    _tree(src, {name: os.urandom(300_000) + text for name, text in texts.items()})

    def held(path, plan):
        raise AssertionError("a delta over STREAM_FILE was made whole in memory")

    monkeypatch.setattr(sourcefile, "encode_delta", held)
    grid.events.clear()
    await grid.backup(src)
    assert sorted(_stored(grid, "delta")) == [f"docs/f{i}.bin" for i in range(3)]
    await grid.restore_all(tmp_path / "out")  # each delta is spooled to disk, applied from there
    for name in texts:
        restored = tmp_path / "out" / "snap1" / "docs" / name
        assert restored.read_bytes() == (src / name).read_bytes()
    assert sorted(os.listdir(tmp_path / "out" / "snap1" / "docs")) == sorted(texts)


async def test_a_file_changing_between_the_two_passes_of_its_delta_is_skipped(
    grid, tmp_path, monkeypatch
):
    from p2pbackup.engine import backup as backup_module
    from p2pbackup.engine import sourcefile

    monkeypatch.setattr(backup_module, "STREAM_FILE", 200_000)
    src = tmp_path / "docs"
    text = os.urandom(1_000_000)
    _tree(src, {"a.bin": text})
    await grid.backup(src)
    edited = os.urandom(300_000) + text
    _tree(src, {"a.bin": edited})
    real = sourcefile.delta_id

    def then_rewrite(key, path, plan):  # the first pass sees the file; then it changes
        rid = real(key, path, plan)
        with open(path, "r+b") as f:
            f.write(bytes(b ^ 0xFF for b in edited[:1000]))
        return rid

    monkeypatch.setattr(sourcefile, "delta_id", then_rewrite)
    report = await grid.backup(src)
    assert [s.path for s in report.skipped] == ["docs/a.bin"]
    assert "previous version stays" in report.skipped[0].reason
    assert report.unchanged  # what a snapshot would hold is the last one's: none is made
    await grid.restore_all(tmp_path / "out")
    assert (tmp_path / "out" / "snap0" / "docs" / "a.bin").read_bytes() == text


async def test_many_small_files_are_packed_into_few_records(grid, tmp_path):
    src = tmp_path / "many"
    _tree(src, {f"d{i % 10}/f{i}": os.urandom(i % 300) for i in range(500)})
    await grid.backup(src)
    assert len(grid.state.records) <= 3  # a pack or two and the manifest
    await grid.restore_all(tmp_path / "out")
    assert _same_tree(str(src), str(tmp_path / "out" / "snap0" / "many"))


async def test_identical_content_is_stored_once(grid, tmp_path):
    src = tmp_path / "dup"
    blob = os.urandom(400_000)
    _tree(src, {"one": blob, "two": blob, "three": blob})
    await grid.backup(src)
    full = [r for r in grid.state.records.values() if r.descriptor.length > 400_000]
    assert len(full) == 1


async def test_identical_small_files_are_packed_once(grid, tmp_path):
    src = tmp_path / "dup"
    same = os.urandom(20_000)
    _tree(src, {f"copy{i}": same for i in range(30)} | {"other": os.urandom(20_000)})
    await grid.backup(src)
    packed = sum(r.descriptor.length for r in grid.state.records.values())
    assert packed < 3 * 20_000 + 10_000  # the two contents and a manifest, not 31 files
    assert sorted(_stored(grid, "packed")) == ["dup/copy0", "dup/other"]
    assert len(_stored(grid, "known")) == 29
    await grid.restore_all(tmp_path / "out")
    assert _same_tree(str(src), str(tmp_path / "out" / "snap0" / "dup"))


async def test_restore_survives_a_vanished_friend_and_a_lying_one(grid, tmp_path):
    src = tmp_path / "docs"
    _tree(src, {"a": os.urandom(500_000), "b": b"small"})
    await grid.backup(src)
    stores = list(grid.stores.values())
    stores[0].online = False
    for key in await stores[1].list():
        stores[1].corrupt(key)
    await grid.restore_all(tmp_path / "out")
    assert _same_tree(str(src), str(tmp_path / "out" / "snap0" / "docs"))
    assert any(isinstance(e, ev.ShareRejected) for e in grid.events)


async def test_unreadable_file_is_reported_and_the_backup_completes(grid, tmp_path, monkeypatch):
    src = tmp_path / "docs"
    _tree(src, {"ok": b"fine", "secret": b"no"})
    from p2pbackup.engine import sourcefile

    real = sourcefile.read_signature

    def refuse(path, *rest):  # as open() does for a file without read permission
        if path.endswith("secret"):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *rest)

    monkeypatch.setattr(sourcefile, "read_signature", refuse)
    report = await grid.backup(src)
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("docs/secret", "could not be read: Permission denied")
    ]
    assert report.files == 1


async def test_vanished_file_is_reported_and_the_backup_completes(grid, tmp_path, monkeypatch):
    src = tmp_path / "docs"
    _tree(src, {"ok": b"fine", "gone": os.urandom(300_000)})
    from p2pbackup.engine import sourcefile

    real = sourcefile.read_signature

    def vanish(path, *rest):
        if path.endswith("gone"):
            os.unlink(path)
        return real(path, *rest)

    monkeypatch.setattr(sourcefile, "read_signature", vanish)
    report = await grid.backup(src)
    assert [s.path for s in report.skipped] == ["docs/gone"]
    await grid.restore_all(tmp_path / "out")
    assert (tmp_path / "out" / "snap0" / "docs" / "ok").read_bytes() == b"fine"


async def test_a_full_friend_makes_placement_move_on(make_grid, tmp_path):
    grid = make_grid(friends=5, quota=10_000_000)
    src = tmp_path / "docs"
    _tree(src, {"a": os.urandom(2_000_000)})
    # friend0 said it had room, but its disk filled up: every put there is refused.
    room = {name: 10_000_000 for name in grid.stores}
    grid.stores["friend0"].quota = 1000
    await grid.backup(src, room=room)
    assert not await grid.stores["friend0"].list()
    assert any(isinstance(e, ev.FriendTrouble) and e.friend == "friend0" for e in grid.events)
    await grid.restore_all(tmp_path / "out")
    assert _same_tree(str(src), str(tmp_path / "out" / "snap0" / "docs"))


async def test_no_room_anywhere_is_a_clear_error(make_grid, tmp_path):
    grid = make_grid(friends=4, quota=100_000)
    src = tmp_path / "docs"
    _tree(src, {"a": os.urandom(2_000_000)})
    with pytest.raises(PlacementError, match="friend"):
        await grid.backup(src)
    assert grid.state.head is None, "nothing is published when records could not be stored"


async def test_a_file_changing_between_the_two_reads_is_skipped_not_corrupted(grid, tmp_path):
    src = tmp_path / "docs"
    big = os.urandom(3_000_000)
    _tree(src, {"big.bin": big, "ok": b"fine"})
    await grid.backup(src)
    (src / "big.bin").write_bytes(b"front" + big)
    from p2pbackup.engine import sourcefile

    real = sourcefile.encode_delta

    def rewrite_meanwhile(path, plan):  # someone writes to the file between our reads
        with open(path, "r+b") as f:
            f.write(b"FRONT")
        return real(path, plan)

    sourcefile.encode_delta = rewrite_meanwhile
    try:
        report = await grid.backup(src)
    finally:
        sourcefile.encode_delta = real
    assert [s.path for s in report.skipped] == ["docs/big.bin"]
    assert "changed while" in report.skipped[0].reason
    assert report.unchanged  # the snapshot would keep the version it had: none is made
    await grid.restore_all(tmp_path / "out")
    assert (tmp_path / "out" / "snap0" / "docs" / "big.bin").read_bytes() == big
