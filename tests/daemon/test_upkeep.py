"""verify, verify --repair and forget --prune between real nodes."""

from __future__ import annotations

import os
import random
import shutil

import pytest

from p2pbackup.cli.demo import same_tree
from p2pbackup.core.refs import StorageKind
from p2pbackup.core.revlog import Revlog
from p2pbackup.storage.statedb import StateDB
from tests.daemon.conftest import started
from tests.daemon.test_cycle import edit, make_tree

pytestmark = pytest.mark.trio


def _shares(profile) -> list[str]:
    return [
        os.path.join(folder, name)
        for folder, _, names in os.walk(profile.path("pool"))
        for name in names
    ]


async def test_verify_proves_possession_finds_damage_and_repairs_it(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", folders=[folder]) as nodes:
        await nodes.run("laptop", "backup")
        clean = await nodes.run("laptop", "verify")
        assert clean["at_risk"] == clean["lost"] == 0 and clean["records"] >= 3
        assert clean["friends_that_could_disappear"] == 2
        assert all(
            c == {"good": c["good"], "damaged": 0, "missing": 0, "unproven": 0}
            for c in clean["friends"].values()
        )

        # Carol loses everything; Dave's disk flips a byte in every share.
        for path in _shares(nodes.profiles["carol"]):
            os.unlink(path)
        for path in _shares(nodes.profiles["dave"]):
            with open(path, "r+b") as f:
                f.seek(60)
                byte = f.read(1)
                f.seek(60)
                f.write(bytes([byte[0] ^ 1]))
        hurt = await nodes.run("laptop", "verify")
        assert hurt["friends"]["dave"]["damaged"] == clean["records"]
        # A friend whose whole pool was deleted is named, its shares counted as missing.
        carol = hurt["friends"]["carol"]
        assert carol["good"] == 0 and carol["missing"] == clean["friends"]["carol"]["good"]
        assert hurt["emptied"] == ["carol"]
        assert hurt["at_risk"] == clean["records"] and hurt["lost"] == 0
        assert hurt["friends_that_could_disappear"] == 0

        fixed = await nodes.run("laptop", "verify", read_data=True, repair=True)
        assert fixed["repaired"] == clean["records"]
        again = await nodes.run("laptop", "verify", read_data=True)
        assert again["at_risk"] == 0 and again["friends_that_could_disappear"] >= 1
        assert all(c["damaged"] == 0 for c in again["friends"].values())
        # Rebuilt shares restore too, with the two original friends away.
        await nodes.stop("alice")
        await nodes.run("laptop", "restore", selector="latest", to=str(tmp_path / "r"))
        assert same_tree(folder, str(tmp_path / "r" / "Documents"))


async def test_forget_and_prune_free_space_and_keep_what_is_kept(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", friends=("alice", "bob"), folders=[folder]) as nodes:
        ids = []
        for number in range(3):
            if number:
                edit(folder)
                with open(os.path.join(folder, f"new-{number}.bin"), "wb") as f:
                    f.write(os.urandom(300_000))
            ids.append((await nodes.run("laptop", "backup"))["snapshot"])
            shutil.copytree(folder, tmp_path / f"expected-{number}" / "Documents", symlinks=True)
        before = sum(map(os.path.getsize, _shares(nodes.profiles["alice"])))

        plan = await nodes.run("laptop", "forget", keep_last=1, dry_run=True)
        assert plan["forgotten"] == ids[:2] and len(await nodes.run("laptop", "snapshots")) == 3
        done = await nodes.run("laptop", "forget", keep_last=1, prune=True)
        assert done["forgotten"] == ids[:2] and done["removed_records"] > 0
        assert [s["id"] for s in await nodes.run("laptop", "snapshots")] == ids[2:]
        after = sum(map(os.path.getsize, _shares(nodes.profiles["alice"])))
        assert after < before

        await nodes.run("laptop", "restore", selector="latest", to=str(tmp_path / "r"))
        assert same_tree(str(tmp_path / "expected-2"), str(tmp_path / "r"))
        check = await nodes.run("laptop", "verify", read_data=True)
        assert check["lost"] == check["at_risk"] == 0

        # The next backup re-reads what pruning took from under it, and restores whole.
        with open(os.path.join(folder, "after-prune.txt"), "w") as f:
            f.write("still works\n")
        await nodes.run("laptop", "backup")
        await nodes.run("laptop", "restore", selector="latest", to=str(tmp_path / "r2"))
        assert same_tree(folder, str(tmp_path / "r2" / "Documents"))


async def test_prune_repacks_a_kept_chain_so_the_old_full_text_goes(tmp_path):
    folder = tmp_path / "Work"
    folder.mkdir()
    rng = random.Random(11)
    big = folder / "model.bin"
    text = rng.randbytes(600_000)
    async with started(
        tmp_path / "nodes", friends=("alice", "bob"), folders=[str(folder)]
    ) as nodes:
        versions = []
        for number in range(3):
            if number:  # rewrite 70%: a delta first, then the chain is too costly: a full text
                cut = 180_000
                text = text[:cut] + rng.randbytes(len(text) - cut)
            big.write_bytes(text)
            os.utime(big, ns=(number * 10**9, number * 10**9))
            versions.append((await nodes.run("laptop", "backup"))["snapshot"])
            shutil.copytree(folder, tmp_path / f"v{number}" / "Work")
        state = nodes.nodes["laptop"].profile.path("state.sqlite")
        db = StateDB(state)
        revlog = Revlog.from_bytes(db.revlog("Work/model.bin"))
        db.close()
        kinds = [r.kind for r in sorted(revlog, key=lambda r: len(r.parents))]
        assert StorageKind.DELTA in kinds and kinds.count(StorageKind.FULL) == 2
        old_full = next(r.blob.record_id for r in revlog
                        if r.kind is StorageKind.FULL and not r.parents)  # fmt: skip

        done = await nodes.run("laptop", "forget", keep_last=2, prune=True)
        assert done["forgotten"] == versions[:1]
        assert done["repacked_revisions"] >= 1 and done["rewritten_snapshots"] == 1
        # What it read to rebuild the texts and sent as reverse deltas, counted.
        assert done["repack"]["bytes_read"] > 600_000 and done["repack"]["bytes_sent"] > 0
        held = await _held(nodes, "alice")
        assert old_full not in held  # the old full text is garbage now
        for number, snap in ((1, versions[1]), (2, versions[2])):
            target = tmp_path / f"r{number}"
            await nodes.run("laptop", "restore", selector=snap[:8], to=str(target))
            assert same_tree(str(tmp_path / f"v{number}"), str(target))
        check = await nodes.run("laptop", "verify", read_data=True)
        assert check["lost"] == check["at_risk"] == 0


async def _held(nodes, friend: str) -> set[bytes]:
    names = set()
    for _, _, files in os.walk(nodes.profiles[friend].path("pool")):
        names |= {bytes.fromhex(n.split(".")[0]) for n in files if "." in n and len(n) > 64}
    return names
