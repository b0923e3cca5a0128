"""The Restore wizard against real daemons: a person picks a backup, ticks files, chooses a
folder and presses Restore; the bytes come back. Cancelled midway, it leaves no
half-written file. One grid (a laptop and two friends) is backed up once for the module."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QWidget, QWizard

from p2pbackup import errors
from p2pbackup.cli.localgrid import LocalGrid
from p2pbackup.gui.app import App
from p2pbackup.gui.bridge import Request
from p2pbackup.gui.models.tree import CHECKED, PARTLY
from p2pbackup.gui.windows.restore import RestoreWizard
from p2pbackup.gui.windows.restore import progress_page as progress_module

WAIT = 8000  # ms
BIG = 16 << 20  # over 4 MiB: written through a temporary file of its own while it comes


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    root = tmp_path_factory.mktemp("restore")
    docs = root / "Docs"
    (docs / "letters").mkdir(parents=True)
    (docs / "video").mkdir()
    (docs / "notes.txt").write_bytes(b"notes\n")
    (docs / "letters" / "a.txt").write_bytes(b"dear a\n" * 100)
    (docs / "letters" / "b.txt").write_bytes(os.urandom(70_000))
    (docs / "photo.jpg").write_bytes(os.urandom(30_000))
    (docs / "video" / "big.bin").write_bytes(os.urandom(BIG))
    with LocalGrid(str(root / "nodes")) as grid:
        grid.init_all(["laptop", "alice", "bob"])
        grid.cli("laptop", "schedule", "off")
        grid.start("laptop", "alice", "bob")
        grid.pair("laptop", "alice", "bob")
        grid.cli("laptop", "folders", "add", str(docs))
        grid.cli("laptop", "backup")
        yield grid, docs


def _wizard(qtbot, grid, docs) -> RestoreWizard:
    wizard = RestoreWizard(grid.home("laptop"), [str(docs)])
    qtbot.addWidget(wizard)
    wizard.show()
    qtbot.waitUntil(lambda: wizard.snapshot_page.isComplete(), timeout=WAIT)
    return wizard


def _next(qtbot, wizard: RestoreWizard, button=QWizard.WizardButton.NextButton) -> None:
    qtbot.mouseClick(wizard.button(button), Qt.MouseButton.LeftButton)


def _tick(qtbot, wizard: RestoreWizard, path: str) -> None:
    """Move to ``path``'s row and press Space, as a person with a keyboard does."""
    page = wizard.files_page
    index = page.tree.index_of(path)
    assert index.isValid(), path
    page.view.setCurrentIndex(index)
    qtbot.keyClick(page.view, Qt.Key.Key_Space)


def _listed(qtbot, wizard: RestoreWizard, folder: str) -> None:
    tree = wizard.files_page.tree
    qtbot.waitUntil(lambda: tree.children_of(folder) is not None, timeout=WAIT)


def _to_files(qtbot, grid, docs) -> RestoreWizard:
    wizard = _wizard(qtbot, grid, docs)
    _next(qtbot, wizard)
    assert wizard.currentPage() is wizard.files_page
    _listed(qtbot, wizard, "Docs")  # the one top folder is opened by itself
    return wizard


def _to_folder(qtbot, wizard: RestoreWizard, out: Path) -> None:
    _next(qtbot, wizard)
    page = wizard.destination_page
    assert wizard.currentPage() is page
    page.folder.selectAll()
    qtbot.keyClicks(page.folder, str(out))
    _next(qtbot, wizard, QWizard.WizardButton.CommitButton)  # "Restore"
    assert wizard.currentPage() is wizard.progress_page


