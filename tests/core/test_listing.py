"""One level of a manifest in pages: cursors, the size cut, and the search by name."""

from __future__ import annotations

import pytest

from p2pbackup.core import listing
from p2pbackup.core.listing import CursorError, Tree
from p2pbackup.core.manifest import Entry, EntryType, Manifest

SID = "ab" * 16


def _manifest(names: list[str]) -> Manifest:
    entries = [Entry("Docs", EntryType.DIR, 0o755, 0, 0, "", b"", ())]
    entries += [Entry(f"Docs/{n}", EntryType.FILE, 0o644, 0, 0, "", b"", ()) for n in names]
    return Manifest.build(snapshot_id=bytes.fromhex(SID), generation=0, created_at_ns=0,
                          device="d", parents=(), roots=("Docs",), entries=entries,
                          descriptors={})  # fmt: skip


def _size(e: Entry) -> int:
    return listing.wire_size(e.path)


def test_pages_by_cursor_cover_a_folder_once_in_order_even_with_byte_names():
    names = [f"f{i:03}" for i in range(25)] + ["bad\udcffname", "Zed", "é"]
    tree = Tree(_manifest(names))
    assert [e.path for e in tree.children("")] == ["Docs"]
    assert tree.child_count(tree.children("")[0]) == len(names)
    seen, after = [], None
    while True:
        page = listing.page(tree.children("Docs"), SID, after=after, limit=4, size=_size)
        seen += [listing.base_name(e.path) for e in page.items]
        if page.next is None:
            break
        assert page.next.isascii()
        after = page.next
    assert seen == sorted(names) and page.total == len(names)


def test_a_page_stops_before_its_size_budget_but_holds_one_entry():
    long = ["a" * 30000 + str(i) for i in range(40)]  # 30 KB names: 17 fit in 512 KiB
    tree = Tree(_manifest(long))
    page = listing.page(tree.children("Docs"), SID, limit=1000, size=_size)
    assert 0 < len(page.items) < 40 and page.next
    assert sum(_size(e) for e in page.items) <= listing.PAGE_BYTES
    one = listing.page(tree.children("Docs"), SID, limit=1, size=lambda e: 10**9)
    assert len(one.items) == 1


def test_a_cursor_of_another_snapshot_or_garbage_is_refused():
    tree = Tree(_manifest(["a", "b", "c"]))
    page = listing.page(tree.children("Docs"), SID, limit=1, size=_size)
    with pytest.raises(CursorError, match="continues snapshot"):
        listing.page(tree.children("Docs"), "cd" * 16, after=page.next, size=_size)
    for bad in ("nonsense", f"{SID}.***"):
        with pytest.raises(CursorError):
            listing.page(tree.children("Docs"), SID, after=bad, size=_size)
    with pytest.raises(CursorError):
        listing.page(tree.children("Docs"), SID, offset=1, after=page.next, size=_size)
    with pytest.raises(CursorError):
        listing.page(tree.children("Docs"), SID, limit="5", size=_size)  # type: ignore[arg-type]


def test_find_matches_a_glob_on_the_base_name_in_any_case():
    tree = Tree(_manifest(["Report.PDF", "notes.txt", "old-report.pdf", "pdf"]))
    assert [e.path for e in tree.find("*.pdf")] == ["Docs/Report.PDF", "Docs/old-report.pdf"]
    assert [e.path for e in tree.find("REPORT")] == ["Docs/Report.PDF", "Docs/old-report.pdf"]
    assert [e.path for e in tree.find("docs")] == ["Docs"]  # a base name, not the path
