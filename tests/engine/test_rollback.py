"""Every friend's pool goes back in time: restored from a copy taken after snapshot 1 while
the owner already has snapshot 3. Nothing may be lost silently."""

from __future__ import annotations

import os

import pytest
import trio

from p2pbackup.cli.demo import same_tree
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.engine import events as ev
from p2pbackup.engine.fetcher import Fetcher, list_holders
from p2pbackup.engine.headstore import check_heads, read_head
from p2pbackup.engine.holdings import missing_records, store_from_sources
from p2pbackup.engine.restore import Restorer, load_manifest
from p2pbackup.engine.state import BackupState
from p2pbackup.engine.verify import Verifier
from p2pbackup.errors import IntegrityError
from p2pbackup.storage.statedb import StateDB
from p2pbackup.storage.store import ShareKey

pytestmark = pytest.mark.trio


def _copy_pools(grid) -> dict:
    return {name: (dict(s._shares), s._head, s._used) for name, s in grid.stores.items()}


def _restore_pools(grid, copies: dict) -> None:
    for name, (shares, head, used) in copies.items():
        store = grid.stores[name]
        store._shares, store._head, store._used = dict(shares), head, used


async def _three_snapshots(grid, src):
    """Snapshots 1, 2 and 3 of a tree that changes each time; the pools as after 1."""
    src.mkdir()
    (src / "keep.txt").write_bytes(b"never changes\n")
    (src / "notes.txt").write_bytes(b"version 1\n")
    (src / "big.bin").write_bytes(os.urandom(600_000))  # a full text of its own
    first = await grid.backup(src)
    copies = _copy_pools(grid)
    (src / "notes.txt").write_bytes(b"version 2\n")  # packed alone in snapshot 2
    second = await grid.backup(src)
    (src / "big.bin").write_bytes(os.urandom(600_000))
    third = await grid.backup(src)
    return first, second, third, copies


async def _all_snapshots(keys: OwnerKeys, stores) -> list:
    """What a device recovered from the phrase can read: (ref, manifest or None), oldest
    first."""
    fetcher = Fetcher(keys, stores, ev.ignore, trio.CapacityLimiter(2))
    _, body = await read_head(keys, stores)
    out = []
    for ref in sorted(body.tips, key=lambda r: r.created_at_ns):
        try:
            out.append((ref, (await load_manifest(fetcher, ref))[0]))
        except IntegrityError:
            out.append((ref, None))
    return out


async def test_a_rollback_is_named_and_the_next_backup_stores_everything_again(grid, tmp_path):
    src = tmp_path / "docs"
    first, _, third, copies = await _three_snapshots(grid, src)
    _restore_pools(grid, copies)

    seen: list[ev.Event] = []
    rolled = await check_heads(grid.keys, grid.stores, grid.state, seen.append)
    assert rolled == {name: (1, 3) for name in grid.stores}
    assert grid.state.rollbacks == rolled  # named by status and verify until checked
    named = sorted(e.friend for e in seen if isinstance(e, ev.HeadRolledBack))
    assert named == sorted(grid.stores)
    # This device's newer head is published again, above what every friend held.
    seq, body = await read_head(grid.keys, grid.stores)
    assert seq == 4 and len(body.tips) == 3
    assert await check_heads(grid.keys, grid.stores, grid.state, seen.append) == {}

    grid.events.clear()
    fourth = await grid.backup(src)
    assert grid.state.rollbacks == {}  # the backup asked friends and stored what they lost
    missing = [e for e in grid.events if isinstance(e, ev.RecordsMissing)]
    assert missing and missing[0].records > 0
    # notes.txt's pack and big.bin's full text were rebuilt from the files, byte-identical:
    # nothing had to be read as changed.
    assert fourth.changed == 0
    # Friends again hold every share of every record local state calls stored.
    holders, _ = await list_holders(grid.stores, ev.ignore)
    for rid, rec in grid.state.records.items():
        assert all(ShareKey(rid, i) in holders for i in range(rec.descriptor.n))
    assert await missing_records(grid.stores, grid.state, ev.ignore) == set()

    # A device recovered from the phrase lists every snapshot and restores each of them
    # (the lost manifests were stored again from this device's copies).
    snaps = await _all_snapshots(OwnerKeys.from_secret(bytes(range(32))), grid.stores)
    assert all(m is not None for _, m in snaps) and len(snaps) >= 3
    assert snaps[0][1].snapshot_id == first.manifest.snapshot_id
    restorer = Restorer(Fetcher(grid.keys, grid.stores, ev.ignore, trio.CapacityLimiter(2)))
    await restorer.restore(snaps[-1][1], str(tmp_path / "latest"))
    assert same_tree(str(src), str(tmp_path / "latest" / "docs"))
    await restorer.restore(snaps[2][1], str(tmp_path / "third"))
    assert third.manifest.snapshot_id == snaps[2][1].snapshot_id
    assert same_tree(str(src), str(tmp_path / "third" / "docs"))  # unchanged since 3
    await restorer.restore(snaps[0][1], str(tmp_path / "first"))
    assert (tmp_path / "first" / "docs" / "notes.txt").read_bytes() == b"version 1\n"


