"""A snapshot's folders and files for the restore wizard: listed lazily, chosen by ticks.

``SnapshotTree`` lists one folder level at a time, when the view opens it (Qt's
canFetchMore / fetchMore), through a ``lister(path, cursor)`` the window gives (an
``ls`` request of the snapshot); its answer comes back in ``add_page``, and a folder
longer than a page asks for the next one as the view scrolls to its end. A snapshot of
millions of files opens at once: nothing below what a person opened is asked for.

``Selection`` holds what is ticked as the fewest paths, which is what ``restore`` takes:
a ticked folder stands for everything in it, listed yet or not, so ticking a folder of
10,000 files asks the daemon for nothing. A folder's box is ticked when it or a folder
above it is chosen, partly ticked when something under it is. ``FoundModel`` shows the
answer of a search (``find``) flat, with the same ticks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QCoreApplication,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QIcon

from p2pbackup.core.sizes import format_size
from p2pbackup.gui.models.table import RowsModel

Index = QModelIndex | QPersistentModelIndex
Lister = Callable[[str, "str | None"], None]  # (folder path, cursor or None): ask for a page
ChildrenOf = Callable[[str], "list[str] | None"]  # a folder's child paths; None: not all known
CHECKED, PARTLY, UNCHECKED = (Qt.CheckState.Checked, Qt.CheckState.PartiallyChecked,
                              Qt.CheckState.Unchecked)  # fmt: skip


def _tr(text: str) -> str:
    return QCoreApplication.translate("Tree", text)


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder + "/")


class Selection:
    """The chosen paths, as few as can say it (no path under another)."""

    def __init__(self) -> None:
        self._paths: set[str] = set()
        self.listeners: list[Callable[[], None]] = []

    def paths(self) -> list[str]:
        return sorted(self._paths)

    def __bool__(self) -> bool:
        return bool(self._paths)

    def clear(self) -> None:
        self._paths.clear()
        self._changed()

    def covering(self, path: str) -> str | None:
        """The chosen path that ``path`` is, or is inside of."""
        for chosen in self._paths:
            if path == chosen or _under(path, chosen):
                return chosen
        return None

    def state(self, path: str) -> Qt.CheckState:
        if self.covering(path) is not None:
            return CHECKED
        if any(_under(chosen, path) for chosen in self._paths):
            return PARTLY
        return UNCHECKED

    def choose(self, path: str, on: bool, children_of: ChildrenOf) -> bool:
        """Tick or untick ``path``. Unticking something inside a ticked folder ticks its
        siblings instead, level by level, so every one of them must be listed: False (and
        nothing changed) if one is not."""
        if on:
            self._add(path, children_of)
        else:
            above = self.covering(path)
            if above is not None and above != path and not self._split(above, path, children_of):
                return False
            self._paths.discard(path)
            self._paths -= {p for p in self._paths if _under(p, path)}
        self._changed()
        return True

    def _add(self, path: str, children_of: ChildrenOf) -> None:
        if self.covering(path) is not None:
            return
        self._paths -= {p for p in self._paths if _under(p, path)}
        self._paths.add(path)
        # A folder whose every child is ticked is ticked itself: the fewest paths.
        while path:
            folder = parent_of(path)
            siblings = children_of(folder)
            if not folder or not siblings or any(s not in self._paths for s in siblings):
                return
            self._paths -= set(siblings)
            self._paths.add(folder)
            path = folder

    def _split(self, above: str, path: str, children_of: ChildrenOf) -> bool:
        steps, level = [], path
        while level != above:
            folder = parent_of(level)
            children = children_of(folder)
            if children is None:
                return False
            steps.append((children, level))
            level = folder
        self._paths.discard(above)
        for children, keep_out in steps:
            self._paths.update(c for c in children if c != keep_out)
        return True

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()


class Column(enum.IntEnum):
    NAME = 0
    SIZE = 1
    MODIFIED = 2


def _headers() -> dict[Column, str]:
    return {Column.NAME: _tr("Name"), Column.SIZE: _tr("Size"),
            Column.MODIFIED: _tr("Modified")}  # fmt: skip


@dataclass(eq=False)
class Node:
    entry: dict  # an ``ls`` entry: path, name, type, size, mtime, children (folders)
    parent: Node | None
    kids: list[Node] = field(default_factory=list)
    cursor: str | None = None  # the next page's, once a page came
    listed: bool = False  # every page came
    asking: bool = False  # a page was asked for and has not come

    @property
    def path(self) -> str:
        return str(self.entry.get("path", ""))

    @property
    def is_dir(self) -> bool:
        return self.entry.get("type") == "dir"


def entry_text(entry: dict, column: Column) -> str:
    if column is Column.NAME:
        return str(entry.get("name") or entry.get("path", ""))
    if column is Column.SIZE:
        if entry.get("type") == "dir":
            count = entry.get("children")
            if count is None:
                return ""
            return _tr("1 item") if count == 1 else _tr("%1 items").replace("%1", f"{count:,}")
        if entry.get("type") == "symlink":
            return _tr("link")
        return format_size(int(entry.get("size") or 0))
    try:
        moment = datetime.fromisoformat(str(entry.get("mtime"))).astimezone()
    except ValueError:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M")


def tick_flags(index: Index) -> Qt.ItemFlag:
    """An entry's row, in the tree or a search's answer: its name has the tick box."""
    if not index.isValid():
        return Qt.ItemFlag.NoItemFlags
    flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
    if index.column() == Column.NAME:
        flags |= Qt.ItemFlag.ItemIsUserCheckable
    return flags


class SnapshotTree(QAbstractItemModel):
    """One snapshot's tree, listed as it is opened. ``failed`` text is shown by the page."""

    def __init__(self, lister: Lister, selection: Selection | None = None, parent=None):
        super().__init__(parent)
        self._lister = lister
        self.selection = selection if selection is not None else Selection()  # falsy if empty
        self.selection.listeners.append(self._ticks_changed)
        self._root = Node({"path": "", "type": "dir"}, None)
        self._nodes: dict[str, Node] = {"": self._root}
        self.icons: dict[str, QIcon] = {}  # by entry type, from the window's style

    # -- pages from the daemon
    def add_page(self, path: str, page: dict) -> None:
        """An ``ls`` answer for folder ``path``: its entries go under it."""
        node = self._nodes.get(path)
        if node is None or not node.is_dir:
            return
        node.asking = False
        known = {kid.path for kid in node.kids}
        fresh = [e for e in page.get("entries", []) if isinstance(e, dict)
                 and e.get("path") not in known]  # fmt: skip
        if fresh:
            first = len(node.kids)
            self.beginInsertRows(self._index(node), first, first + len(fresh) - 1)
            for entry in fresh:
                kid = Node(entry, node)
                node.kids.append(kid)
                self._nodes[kid.path] = kid
            self.endInsertRows()
        node.cursor = page.get("next")
        node.listed = node.cursor is None
        if node.listed and node is not self._root and not node.kids:
            self.dataChanged.emit(self._index(node), self._index(node))  # no arrow any more

    def page_failed(self, path: str) -> None:
        """The page was not had: it is asked for again when the view wants it."""
        node = self._nodes.get(path)
        if node is not None:
            node.asking = False

    def start(self) -> None:
        """Ask for the snapshot's top level."""
        self.fetchMore(QModelIndex())

    def children_of(self, path: str) -> list[str] | None:
        node = self._nodes.get(path)
        if node is None or not node.listed:
            return None
        return [kid.path for kid in node.kids]

    def node(self, index: Index) -> Node:
        return index.internalPointer() if index.isValid() else self._root

    def index_of(self, path: str) -> QModelIndex:
        node = self._nodes.get(path)
        return self._index(node) if node is not None else QModelIndex()

    def _index(self, node: Node, column: int = 0) -> QModelIndex:
        if node.parent is None:
            return QModelIndex()
        return self.createIndex(node.parent.kids.index(node), column, node)

    # -- Qt's lazy listing
    def canFetchMore(self, parent: Index) -> bool:
        node = self.node(parent)
        return node.is_dir and not node.listed and not node.asking

    def fetchMore(self, parent: Index) -> None:
        node = self.node(parent)
        if not self.canFetchMore(parent):
            return
        node.asking = True
        self._lister(node.path, node.cursor)

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        node = self.node(parent)
        if not node.is_dir:
            return False
        if node.listed or node is self._root:
            return bool(node.kids) or not node.listed
        return bool(node.entry.get("children", 1))

    # -- the model
    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        node = self.node(parent)
        if not 0 <= row < len(node.kids) or not 0 <= column < len(Column):
            return QModelIndex()
        return self.createIndex(row, column, node.kids[row])

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid():
            return QModelIndex()
        node: Node = index.internalPointer()
        return self._index(node.parent) if node.parent is not None else QModelIndex()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self.node(parent).kids)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _headers()[Column(section)]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        node: Node = index.internalPointer()
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return entry_text(node.entry, column)
        if role == Qt.ItemDataRole.CheckStateRole and column is Column.NAME:
            return self.selection.state(node.path)
        if role == Qt.ItemDataRole.DecorationRole and column is Column.NAME:
            return self.icons.get(str(node.entry.get("type")))
        if role == Qt.ItemDataRole.TextAlignmentRole and column is Column.SIZE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return node.path
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.CheckStateRole:
            return False
        on = Qt.CheckState(value) != UNCHECKED
        return self.selection.choose(self.node(index).path, on, self.children_of)

    def flags(self, index: Index) -> Qt.ItemFlag:
        return tick_flags(index)

    def _ticks_changed(self) -> None:
        """Every box may have changed (a folder ticks what is under it): say so for each
        listed row, one signal per folder."""
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.kids:
                first, last = node.kids[0], node.kids[-1]
                self.dataChanged.emit(self._index(first), self._index(last),
                                      [Qt.ItemDataRole.CheckStateRole])  # fmt: skip
                stack.extend(kid for kid in node.kids if kid.kids)


