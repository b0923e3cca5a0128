"""Browsing snapshots through the jobs, between real nodes: ``ls`` one level in pages,
``find`` by name, ``log`` of one file, and ``snapshots`` from the head alone."""

from __future__ import annotations

import pytest

from p2pbackup.daemon import browse
from p2pbackup.errors import ConfigError
from p2pbackup.storage.statedb import StateDB
from tests.daemon.conftest import pair, started
from tests.daemon.test_cycle import edit, make_tree

pytestmark = pytest.mark.trio
FRIENDS = ("alice", "bob", "carol")


def _any_cursor() -> str:
    return "0" * 32 + ".YQ"  # a well-formed cursor: "a" in a snapshot of zeros


def _cached(nodes, name: str, ids: list[str]) -> set[str]:
    """Those of the snapshots ``ids`` whose manifest device ``name`` holds a copy of."""
    db = StateDB(nodes.profiles[name].path("state.sqlite"))
    try:
        return {sid for sid in ids if db.manifest(bytes.fromhex(sid))}
    finally:
        db.close()


async def test_ls_lists_one_level_in_pages_and_find_searches_by_name(tmp_path):
    folder = make_tree(tmp_path)  # Documents/notes holds 32 entries
    async with started(tmp_path / "nodes", friends=FRIENDS, folders=[folder]) as nodes:
        snap = (await nodes.run("laptop", "backup"))["snapshot"]
        top = await nodes.run("laptop", "ls", selector="latest")
        assert [(e["name"], e["children"]) for e in top["entries"]] == [("Documents", 4)]
        assert top["total"] == 1 and top["next"] is None and top["snapshot"] == snap

        docs = await nodes.run("laptop", "ls", selector="latest", path="Documents")
        assert [e["name"] for e in docs["entries"]] == [
            "empty-folder", "notes", "photo.raw", "todo-link"]  # fmt: skip
        assert [e["children"] for e in docs["entries"] if e["type"] == "dir"] == [0, 32]
        assert docs["entries"][3]["target"] == "notes/todo.txt"

        names, after, pages = [], None, 0
        while True:
            page = await nodes.run("laptop", "ls", selector="latest", path="Documents/notes",
                                   after=after, limit=10)  # fmt: skip
            assert page["total"] == 32 and len(page["entries"]) <= 10
            names += [e["name"] for e in page["entries"]]
            pages += 1
            if page["next"] is None:
                break
            after = page["next"]
        assert pages == 4 and len(names) == 32 == len(set(names)) and names == sorted(names)
        by_offset = await nodes.run("laptop", "ls", selector=snap, path="Documents/notes",
                                    offset=30, limit=10)  # fmt: skip
        assert [e["name"] for e in by_offset["entries"]] == names[30:]
        assert by_offset["next"] is None and by_offset["offset"] == 30

        one = await nodes.run("laptop", "ls", selector="latest", path=f"{folder}/photo.raw")
        assert [(e["path"], e["size"]) for e in one["entries"]] == [("Documents/photo.raw",
                                                                      700_000)]  # fmt: skip
        with pytest.raises(ConfigError, match="not in snapshot"):
            await nodes.run("laptop", "ls", selector="latest", path="Documents/nothing")
        with pytest.raises(ConfigError, match="whole numbers"):
            await nodes.run("laptop", "ls", selector="latest", limit="10")
        with pytest.raises(ConfigError, match="not both"):
            await nodes.run("laptop", "ls", selector=snap, offset=1, after=_any_cursor())

        found = await nodes.run("laptop", "find", pattern="SMALL-1*.TXT", limit=5)
        assert found["total"] == 11 and len(found["entries"]) == 5 and found["next"]
        rest = await nodes.run("laptop", "find", pattern="SMALL-1*.TXT", selector=snap,
                               after=found["next"], limit=50)  # fmt: skip
        paths = [e["path"] for e in found["entries"] + rest["entries"]]
        assert paths == sorted(f"Documents/notes/small-{i}.txt" for i in [1, *range(10, 20)])
        assert [e["path"] for e in (await nodes.run("laptop", "find", pattern="todo"))[
            "entries"]] == ["Documents/notes/todo.txt", "Documents/todo-link"]  # fmt: skip

        # A cursor continues its own snapshot only: after a new backup, 'latest' is another.
        edit(folder)
        await nodes.run("laptop", "backup")
        with pytest.raises(ConfigError, match="continues snapshot"):
            await nodes.run("laptop", "ls", selector="latest", path="Documents/notes",
                            after=page["next"] or found["next"], limit=10)  # fmt: skip