async def test_repair_stores_lost_records_again_from_files_on_disk(grid, tmp_path):
    src = tmp_path / "docs"
    _, second, third, copies = await _three_snapshots(grid, src)
    _restore_pools(grid, copies)
    (src / "notes.txt").write_bytes(b"version 3, after the rollback\n")  # v2 is gone for good
    manifests = [second.manifest, third.manifest]
    descriptors = {d.record_id: d for m in manifests for d in m.records}
    verifier = Verifier(grid.stores, grid.state, ev.ignore, trio.CapacityLimiter(2))
    report = await verifier.verify(descriptors.values(), read_data=True)
    lost = {rid: h.descriptor for rid, h in report.records.items() if h.lost}
    assert len(lost) == 2  # snapshot 2's pack (notes v2) and snapshot 3's big.bin
    labels = {"docs": str(src)}

    def _source(manifest, path):
        label, _, rest = path.partition("/")
        return os.path.join(labels[label], rest)

    found = await store_from_sources(
        grid.keys, grid.stores, grid.state, ev.ignore, manifests, lost, _source,
        {n: 1 << 30 for n in grid.stores}, trio.CapacityLimiter(2),
    )  # fmt: skip
    big = third.manifest.find("docs/big.bin").chain[0].blob.record_id
    assert found.records == [big]  # the same id and shares: snapshot 3's big.bin is whole
    assert list(found.lost.values()) == [["docs/notes.txt"]]
    report = await verifier.verify([descriptors[big]], read_data=True)
    assert not report.records[big].lost and report.records[big].safe_losses >= 1


async def test_a_fresh_state_remembers_no_heads_so_sees_no_rollback(tmp_path):
    """Nothing to compare with on a device that never saw a head: no false alarm."""
    state = BackupState()
    assert state.friend_heads == {}
    state.saw_heads({"a": 3})
    state.saw_heads({"a": 1})  # only higher numbers count
    assert state.friend_heads == {"a": 3}


async def test_what_state_sqlite_keeps_of_friends_heads_is_pinned(tmp_path):
    """The two meta rows (docs/format.md, local state): fixed bytes, read back; a value this
    version cannot read is an empty cache, not an error."""
    db = StateDB(str(tmp_path / "state.sqlite"))
    state = BackupState(db)
    state.saw_heads({"ab" * 32: 3})
    state.rolled_back({"ab" * 32: (1, 3)})
    assert db.meta("friend_heads") == b'{"' + b"ab" * 32 + b'": 3}'
    assert db.meta("rollbacks") == b'{"' + b"ab" * 32 + b'": [1, 3]}'
    assert BackupState(db).rollbacks == {"ab" * 32: (1, 3)}
    state.rollbacks_checked()
    assert db.meta("rollbacks") == b"{}" and BackupState(db).rollbacks == {}
    db.put_friend_heads({})
    db._db.execute("UPDATE meta SET value = ? WHERE key = 'friend_heads'", (b"[1, 2]",))
    assert db.friend_heads() == {}
    db.close()