class FoundModel(RowsModel):
    """A search's answer (``find``), flat, each with its folder and the tree's ticks. An
    entry inside a ticked folder whose siblings are not listed cannot be unticked here."""

    COLUMNS = len(Column) + 1

    def __init__(self, selection: Selection, children_of: ChildrenOf, parent=None) -> None:
        super().__init__(parent)
        self.selection = selection
        self._children_of = children_of
        self._rows: list[dict] = []
        self.more = False  # the daemon found more than one page
        selection.listeners.append(self._ticks_changed)

    def set_found(self, page: dict | None) -> None:
        self.beginResetModel()
        self._rows = [e for e in (page or {}).get("entries", []) if isinstance(e, dict)]
        self.more = bool((page or {}).get("next"))
        self.endResetModel()

    def entry(self, row: int) -> dict:
        return self._rows[row]

    def header(self, section: int) -> str:
        return _tr("In folder") if section == len(Column) else _headers()[Column(section)]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        entry = self._rows[index.row()]
        path = str(entry.get("path", ""))
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() == len(Column):
                return parent_of(path)
            return entry_text(entry, Column(index.column()))
        if role == Qt.ItemDataRole.CheckStateRole and index.column() == Column.NAME:
            return self.selection.state(path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return path
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.CheckStateRole:
            return False
        path = str(self._rows[index.row()].get("path", ""))
        return self.selection.choose(path, Qt.CheckState(value) != UNCHECKED, self._children_of)

    def flags(self, index: Index) -> Qt.ItemFlag:
        return tick_flags(index)

    def _ticks_changed(self) -> None:
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, 0),
                                  [Qt.ItemDataRole.CheckStateRole])  # fmt: skip