async def test_a_page_of_a_snapshot_held_here_needs_no_friend(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", friends=FRIENDS, folders=[folder]) as nodes:
        snap = (await nodes.run("laptop", "backup"))["snapshot"]
        for name in FRIENDS:
            await nodes.stop(name)
        profile = nodes.profiles["laptop"]
        page = await browse.from_copy(profile, "ls", {"selector": snap, "path": "Documents"})
        assert page["total"] == 4 and page["snapshot"] == snap
        found = await browse.from_copy(profile, "find", {"selector": snap, "pattern": "*.raw"})
        assert [e["path"] for e in found["entries"]] == ["Documents/photo.raw"]
        # 'latest' or a short id need the head: friends are asked, through a session.
        assert await browse.from_copy(profile, "ls", {"selector": "latest"}) is None
        assert await browse.from_copy(profile, "ls", {"selector": snap[:12]}) is None


async def test_log_lists_every_version_with_how_it_is_stored(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", friends=FRIENDS, folders=[folder]) as nodes:
        first = (await nodes.run("laptop", "backup"))["snapshot"]
        edit(folder)  # photo.raw: 21 bytes inserted at the front, stored as a delta
        second = (await nodes.run("laptop", "backup"))["snapshot"]
        (tmp_path / "Documents" / "notes" / "small-7.txt").write_text("other\n")
        third = (await nodes.run("laptop", "backup"))["snapshot"]

        photo = await nodes.run("laptop", "log", path=f"{folder}/photo.raw")
        assert photo["path"] == "Documents/photo.raw"
        assert [(v["snapshot"], v["size"], v["stored"], v["unchanged"], v["device"])
                for v in photo["versions"]] == [
            (first, 700_000, "full", False, "laptop"),
            (second, 700_021, "delta", False, "laptop"),
            (third, 700_021, "delta", True, "laptop"),  # the same version again
        ]  # fmt: skip
        assert photo["versions"][1]["chain"] == 2

        gone = await nodes.run("laptop", "log", path="Documents/notes/small-3.txt")
        assert [v["snapshot"] for v in gone["versions"]] == [first]  # edit() removed it
        with pytest.raises(ConfigError, match="in no snapshot"):
            await nodes.run("laptop", "log", path="Documents/never.txt")


async def test_snapshots_come_from_the_head_and_fetch_no_manifest(tmp_path):
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", friends=FRIENDS, folders=[folder]) as nodes:
        first = await nodes.run("laptop", "backup")
        edit(folder)
        second = await nodes.run("laptop", "backup")
        ids = [first["snapshot"], second["snapshot"]]
        listed = await nodes.run("laptop", "snapshots")  # this device holds both manifests
        assert [(s["id"], s["files"], s["device"]) for s in listed] == [
            (ids[0], first["files"], "laptop"), (ids[1], second["files"], "laptop")]  # fmt: skip

        phone = await nodes.start("phone", secret=nodes.profiles["laptop"].secret())
        await pair(nodes.nodes["alice"], phone)
        listed = await nodes.run("phone", "snapshots")
        assert [(s["id"], s["files"], s["bytes"], s["device"]) for s in listed] == [
            (sid, None, None, "laptop") for sid in ids]  # fmt: skip
        assert _cached(nodes, "phone", ids) == set()  # the list read no manifest
        # latest reads its own manifest only, not every snapshot's.
        top = await nodes.run("phone", "ls", selector="latest")
        assert top["snapshot"] == ids[1] and _cached(nodes, "phone", ids) == {ids[1]}
        sized = await nodes.run("phone", "snapshots", sizes=True)
        assert [s["files"] for s in sized] == [first["files"], second["files"]]
        assert _cached(nodes, "phone", ids) == set(ids)
