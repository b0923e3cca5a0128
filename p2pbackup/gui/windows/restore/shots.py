"""The Restore wizard's pages for ``python -m p2pbackup.gui.screenshots``: every page on
canned answers of a daemon (a laptop's and a desktop's backups, a small tree), so the
pictures are the same from run to run and no daemon runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from p2pbackup import errors
from p2pbackup.gui.models.restoring import RestoreMeter
from p2pbackup.gui.windows.restore import files_page, progress_page, snapshot_page
from p2pbackup.gui.windows.restore.wizard import RestoreWizard

MIB = 1 << 20


def _entry(path: str, kind: str, size: int, days_ago: float, children: int | None = None):
    when = datetime.now().astimezone() - timedelta(days=days_ago)
    entry = {"path": path, "name": path.rpartition("/")[2], "type": kind, "size": size,
             "mtime": when.isoformat()}  # fmt: skip
    if children is not None:
        entry["children"] = children
    return entry


TREE = {
    "": [("Documents", "dir", 0, 1, 4), ("Pictures", "dir", 0, 3, 2)],
    "Documents": [("Documents/Letters", "dir", 0, 2, 3), ("Documents/Taxes 2025", "dir", 0, 40, 2),
                  ("Documents/notes.txt", "file", 4_310, 0.2),
                  ("Documents/recipe-lasagne.pdf", "file", 1_270_000, 12)],
    "Documents/Letters": [("Documents/Letters/landlord.pdf", "file", 88_000, 2),
                          ("Documents/Letters/thank-you.txt", "file", 1_200, 9),
                          ("Documents/Letters/to-grandma.odt", "file", 24_000, 5)],
}  # fmt: skip
FOUND = [("Documents/Taxes 2025/tax-return.pdf", "file", 2_400_000, 40),
         ("Documents/Taxes 2025/tax-receipts.zip", "file", 18_000_000, 41)]  # fmt: skip


def _snapshots() -> list[dict]:
    now = datetime.now().astimezone().replace(second=0, microsecond=0)
    rows = []
    for days in range(0, 24):  # the laptop nearly daily, at lunch and in the evening
        for hour in ((13, 21) if days % 4 else (13,)) if days % 5 != 2 else ():
            when = (now - timedelta(days=days)).replace(hour=hour, minute=5 + days)
            if when <= now:
                rows.append({"id": f"{days:02d}{hour:02d}" + "a" * 28, "device": "laptop",
                             "time": when.isoformat(), "files": 18_250 - days * 11,
                             "bytes": 38_654_705_664 - days * 90 * MIB})  # fmt: skip
    for days in range(2, 24, 3):  # the desktop every three days
        when = (now - timedelta(days=days)).replace(hour=10, minute=30)
        rows.append({"id": f"{days:02d}" + "d" * 30, "device": "desktop", "time": when.isoformat(),
                     "files": 52_000, "bytes": 120 * 1024 * MIB})  # fmt: skip
    return rows


def _answer(job: str, params: dict) -> object:
    """What the daemon would say; None: it says nothing yet (a restore that runs on)."""
    if job == "snapshots":
        return _snapshots()
    if job == "ls":
        return {"entries": [_entry(*row) for row in TREE.get(params.get("path", ""), [])],
                "next": None}  # fmt: skip
    if job == "find":
        return {"entries": [_entry(*row) for row in FOUND], "next": None}
    return None


class _Canned(QObject):
    """Stands in for bridge.Request: the same signals, the answers above."""

    event = Signal(dict, object)
    message = Signal(dict)
    result = Signal(object)
    failed = Signal(object)
    no_daemon = Signal()
    lost = Signal()
    finished = Signal()

    def __init__(self, home: str, job: str, params: dict | None = None,
                 parent: QObject | None = None, *, keep: bool = False) -> None:  # fmt: skip
        super().__init__(parent)
        self.job, self.params = job, dict(params or {})

    def start(self) -> _Canned:
        answer = _answer(self.job, self.params)
        if answer is not None:
            QTimer.singleShot(0, self, lambda: (self.result.emit(answer), self.finished.emit()))
        elif self.job == "restore":
            QTimer.singleShot(0, self, lambda: self.message.emit({"job": {"id": 7}}))
        return self

    def abort(self) -> None:
        pass


def render(save: Callable, settle: Callable, home: str, parent: QWidget) -> None:
    """Each page, saved as restore-*.png."""
    pages = (snapshot_page, files_page, progress_page)
    real = [page.Request for page in pages]
    for page in pages:
        page.Request = _Canned
    try:
        _render(save, settle, home, parent)
    finally:
        for page, request in zip(pages, real, strict=True):
            page.Request = request


def _render(save: Callable, settle: Callable, home: str, parent: QWidget) -> None:
    wizard = RestoreWizard(home, ["/home/sam/Documents", "/home/sam/Pictures"], parent)
    wizard.resize(wizard.sizeHint())
    wizard.show()
    settle()
    save(wizard.grab, "restore-1-backup.png")

    wizard.next()
    files = wizard.files_page
    settle()
    files.view.expand(files.tree.index_of("Documents"))
    settle()
    files.view.expand(files.tree.index_of("Documents/Letters"))
    settle()
    for path in ("Documents/Letters", "Documents/notes.txt"):
        wizard.selection.choose(path, True, files.tree.children_of)
    files.view.setCurrentIndex(files.tree.index_of("Documents/notes.txt"))
    save(wizard.grab, "restore-2-files.png")
    files.search.setText("tax")
    files._find()
    settle()
    wizard.selection.choose(FOUND[0][0], True, files.tree.children_of)
    save(wizard.grab, "restore-2-search.png")
    files.search.clear()
    files._find()

    wizard.next()
    where = wizard.destination_page
    where.folder.setText("/home/sam/Restored from backup")
    save(wizard.grab, "restore-3-where.png")
    where.original.setChecked(True)
    where.replace_all.setChecked(True)
    save(wizard.grab, "restore-3-where-original.png")
    where.elsewhere.setChecked(True)
    where.keep_newer.setChecked(True)

    wizard.next()
    progress = wizard.progress_page
    settle()
    clock = [time.monotonic()]
    progress.meter = RestoreMeter(lambda: clock[0])
    total = {"files_total": 5, "bytes_total": 3_800_000}
    progress._event({"type": "RestoreProgress", "files": 1, "bytes": 900_000, **total}, 7)
    clock[0] += 2.0
    progress._event({"type": "RestoreProgress", "files": 2, "bytes": 1_400_000, **total}, 7)
    save(wizard.grab, "restore-4-progress.png")

    progress._restored({"files": 4, "bytes": 3_700_000, "kept_newer": ["Documents/notes.txt"],
                        "errors": [], "seconds": 4.2})  # fmt: skip
    progress._ended()
    progress.open_button.show()  # its folder is only a sample here
    save(wizard.grab, "restore-5-report.png")

    # As it looks when stopped midway (the same page, set back to where it was).
    progress.running, progress.done, progress.result = True, False, None
    progress.bar.setValue(360)
    progress.counts.show()
    progress.outcome.clear()
    progress.details.hide()
    progress.open_button.hide()
    progress._failed(errors.JobCancelled("Job 7 (restore) was cancelled."))
    progress._ended()
    save(wizard.grab, "restore-5-stopped.png")
    wizard.hide()
    wizard.deleteLater()