def test_restore_chosen_files_through_the_wizard(qtbot, backed_up, tmp_path, monkeypatch):
    grid, docs = backed_up
    wizard = _to_files(qtbot, grid, docs)
    snapshot = wizard.snapshot_page.model
    assert snapshot.snap(0).device == "laptop" and snapshot.snap(0).files == 5
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()  # nothing ticked
    tree = wizard.files_page.tree
    _tick(qtbot, wizard, "Docs/notes.txt")
    _tick(qtbot, wizard, "Docs/letters")
    assert wizard.selection.paths() == ["Docs/letters", "Docs/notes.txt"]
    assert tree.index_of("Docs").data(Qt.ItemDataRole.CheckStateRole) == PARTLY
    wizard.files_page.view.expand(tree.index_of("Docs/letters"))
    _listed(qtbot, wizard, "Docs/letters")  # listed when opened, ticked with its folder
    assert tree.index_of("Docs/letters/b.txt").data(Qt.ItemDataRole.CheckStateRole) == CHECKED
    assert tree.children_of("Docs/video") is None  # never opened: never listed

    out = tmp_path / "out"
    _to_folder(qtbot, wizard, out)
    page = wizard.progress_page
    qtbot.waitUntil(lambda: page.done, timeout=WAIT)
    assert page.error is None and page.result["files"] == 3
    assert "3 files were restored" in page.outcome.text()
    for name in ("notes.txt", "letters/a.txt", "letters/b.txt"):
        assert (out / "Docs" / name).read_bytes() == (docs / name).read_bytes()
    assert not (out / "Docs" / "photo.jpg").exists()
    assert not (out / "Docs" / "video").exists()

    opened = []
    monkeypatch.setattr(progress_module.QDesktopServices, "openUrl", opened.append)
    assert page.open_button.isVisible()
    qtbot.mouseClick(page.open_button, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened] == [str(out)]
    _next(qtbot, wizard, QWizard.WizardButton.FinishButton)
    assert not wizard.isVisible()


def test_a_search_finds_a_file_to_tick(qtbot, backed_up):
    grid, docs = backed_up
    wizard = _to_files(qtbot, grid, docs)
    page = wizard.files_page
    qtbot.keyClicks(page.search, "B.TX")
    qtbot.keyClick(page.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.found.rowCount() == 1, timeout=WAIT)
    assert page.stack.currentWidget() is page.found_view
    index = page.found.index(0, 0)
    assert page.found.entry(0)["path"] == "Docs/letters/b.txt"
    page.found_view.setCurrentIndex(index)
    qtbot.keyClick(page.found_view, Qt.Key.Key_Space)
    assert wizard.selection.paths() == ["Docs/letters/b.txt"]
    assert page.tree.index_of("Docs/letters").data(Qt.ItemDataRole.CheckStateRole) == PARTLY
    page.search.clear()
    qtbot.keyClick(page.search, Qt.Key.Key_Return)
    assert page.stack.currentWidget() is page.view


def test_back_in_place_bringing_back_only_what_is_missing(qtbot, backed_up, monkeypatch):
    grid, docs = backed_up
    notes, letter = docs / "notes.txt", docs / "letters" / "a.txt"
    original = letter.read_bytes()
    letter.unlink()  # lost since the backup
    notes.write_bytes(b"changed since\n")
    wizard = _to_files(qtbot, grid, docs)
    _tick(qtbot, wizard, "Docs")
    _next(qtbot, wizard)
    page = wizard.destination_page
    qtbot.mouseClick(page.original, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(page.only_missing, Qt.MouseButton.LeftButton)
    assert wizard.in_place and wizard.only_missing and not wizard.overwrite
    _next(qtbot, wizard, QWizard.WizardButton.CommitButton)
    progress = wizard.progress_page
    try:
        qtbot.waitUntil(lambda: progress.done, timeout=WAIT)
        assert progress.error is None, progress.error
        assert progress.result["files"] == 1
        assert sorted(progress.result["kept_existing"]) == [
            "Docs/letters/b.txt", "Docs/notes.txt", "Docs/photo.jpg", "Docs/video/big.bin"]
        assert letter.read_bytes() == original
        assert notes.read_bytes() == b"changed since\n"
        assert "4 files already there, left as they are." in progress.outcome.text()
    finally:
        notes.write_bytes(b"notes\n")  # as the backup has it, for the other tests
    opened = []
    monkeypatch.setattr(progress_module.QDesktopServices, "openUrl", opened.append)
    qtbot.mouseClick(progress.open_button, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened] == [str(docs)]


def test_replacing_all_and_only_missing_at_once_is_refused(qtbot, backed_up, tmp_path):
    grid, _ = backed_up
    failed = []
    request = Request(grid.home("laptop"), "restore", {"to": str(tmp_path), "force": True,
                                                       "only_missing": True})  # fmt: skip
    request.failed.connect(failed.append)
    with qtbot.waitSignal(request.finished, timeout=WAIT):
        request.start()
    assert isinstance(failed[0], errors.ConfigError)
    assert not any(tmp_path.iterdir())


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".p2pbackup-partial" in p.name]


