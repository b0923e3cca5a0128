"""The restore wizard's models from dicts, with no widget: the ticks, the lazy tree, the
snapshots by day and device, and the progress in words."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from PySide6.QtCore import QModelIndex, Qt

from p2pbackup.gui.models.restoring import RestoreMeter, duration_text, report_lines
from p2pbackup.gui.models.snapshots import SnapshotsModel, moment_text
from p2pbackup.gui.models.tree import (
    CHECKED,
    PARTLY,
    UNCHECKED,
    FoundModel,
    Selection,
    SnapshotTree,
)

CHECK = Qt.ItemDataRole.CheckStateRole
TREE = {  # folder -> its children
    "": ["Docs"],
    "Docs": ["Docs/a", "Docs/b", "Docs/c.txt"],
    "Docs/a": ["Docs/a/1.txt", "Docs/a/2.txt"],
}


def _children(path: str) -> list[str] | None:
    return TREE.get(path)


# -- Selection

def test_a_ticked_folder_stands_for_everything_in_it():
    chosen = Selection()
    assert chosen.choose("Docs/a", True, _children)
    assert chosen.paths() == ["Docs/a"]
    assert chosen.state("Docs/a/1.txt") == CHECKED
    assert chosen.state("Docs") == PARTLY
    assert chosen.state("Docs/b") == UNCHECKED
    assert chosen.choose("Docs/a/1.txt", True, _children)  # already in: nothing changes
    assert chosen.paths() == ["Docs/a"]


def test_unticking_inside_a_ticked_folder_ticks_the_siblings_instead():
    chosen = Selection()
    chosen.choose("Docs", True, _children)
    assert chosen.choose("Docs/a/2.txt", False, _children)
    assert chosen.paths() == ["Docs/a/1.txt", "Docs/b", "Docs/c.txt"]
    assert chosen.state("Docs") == PARTLY and chosen.state("Docs/a") == PARTLY


def test_unticking_where_the_siblings_are_not_listed_is_refused():
    chosen = Selection()
    chosen.choose("Docs/b", True, _children)
    assert not chosen.choose("Docs/b/x.txt", False, _children)  # Docs/b was never listed
    assert chosen.paths() == ["Docs/b"]


def test_every_child_ticked_ticks_the_folder():
    chosen = Selection()
    told = []
    chosen.listeners.append(lambda: told.append(1))
    chosen.choose("Docs/a/1.txt", True, _children)
    chosen.choose("Docs/a/2.txt", True, _children)
    assert chosen.paths() == ["Docs/a"]
    chosen.choose("Docs/b", True, _children)
    chosen.choose("Docs/c.txt", True, _children)
    assert chosen.paths() == ["Docs"]  # the top level is never folded into "everything"
    assert len(told) == 4


def test_ticking_a_folder_drops_what_was_ticked_inside_it():
    chosen = Selection()
    chosen.choose("Docs/a/1.txt", True, _children)
    chosen.choose("Docs", True, _children)
    assert chosen.paths() == ["Docs"]
    chosen.choose("Docs", False, _children)
    assert chosen.paths() == [] and not chosen


# -- SnapshotTree

def _entry(path: str, kind: str = "file", size: int = 0, children: int | None = None) -> dict:
    entry = {"path": path, "name": path.rpartition("/")[2], "type": kind, "size": size,
             "mtime": "2026-12-01T10:30:00+00:00"}  # fmt: skip
    if children is not None:
        entry["children"] = children
    return entry


def test_the_tree_lists_one_level_when_asked_and_pages_on():
    asked: list[tuple[str, str | None]] = []
    tree = SnapshotTree(lambda path, cursor: asked.append((path, cursor)))
    tree.start()
    assert asked == [("", None)]
    assert not tree.canFetchMore(QModelIndex())  # asked already: not twice
    tree.add_page("", {"entries": [_entry("Docs", "dir", children=3)], "next": None})
    docs = tree.index_of("Docs")
    assert tree.rowCount() == 1 and tree.hasChildren(docs) and tree.rowCount(docs) == 0
    assert tree.children_of("Docs") is None
    tree.fetchMore(docs)
    tree.add_page("Docs", {"entries": [_entry("Docs/a", "dir", children=0),
                                       _entry("Docs/b.txt", size=2048)], "next": "cur1"})
    assert asked[-1] == ("Docs", None)
    assert tree.canFetchMore(docs) and tree.children_of("Docs") is None  # more to come
    tree.fetchMore(docs)
    assert asked[-1] == ("Docs", "cur1")
    tree.add_page("Docs", {"entries": [_entry("Docs/c.txt", size=5)], "next": None})
    assert tree.children_of("Docs") == ["Docs/a", "Docs/b.txt", "Docs/c.txt"]
    assert not tree.canFetchMore(docs)
    assert not tree.hasChildren(tree.index_of("Docs/a"))  # an empty folder has no arrow
    size = tree.index_of("Docs/b.txt").siblingAtColumn(1)
    assert size.data() == "2.0 KiB"
    assert tree.index_of("Docs").siblingAtColumn(1).data() == "3 items"
    assert tree.index_of("Docs/b.txt").parent() == docs


def test_a_failed_page_is_asked_for_again():
    asked: list = []
    tree = SnapshotTree(lambda path, cursor: asked.append(path))
    tree.start()
    tree.page_failed("")
    assert tree.canFetchMore(QModelIndex())
    tree.fetchMore(QModelIndex())
    assert asked == ["", ""]


def test_rows_listed_under_a_ticked_folder_come_ticked_and_a_tick_is_told():
    tree = SnapshotTree(lambda path, cursor: None)
    tree.add_page("", {"entries": [_entry("Docs", "dir", children=2)], "next": None})
    docs = tree.index_of("Docs")
    changed = []
    tree.dataChanged.connect(lambda first, last, roles: changed.append(first.data()))
    assert tree.setData(docs, Qt.CheckState.Checked.value, CHECK)
    assert changed == ["Docs"]
    tree.add_page("Docs", {"entries": [_entry("Docs/x"), _entry("Docs/y")], "next": None})
    assert tree.index_of("Docs/y").data(CHECK) == CHECKED
    assert tree.setData(tree.index_of("Docs/x"), Qt.CheckState.Unchecked.value, CHECK)
    assert tree.selection.paths() == ["Docs/y"]
    assert docs.data(CHECK) == PARTLY


def test_found_rows_share_the_ticks():
    tree = SnapshotTree(lambda path, cursor: None)
    found = FoundModel(tree.selection, tree.children_of)
    found.set_found({"entries": [_entry("Docs/deep/report.pdf", size=10)], "next": "more"})
    assert found.more and found.rowCount() == 1
    assert found.index(0, 3).data() == "Docs/deep"
    assert found.setData(found.index(0, 0), Qt.CheckState.Checked.value, CHECK)
    assert tree.selection.paths() == ["Docs/deep/report.pdf"]
    tree.selection.choose("Docs", True, tree.children_of)
    assert found.index(0, 0).data(CHECK) == CHECKED
    # Its folders were never listed: it cannot be taken out of the ticked folder here.
    assert not found.setData(found.index(0, 0), Qt.CheckState.Unchecked.value, CHECK)


# -- SnapshotsModel

def _snap(sid: str, when: datetime, device: str = "laptop", **more) -> dict:
    return {"id": sid, "time": when.isoformat(), "device": device, "files": 10, "bytes": 4096,
            "roots": ["Docs"], **more}  # fmt: skip


def test_snapshots_by_day_and_device_and_as_of_a_day():
    now = datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0)
    model = SnapshotsModel()
    model.set_snapshots([
        _snap("a", now - timedelta(days=3)), _snap("b", now - timedelta(days=3, hours=-1),
                                                   "desktop"),
        _snap("c", now), {"id": "bad", "time": "not a time"},
        _snap("d", now - timedelta(days=1), damaged="no friend has it"),
    ])  # fmt: skip
    assert model.devices() == ["desktop", "laptop"]
    assert model.colour("desktop") != model.colour("laptop")
    assert model.rowCount() == 4 and model.snap(0).id == "c"  # newest first
    assert model.newest().id == "c"
    three_days_ago = (now - timedelta(days=3)).date()
    assert model.days()[three_days_ago] == ["laptop", "desktop"]
    model.show_day(three_days_ago)
    assert [model.snap(r).id for r in range(model.rowCount())] == ["b", "a"]
    assert not model.fallback
    model.show_day((now - timedelta(days=2)).date())  # none that day: the one in force then
    assert model.fallback and [model.snap(0).id] == ["b"]
    model.show_day(date(2000, 1, 1))
    assert model.rowCount() == 0
    model.set_device("laptop")
    model.show_day(three_days_ago)
    assert [model.snap(r).id for r in range(model.rowCount())] == ["a"]
    assert model.as_of(now - timedelta(days=2)).id == "a"
    model.set_device(None)
    model.show_day((now - timedelta(days=1)).date())
    damaged = model.index(0, 2)
    assert damaged.data() == "damaged" and model.flags(damaged) == Qt.ItemFlag.NoItemFlags
    assert "no friend has it" in damaged.data(Qt.ItemDataRole.ToolTipRole)


def test_a_moment_as_a_person_says_it():
    now = datetime(2026, 12, 5, 16, 0).astimezone()
    assert moment_text(now.replace(hour=9, minute=5), now) == "today 09:05"
    assert moment_text(now - timedelta(days=1), now) == "yesterday 16:00"
    assert moment_text(now - timedelta(days=2), now) == "Thu 3 Dec 16:00"
    assert moment_text(now - timedelta(days=30), now) == "5 Nov 16:00"
    assert moment_text(now - timedelta(days=400), now) == "31 Oct 2025 16:00"


# -- RestoreMeter

def _progress(files: int, size: int) -> dict:
    return {"type": "RestoreProgress", "files": files, "bytes": size, "files_total": 10,
            "bytes_total": 100 << 20}  # fmt: skip


def test_progress_speed_and_time_left_over_the_last_seconds():
    clock = [0.0]
    meter = RestoreMeter(lambda: clock[0])
    assert not meter.feed({"type": "FriendOnline", "name": "alice"})
    assert meter.feed(_progress(0, 0))
    assert meter.speed() is None and meter.speed_text() == "working out the time left…"
    clock[0] = 2.0
    meter.feed(_progress(2, 20 << 20))  # 10 MiB/s
    assert meter.speed() == 10 << 20
    assert meter.seconds_left() == 8.0
    assert meter.speed_text() == "10.0 MiB/s, about 8 seconds left"
    assert meter.done_text() == "2 of 10 files, 20.0 MiB of 100.0 MiB"
    assert meter.fraction() == 0.2
    clock[0] = 12.0
    meter.feed(_progress(3, 30 << 20))  # slowed down: 1 MiB/s over the last 10 s
    clock[0] = 14.0
    meter.feed(_progress(3, 32 << 20))
    assert meter.speed() == (12 << 20) / 12  # only the last samples count
    meter.feed({"type": "JobProgress", "job": 3, "phase": "restoring", "done_files": 4,
                "done_bytes": 40 << 20, "total_files": 10, "total_bytes": 100 << 20,
                "seconds_left": 90.0})  # fmt: skip
    assert meter.seconds_left() == 90.0 and meter.files == 4


def test_durations_and_the_report_in_words():
    assert duration_text(0.2) == "a few seconds left"
    assert duration_text(42) == "about 42 seconds left"
    assert duration_text(75) == "about a minute left"
    assert duration_text(600) == "about 10 minutes left"
    assert duration_text(3 * 3600) == "about 3 hours left"
    lines = report_lines({"files": 1, "bytes": 10, "kept_newer": ["Docs/a"],
                          "kept_existing": ["Docs/c", "Docs/d"],
                          "errors": [{"path": "Docs/b", "reason": "Permission denied"}]})
    assert lines == ["1 file was restored (10 bytes).",
                     "1 file left alone: the copy already there is newer than the "
                     "backup's.", "2 files already there, left as they are.",
                     "1 file could not be written:", "  Docs/b: Permission denied"]  # fmt: skip
    assert report_lines({"files": 2, "bytes": 2048}) == ["2 files were restored (2.0 KiB)."]
