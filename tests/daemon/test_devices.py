"""Two devices of one owner (the second recovered from the phrase): ``latest`` and
retention go by the device and its folders, and neither device forgets the other's
snapshots unless told to."""

from __future__ import annotations

import os

import pytest

from p2pbackup.cli.demo import same_tree
from p2pbackup.errors import ConfigError, IntegrityError
from p2pbackup.storage.statedb import StateDB
from tests.daemon.conftest import pair, started

pytestmark = pytest.mark.trio


def _folder(root, name: str, text: str) -> str:
    top = root / name
    top.mkdir(parents=True)
    (top / f"{name.lower()}.txt").write_text(text)
    return str(top)


async def _two_devices(nodes, tmp_path):
    """laptop backs up Documents twice; desktop, recovered from the same phrase, backs up
    Music twice. Their snapshot ids, oldest first."""
    docs = nodes.profiles["laptop"].settings()["folders"][0]
    laptop = [(await nodes.run("laptop", "backup"))["snapshot"]]
    with open(f"{docs}/documents.txt", "a") as f:
        f.write("second version\n")
    laptop.append((await nodes.run("laptop", "backup"))["snapshot"])
    music = _folder(tmp_path, "Music", "la la la\n")
    desktop_node = await nodes.start(
        "desktop", secret=nodes.profiles["laptop"].secret(), folders=[music]
    )
    await pair(nodes.nodes["alice"], desktop_node)  # it learns the others from the head
    desktop = [(await nodes.run("desktop", "backup"))["snapshot"]]
    with open(f"{music}/music.txt", "a") as f:
        f.write("and again\n")
    desktop.append((await nodes.run("desktop", "backup"))["snapshot"])
    return laptop, desktop


async def test_latest_is_this_devices_and_another_is_named(tmp_path):
    docs = _folder(tmp_path, "Documents", "first version\n")
    async with started(tmp_path / "nodes", friends=("alice", "bob", "carol"),
                       folders=[docs]) as nodes:  # fmt: skip
        laptop, desktop = await _two_devices(nodes, tmp_path)
        # From the head alone: the laptop's manifests, never read here, are not fetched.
        snaps = await nodes.run("desktop", "snapshots")
        assert [(s["id"], s["device"], s["roots"]) for s in snaps] == [
            *((sid, "laptop", None) for sid in laptop),
            *((sid, "desktop", ["Music"]) for sid in desktop),
        ]
        assert [s["files"] for s in snaps] == [None, None, 1, 1]
        snaps = await nodes.run("desktop", "snapshots", sizes=True)
        assert [(s["id"], s["device"], s["roots"]) for s in snaps] == [
            *((sid, "laptop", ["Documents"]) for sid in laptop),
            *((sid, "desktop", ["Music"]) for sid in desktop),
        ]
        # The desktop's newest snapshot is the newest of all; the laptop backs up after it.
        with open(f"{docs}/documents.txt", "a") as f:
            f.write("third version\n")
        laptop.append((await nodes.run("laptop", "backup"))["snapshot"])

        mine = await nodes.run("desktop", "ls", selector="latest")
        assert mine["snapshot"] == desktop[-1]
        assert [(e["path"], e["children"]) for e in mine["entries"]] == [("Music", 1)]
        theirs = await nodes.run("desktop", "ls", selector="latest@laptop")
        assert theirs["snapshot"] == laptop[-1]
        assert (await nodes.run("laptop", "ls", selector="latest"))["snapshot"] == laptop[-1]
        changes = await nodes.run("desktop", "diff", old=desktop[0], new="latest")
        assert changes["to"] == desktop[-1] and changes["changed"] == ["Music/music.txt"]
        await nodes.run("desktop", "restore", selector="latest@laptop", to=str(tmp_path / "r"))
        assert same_tree(docs, str(tmp_path / "r" / "Documents"))
        with pytest.raises(ConfigError, match=r"no-such.*devices: desktop, laptop"):
            await nodes.run("desktop", "ls", selector="latest@no-such")
        with pytest.raises(ConfigError, match="only 'latest' takes @DEVICE"):
            await nodes.run("desktop", "ls", selector=f"{laptop[0][:8]}@laptop")