def test_cancel_a_restore_midway_leaves_no_half_written_file(qtbot, backed_up, tmp_path):
    grid, docs = backed_up
    wizard = _to_files(qtbot, grid, docs)
    _tick(qtbot, wizard, "Docs/video")
    out = tmp_path / "out"
    _to_folder(qtbot, wizard, out)
    page = wizard.progress_page
    # Midway: the large file is being written under its temporary name. The friends are
    # stopped there, so the restore cannot finish before Cancel reaches the daemon.
    qtbot.waitUntil(lambda: bool(_partials(out)), timeout=WAIT)
    friends = grid.pids("alice", "bob")
    for pid in friends:
        os.kill(pid, signal.SIGSTOP)
    try:
        _next(qtbot, wizard, QWizard.WizardButton.CancelButton)
        assert wizard.isVisible()  # Cancel stops the restore first, and says so
        qtbot.waitUntil(lambda: page.done, timeout=WAIT)
    finally:
        for pid in friends:
            os.kill(pid, signal.SIGCONT)
    assert isinstance(page.error, errors.JobCancelled)
    assert "nothing half-written" in page.outcome.text()
    assert _partials(out) == []
    assert not (out / "Docs" / "video" / "big.bin").exists()
    _next(qtbot, wizard, QWizard.WizardButton.FinishButton)
    assert not wizard.isVisible()


def test_restore_opens_the_wizard_once_the_service_runs(qtbot, tmp_path):
    app = App(str(tmp_path), tray=False)
    qtbot.addWidget(app.window)
    assert not app.actions.restore.isEnabled()  # no daemon (yet): nothing to restore from
    app.actions.restore.setEnabled(True)  # as when it runs
    app.actions.restore.trigger()
    app.actions.restore.trigger()  # the one open is brought forward, not a second one
    wizards = app.window.findChildren(RestoreWizard)
    assert len(wizards) == 1 and wizards[0].isVisible()
    wizards[0].close()


def test_every_page_can_be_used_with_a_keyboard_and_a_screen_reader(qtbot, tmp_path):
    """As tests/gui/test_windows.py for the main window: every focusable widget has a
    name, every button a mnemonic (the calendar's own parts are Qt's, named by it)."""
    wizard = RestoreWizard(str(tmp_path))
    qtbot.addWidget(wizard)
    wizard.show()
    calendar = wizard.snapshot_page.calendar
    widgets = [w for w in wizard.findChildren(QWidget)
               if w.focusPolicy() & Qt.FocusPolicy.TabFocus and not calendar.isAncestorOf(w)
               and w.window() is wizard]  # fmt: skip
    assert len(widgets) > 10
    for widget in widgets:
        button = isinstance(widget, QAbstractButton)
        name = widget.accessibleName() or (widget.text() if button else "")
        assert name, f"{type(widget).__name__} has no accessible name"
        if button and widget.text():
            assert "&" in widget.text(), f"{widget.text()!r} has no keyboard shortcut"
    # No daemon here: the first page says so rather than waiting.
    qtbot.waitUntil(lambda: "not running" in wizard.snapshot_page.note.text(), timeout=WAIT)
