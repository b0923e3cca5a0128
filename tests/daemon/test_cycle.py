"""Backup and restore end to end between real nodes (in one process, on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil

import pytest
import trio

from p2pbackup.cli.demo import same_tree
from p2pbackup.engine import events as ev
from p2pbackup.errors import ConfigError, PlacementError
from p2pbackup.storage.statedb import StateDB
from tests.daemon.conftest import pair, started

pytestmark = pytest.mark.trio


def make_tree(root) -> str:
    rng = random.Random(7)
    top = root / "Documents"
    (top / "notes").mkdir(parents=True)
    (top / "empty-folder").mkdir()
    (top / "photo.raw").write_bytes(rng.randbytes(700_000))
    (top / "notes" / "todo.txt").write_text("milk\neggs\n" * 500)
    (top / "notes" / "empty.txt").write_bytes(b"")
    for i in range(30):
        (top / "notes" / f"small-{i}.txt").write_text(f"note {i}\n" * (i + 1))
    os.symlink("notes/todo.txt", top / "todo-link")
    os.chmod(top / "notes" / "todo.txt", 0o600)
    return str(top)


def edit(folder: str) -> None:
    with open(os.path.join(folder, "photo.raw"), "r+b") as f:
        data = f.read()
        f.seek(0)
        f.write(b"inserted at the front" + data)
    with contextlib.suppress(FileNotFoundError):  # edited twice: gone already
        os.unlink(os.path.join(folder, "notes", "small-3.txt"))
    with open(os.path.join(folder, "notes", "todo.txt"), "a") as f:
        f.write("bread\n")


async def test_backup_edit_backup_then_restore_both_without_a_friend(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", folders=[folder]) as nodes:
        first = await nodes.run("laptop", "backup")
        shutil.copytree(folder, tmp_path / "expected-1" / "Documents", symlinks=True)
        edit(folder)
        second = await nodes.run("laptop", "backup")
        shutil.copytree(folder, tmp_path / "expected-2" / "Documents", symlinks=True)
        assert first["changed"] == first["files"] == 33
        assert second["changed"] == 2  # photo.raw and todo.txt; the rest is unchanged
        # The edit inserted 21 bytes at the front: a delta, not another 700 KB.
        assert second["bytes_stored"] < 100_000 < first["bytes_stored"]

        await nodes.stop("bob")
        snaps = await nodes.run("laptop", "snapshots")
        assert [s["id"] for s in snaps] == [first["snapshot"], second["snapshot"]]
        for number, snap in enumerate(snaps, 1):
            target = tmp_path / f"restored-{number}"
            report = await nodes.run("laptop", "restore", selector=snap["id"][:6], to=str(target))
            assert report["files"] == snap["files"]
            assert same_tree(str(tmp_path / f"expected-{number}"), str(target))

        changes = await nodes.run("laptop", "diff", old=first["snapshot"], new="latest")
        assert changes["removed"] == ["Documents/notes/small-3.txt"]
        assert {"Documents/photo.raw", "Documents/notes/todo.txt"} <= set(changes["changed"])
        listing = await nodes.run("laptop", "ls", selector="latest", path="Documents/notes")
        assert "Documents/notes/empty.txt" in {e["path"] for e in listing["entries"]}
        status = await nodes.run("laptop", "status")
        assert status["snapshots"] == 2 and status["friends_that_could_disappear"] == 2
        assert len(status["friends_online"]) == 3


async def test_a_new_device_recovers_from_the_phrase_and_one_friend(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", folders=[folder]) as nodes:
        await nodes.run("laptop", "backup")
        secret = nodes.profiles["laptop"].secret()
        await nodes.stop("laptop")  # the laptop is lost, and with it the catalog
        new = await nodes.start("new-laptop", secret=secret)
        assert new.catalog.friends() == []
        await pair(nodes.nodes["alice"], new)
        status = await nodes.run("new-laptop", "status")  # the friends' head, not its own
        assert status["snapshots"] == 1 and status["protected_files"] == 33
        report = await nodes.run("new-laptop", "restore", selector="latest", to=str(tmp_path / "r"))
        assert same_tree(folder, str(tmp_path / "r" / "Documents"))
        assert report["files"] == 33
        # The head named every friend: the new device knows all four again.
        assert {f.name for f in new.catalog.friends()} == {"alice", "bob", "carol", "dave"}


async def test_a_friend_returning_damaged_shares_is_caught_and_routed_around(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", folders=[folder]) as nodes:
        await nodes.run("laptop", "backup")
        # Damage every share held by the friends holding the primary shares (0 and 1):
        # decoding must then use parity from the other two.
        owners = {n.keys.owner_id.hex(): name for name, n in nodes.nodes.items()}
        state = StateDB(nodes.profiles["laptop"].path("state.sqlite"))
        primaries = {owners[p[i]] for _, rec in state.records() for p in [rec.placement]
                     for i in (0, 1)}  # fmt: skip
        state.close()
        assert len(primaries) == 2
        damaged = 0
        for name in primaries:
            for folder_path, _, names in os.walk(nodes.profiles[name].path("pool")):
                for share in names:
                    with open(os.path.join(folder_path, share), "r+b") as f:
                        f.seek(100)
                        byte = f.read(1)
                        f.seek(100)
                        f.write(bytes([byte[0] ^ 0xFF]))
                    damaged += 1
        assert damaged
        seen: list[ev.Event] = []
        await nodes.run("laptop", "restore", seen.append, selector="latest", to=str(tmp_path / "r"))
        assert same_tree(folder, str(tmp_path / "r" / "Documents"))
        rejected = {e.friend for e in seen if isinstance(e, ev.ShareRejected)}
        assert rejected == primaries


async def test_a_full_friend_gets_fewer_shares_and_no_room_anywhere_fails_clearly(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", friends=("alice", "bob", "carol"),
                       folders=[folder]) as nodes:  # fmt: skip
        await nodes.start("dave")
        await pair(nodes.nodes["laptop"], nodes.nodes["dave"], offer=64 * 1024)
        report = await nodes.run("laptop", "backup")
        dave = {f["name"]: f for f in await nodes.run("laptop", "friends")}["dave"]
        assert dave["they_store_for_me"] <= 64 * 1024
        assert report["files"] == 33
        await nodes.stop("alice")
        await nodes.run("laptop", "restore", selector="latest", to=str(tmp_path / "r"))
        assert same_tree(folder, str(tmp_path / "r" / "Documents"))

    async with started(tmp_path / "tiny", folders=[folder]) as nodes:
        for name in ("alice", "bob", "carol", "dave"):
            nodes.nodes[name].catalog.set_quota(nodes.nodes["laptop"].keys.owner_id, 10_000)
        with pytest.raises(PlacementError, match="room"):
            await nodes.run("laptop", "backup")
        assert await nodes.run("laptop", "snapshots") == []  # nothing half-published
        with pytest.raises(ConfigError, match="no snapshots"):
            await nodes.run("laptop", "restore", selector="latest", to=str(tmp_path / "x"))


async def test_in_place_restore_keeps_newer_files_unless_forced(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", friends=("alice", "bob"), folders=[folder]) as nodes:
        await nodes.run("laptop", "backup")
        todo = os.path.join(folder, "notes", "todo.txt")
        os.unlink(os.path.join(folder, "photo.raw"))
        with open(todo, "w") as f:
            f.write("rewritten after the backup\n")
        report = await nodes.run("laptop", "restore", in_place=True)
        assert report["kept_newer"] == ["Documents/notes/todo.txt"]
        assert os.path.getsize(os.path.join(folder, "photo.raw")) == 700_000
        with open(todo) as f:
            assert f.read() == "rewritten after the backup\n"
        await nodes.run("laptop", "restore", in_place=True, force=True, paths=[
            "Documents/notes/todo.txt"])  # fmt: skip
        with open(todo) as f:
            assert f.read().startswith("milk")


class _HeardOnTheLan:
    """What mDNS would report: here the friend's node, as its host announces itself."""

    def __init__(self, *nodes) -> None:
        self._nodes = nodes

    def peers(self):
        from libp2p.peer.peerinfo import info_from_p2p_addr

        return [info_from_p2p_addr(n.host.get_addrs()[0]) for n in self._nodes]

    async def wait_until(self, wanted):
        """As LanPeers: the nodes heard once ``wanted`` holds; these never change."""
        if not wanted(peers := self.peers()):
            await trio.sleep_forever()
        return peers


