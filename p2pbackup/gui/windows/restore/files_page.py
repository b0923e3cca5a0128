"""Page 2: which files. The backup's folders, opened one level at a time (``ls``), with a
box to tick on each; a search (``find``) lists what matches, flat, with the same ticks."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QStyle,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWizardPage,
)

from p2pbackup.gui.bridge import Request
from p2pbackup.gui.models.tree import Column, FoundModel, Selection, SnapshotTree

SEARCH_DELAY = 400  # ms after the last key before the daemon is asked


class FilesPage(QWizardPage):
    def __init__(self, wizard) -> None:
        super().__init__(wizard)
        self.setTitle(self.tr("Which files?"))
        self.setSubTitle(self.tr("Tick the files and folders to bring back. A ticked folder "
                                 "brings back everything in it."))
        self.tree: SnapshotTree | None = None
        self.found: FoundModel | None = None
        self._for: str | None = None  # the snapshot the tree is of
        self._search: Request | None = None

        self.search = QLineEdit()
        self.search.setPlaceholderText(self.tr("Find by name, as in report or *.pdf"))
        self.search.setAccessibleName(self.tr("Find files by name"))
        self.search.setClearButtonEnabled(True)
        search_label = QLabel(self.tr("&Find:"))
        search_label.setBuddy(self.search)
        self._typing = QTimer(self, singleShot=True, interval=SEARCH_DELAY,
                              timeout=self._find)  # fmt: skip
        self.search.textChanged.connect(lambda _: self._typing.start())
        self.search.returnPressed.connect(self._find)

        self.view = QTreeView()
        self.view.setAccessibleName(self.tr("Folders and files in the backup"))
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.found_view = QTableView()
        self.found_view.setAccessibleName(self.tr("Files found"))
        self.found_view.verticalHeader().hide()
        self.found_view.setShowGrid(False)
        self.found_view.setTabKeyNavigation(False)
        self.found_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.found_view)

        self.all_button = QPushButton(self.tr("Tick &all"))
        self.all_button.clicked.connect(self._tick_all)
        self.none_button = QPushButton(self.tr("Tick n&one"))
        self.none_button.clicked.connect(lambda: self.wizard().selection.clear())
        self.chosen = QLabel()
        self.chosen.setAccessibleName(self.tr("What is ticked"))
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setAccessibleName(self.tr("About the list"))

        top = QHBoxLayout()
        top.addWidget(search_label)
        top.addWidget(self.search, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.all_button)
        bottom.addWidget(self.none_button)
        bottom.addWidget(self.chosen, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.note)
        layout.addLayout(bottom)

    def initializePage(self) -> None:
        snap = self.wizard().snap
        if snap is None or snap.id == self._for:
            return
        self._for = snap.id
        selection = self.wizard().selection = Selection()  # another backup: other files
        selection.listeners.append(self._ticks_changed)
        for old in (self.tree, self.found):
            if old is not None:
                old.deleteLater()
        self.tree = SnapshotTree(self._lister(snap.id), selection, self)
        style = self.style()
        self.tree.icons = {"dir": style.standardIcon(QStyle.StandardPixmap.SP_DirIcon),
                           "file": style.standardIcon(QStyle.StandardPixmap.SP_FileIcon),
                           "symlink": style.standardIcon(QStyle.StandardPixmap.SP_FileLinkIcon)}
        self.view.setModel(self.tree)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(Column.NAME, QHeaderView.ResizeMode.Stretch)
        for column in (Column.SIZE, Column.MODIFIED):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.found = FoundModel(selection, self.tree.children_of, self)
        self.found_view.setModel(self.found)
        found_header = self.found_view.horizontalHeader()
        found_header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        found_header.setSectionResizeMode(Column.NAME, QHeaderView.ResizeMode.Stretch)
        self.search.clear()
        self.stack.setCurrentWidget(self.view)
        self.note.setText(self.tr("Listing the backup…"))
        self.tree.rowsInserted.connect(self._listed)
        self._ticks_changed()
        self.tree.start()

    def _lister(self, snapshot_id: str):
        def _ask(path: str, cursor: str | None) -> None:
            params = {"selector": snapshot_id, "path": path}
            if cursor is not None:
                params["after"] = cursor
            tree = self.tree
            request = Request(self.wizard().home, "ls", params, self)
            request.result.connect(lambda page: tree.add_page(path, page)
                                   if tree is self.tree else None)  # fmt: skip
            request.failed.connect(lambda exc: self._page_failed(tree, path, exc.message))
            request.no_daemon.connect(lambda: self._page_failed(tree, path, self.tr(
                "The backup service is not running.")))
            request.lost.connect(lambda: self._page_failed(tree, path, self.tr(
                "The backup service stopped before it answered.")))
            request.start()

        return _ask

    def _page_failed(self, tree: SnapshotTree, path: str, message: str) -> None:
        if tree is not self.tree:
            return
        tree.page_failed(path)
        self.note.setText(message)

    def _listed(self, parent: QModelIndex, first: int, last: int) -> None:
        if not parent.isValid():
            self.note.setText("")
            if self.view.currentIndex() == QModelIndex():
                self.view.setCurrentIndex(self.tree.index(0, 0))
            if self.tree.rowCount() == 1:  # one folder: open it, there is nothing else
                self.view.expand(self.tree.index(0, 0))

    def _find(self) -> None:
        self._typing.stop()
        text = self.search.text().strip()
        if self._search is not None:
            self._search.abort()
            self._search = None
        if not text or self.found is None:
            self.stack.setCurrentWidget(self.view)
            self.note.setText("")
            return
        pattern = text if any(c in text for c in "*?[") else f"*{text}*"
        found = self.found
        self._search = request = Request(self.wizard().home, "find",
                                         {"selector": self._for, "pattern": pattern}, self)
        request.result.connect(lambda page: self._show_found(found, page))
        request.failed.connect(lambda exc: self.note.setText(exc.message))
        request.finished.connect(lambda: self._search_ended(request))
        request.start()

    def _search_ended(self, request: Request) -> None:
        if self._search is request:  # not a newer search's
            self._search = None

    def _show_found(self, found: FoundModel, page: dict) -> None:
        found.set_found(page)
        self.stack.setCurrentWidget(self.found_view)
        count = found.rowCount()
        if not count:
            self.note.setText(self.tr("Nothing in this backup has a name like that."))
        elif found.more:
            self.note.setText(self.tr("Only the first %1 found are shown: type more of the "
                                      "name to narrow it down.").replace("%1", str(count)))
        else:
            self.note.setText("")

    def _tick_all(self) -> None:
        if self.tree is None:
            return
        top = self.tree.children_of("")
        for path in top or []:
            self.wizard().selection.choose(path, True, self.tree.children_of)

    def _ticks_changed(self) -> None:
        paths = self.wizard().selection.paths()
        if not paths:
            self.chosen.setText(self.tr("Nothing is ticked yet."))
        elif len(paths) == 1:
            self.chosen.setText(self.tr("Ticked: %1").replace("%1", paths[0]))
        else:
            self.chosen.setText(self.tr("Ticked: %1 and %2 more").replace("%1", paths[0])
                                .replace("%2", str(len(paths) - 1)))  # fmt: skip
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return bool(self.wizard() and self.wizard().selection)