async def test_forget_keeps_per_device_and_leaves_other_devices_alone(tmp_path):
    docs = _folder(tmp_path, "Documents", "first version\n")
    async with started(tmp_path / "nodes", friends=("alice", "bob", "carol"),
                       folders=[docs]) as nodes:  # fmt: skip
        laptop, desktop = await _two_devices(nodes, tmp_path)
        sizes = {sn["id"]: sn["bytes"] for sn in await nodes.run("laptop", "snapshots", sizes=True)}
        assert sizes[laptop[-1]] != sizes[desktop[-1]]
        # What status calls protected is this device's latest, though the desktop's is newer.
        status = await nodes.run("laptop", "status")
        assert status["protected_bytes"] == sizes[laptop[-1]]
        plan = await nodes.run("desktop", "forget", keep_last=1, dry_run=True)
        assert plan["forgotten"] == [desktop[0]]
        assert [(k["id"], k["device"]) for k in plan["kept"]] == [(desktop[1], "desktop")]
        assert plan["other_devices_kept"] == 2
        plan = await nodes.run("laptop", "forget", keep_last=1, dry_run=True)
        assert plan["forgotten"] == [laptop[0]]  # not the desktop's, though they are newer

        done = await nodes.run("desktop", "forget", keep_last=1, prune=True)
        assert done["forgotten"] == [desktop[0]] and done["removed_records"] >= 1
        left = [s["id"] for s in await nodes.run("laptop", "snapshots")]
        assert left == [*laptop, desktop[1]]
        # The prune freed only what the desktop's forgotten snapshot alone needed.
        for number, sid in enumerate(laptop):
            await nodes.run("laptop", "restore", selector=sid, to=str(tmp_path / f"l{number}"))
        assert same_tree(docs, str(tmp_path / "l1" / "Documents"))

        named = await nodes.run("desktop", "forget", keep_last=1, device="laptop")
        assert named["forgotten"] == [laptop[0]]
        everyone = await nodes.run("laptop", "forget", keep_last=1, all_devices=True,
                                   dry_run=True)  # fmt: skip
        assert everyone["forgotten"] == [] and everyone["devices"] == ["desktop", "laptop"]
        with pytest.raises(ConfigError, match=r"nobody.*devices: desktop, laptop"):
            await nodes.run("laptop", "forget", keep_last=1, device="nobody")


def _lose_manifest(nodes, snapshot_id: str) -> None:
    """The manifest of one of the laptop's snapshots is gone from every friend."""
    db = StateDB(nodes.profiles["laptop"].path("state.sqlite"))
    _, body, _ = db.head()
    db.close()
    ref = next(t for t in body.tips if t.snapshot_id.hex() == snapshot_id)
    assert ref.device == "laptop"  # the head (version 2) says whose it is
    rid = ref.manifest.record_id.hex()
    for name in ("alice", "bob", "carol"):
        for folder, _, files in os.walk(nodes.profiles[name].path("pool")):
            for share in files:
                if share.startswith(rid):
                    os.unlink(os.path.join(folder, share))


async def test_forget_prune_is_refused_while_a_kept_snapshot_cannot_be_read(tmp_path):
    docs = _folder(tmp_path, "Documents", "first version\n")
    async with started(tmp_path / "nodes", friends=("alice", "bob", "carol"),
                       folders=[docs]) as nodes:  # fmt: skip
        laptop, _ = await _two_devices(nodes, tmp_path)
        _lose_manifest(nodes, laptop[-1])
        # The desktop (no manifest cached) cannot read it; it would be kept, and a prune
        # could not tell what it needs: nothing is forgotten or freed.
        with pytest.raises(IntegrityError, match=r"1 snapshot.*cannot be read"):
            await nodes.run("desktop", "forget", keep_last=1, device="laptop", prune=True)
        assert [s["id"] for s in await nodes.run("laptop", "snapshots")][:2] == laptop
        await nodes.run("laptop", "restore", selector=laptop[0], to=str(tmp_path / "r"))


async def test_an_unreadable_snapshot_is_grouped_by_the_head_and_can_be_forgotten(tmp_path):
    docs = _folder(tmp_path, "Documents", "first version\n")
    async with started(tmp_path / "nodes", friends=("alice", "bob", "carol"),
                       folders=[docs]) as nodes:  # fmt: skip
        laptop, desktop = await _two_devices(nodes, tmp_path)
        _lose_manifest(nodes, laptop[0])
        done = await nodes.run("desktop", "forget", keep_last=1, device="laptop", prune=True)
        assert done["forgotten"] == [laptop[0]]
        assert [(k["id"], k["device"]) for k in done["kept"]] == [(laptop[1], "laptop")]
        assert [s["id"] for s in await nodes.run("laptop", "snapshots")] == [laptop[1], *desktop]
        await nodes.run("laptop", "restore", selector="latest", to=str(tmp_path / "r"))
        assert same_tree(docs, str(tmp_path / "r" / "Documents"))