async def test_a_recovered_device_finds_its_friends_on_the_lan_without_pairing(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", folders=[folder]) as nodes:
        await nodes.run("laptop", "backup")
        secret = nodes.profiles["laptop"].secret()
        await nodes.stop("laptop")
        new = await nodes.start("new-laptop", secret=secret)
        new.lan = _HeardOnTheLan(nodes.nodes["carol"])
        await nodes.run("new-laptop", "restore", selector="latest", to=str(tmp_path / "r"))
        assert same_tree(folder, str(tmp_path / "r" / "Documents"))
        assert {f.name for f in new.catalog.friends()} == {"alice", "bob", "carol", "dave"}


async def test_a_large_file_streams_over_libp2p_and_back(tmp_path):
    from p2pbackup.engine.backup import STREAM_FILE

    folder = tmp_path / "Video"
    folder.mkdir()
    (folder / "clip.bin").write_bytes(random.Random(9).randbytes(STREAM_FILE + 3_000_000))
    async with started(tmp_path / "nodes", friends=("alice", "bob", "carol"),
                       folders=[str(folder)]) as nodes:  # fmt: skip
        report = await nodes.run("laptop", "backup")
        assert report["bytes_stored"] > STREAM_FILE  # one record, sent in pieces
        await nodes.stop("carol")
        await nodes.run("laptop", "restore", selector="latest", to=str(tmp_path / "r"))
        assert same_tree(str(folder), str(tmp_path / "r" / "Video"))
        check = await nodes.run("laptop", "verify")  # proofs made while streaming hold
        assert check["lost"] == 0 and check["friends"]["alice"]["damaged"] == 0