async def test_the_next_backup_makes_old_snapshots_whole_from_unchanged_files(grid, tmp_path):
    """A pack whose files are all unchanged on disk is stored again as it was, so the old
    snapshot is whole, even though this backup packs its files differently."""
    src = tmp_path / "docs"
    src.mkdir()
    (src / "base.txt").write_bytes(b"in snapshot 1\n")
    await grid.backup(src)
    copies = _copy_pools(grid)
    (src / "x.txt").write_bytes(b"x, new in snapshot 2\n")
    (src / "y.txt").write_bytes(b"y, new in snapshot 2\n")
    second = await grid.backup(src)
    _restore_pools(grid, copies)
    (src / "z.txt").write_bytes(b"z, new since\n")  # the next pack is not snapshot 2's
    grid.events.clear()
    await grid.backup(src)
    assert any(isinstance(e, ev.RecordsMissing) for e in grid.events)
    fetcher = Fetcher(grid.keys, grid.stores, ev.ignore, trio.CapacityLimiter(2))
    await Restorer(fetcher).restore(second.manifest, str(tmp_path / "second"))
    for name in ("base.txt", "x.txt", "y.txt"):
        assert (tmp_path / "second" / "docs" / name).read_bytes() == (src / name).read_bytes()


async def test_the_new_events_on_the_control_socket_are_pinned():
    events = {
        ev.HeadRolledBack("bob", 1, 3): {
            "type": "HeadRolledBack", "friend": "bob", "seen": 1, "known": 3
        },
        ev.RecordsMissing(12): {"type": "RecordsMissing", "records": 12},
        ev.SnapshotDamaged(b"\x01" * 16, "gone"): {
            "type": "SnapshotDamaged", "snapshot_id": "01" * 16, "reason": "gone"
        },
    }  # fmt: skip
    for event, wire in events.items():
        assert ev.to_dict(event) == wire and ev.from_dict(wire) == event


async def _backed_up_then_friend0_lists_garbage(grid, tmp_path):
    """One file backed up; from then on friend0 answers its share list with garbage."""
    src = tmp_path / "docs"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a\n")
    await grid.backup(src)

    async def _garbage() -> frozenset:
        raise IntegrityError("The friend's list is not in a format this version understands.")

    grid.stores["friend0"].list = _garbage
    return src


async def test_a_friend_answering_its_list_with_garbage_cannot_stop_a_backup(grid, tmp_path):
    src = await _backed_up_then_friend0_lists_garbage(grid, tmp_path)
    (src / "b.txt").write_bytes(b"b\n")
    grid.events.clear()
    report = await grid.backup(src)  # its shares count as placed: it did not answer
    assert report.changed == 1
    assert not any(isinstance(e, ev.RecordsMissing) for e in grid.events)
    assert any(isinstance(e, ev.FriendTrouble) and e.friend == "friend0" for e in grid.events)


async def test_a_friend_answering_its_list_with_garbage_cannot_stop_a_restore(grid, tmp_path):
    from p2pbackup.engine.fetcher import list_holders

    await _backed_up_then_friend0_lists_garbage(grid, tmp_path)
    grid.events.clear()
    holders, unreachable = await list_holders(grid.stores, grid.events.append)
    assert unreachable == ["friend0"] and holders  # the others' lists still count
    await grid.restore_all(tmp_path / "out")  # verify, prune and restore list the same way
    assert (tmp_path / "out" / "snap0" / "docs" / "a.txt").read_bytes() == b"a\n"
