"""Browsing snapshots: ``ls`` one folder level in pages, ``find`` by name, ``log`` of a file.

A page of ``ls`` or ``find`` for a snapshot named by its whole id is answered
from this device's copy of its manifest when there is one (``from_copy``):
manifests never change (a repack rewrites only chains), so no friend is asked
and the job lock is not waited for. The first page names the snapshot
(``latest``...) and goes through a session; the next pages and the folders a
client walks into name it by id.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from datetime import datetime

import trio

from p2pbackup.core import listing
from p2pbackup.core.listing import CursorError, Tree
from p2pbackup.core.manifest import Entry, EntryType, Manifest
from p2pbackup.core.refs import StorageKind
from p2pbackup.daemon.session import Session, ref_time
from p2pbackup.engine.diskname import from_disk, to_disk
from p2pbackup.engine.scanner import root_labels
from p2pbackup.errors import ConfigError
from p2pbackup.storage.profile import Profile
from p2pbackup.storage.statedb import StateDB

SNAPSHOT_ID_HEX = 32
# (profile, snapshot id) -> its tree, the last used last
_TREES: OrderedDict[tuple[str, bytes], Tree] = OrderedDict()
_KEEP_TREES = 4  # a 10,000-file snapshot's tree is a few MiB


def in_snapshot(path: str, folders: list[str]) -> str:
    """A path as snapshots name it. An absolute path inside a folder this device backs up
    becomes the folder's name and the rest: /home/ann/Documents/notes -> Documents/notes."""
    if not os.path.isabs(to_disk(path)):
        return path
    for label, folder in zip(root_labels(folders), folders, strict=True):
        root = from_disk(os.path.normpath(folder))
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return label + path[len(root.rstrip("/")):].rstrip("/")
    example = root_labels(folders)[0] if folders else "Documents"
    raise ConfigError(
        f"{path} is not in a folder this device backs up. Paths in a snapshot start with "
        f"the folder's name, as in {example}/notes.txt: 'p2pbackup ls latest' lists them."
    )


def entry_dict(e: Entry, tree: Tree | None = None) -> dict:
    out = {
        "path": e.path,
        "name": listing.base_name(e.path),
        "type": e.type.name.lower(),
        "size": e.size,
        "mode": f"{e.mode:o}",
        "mtime": datetime.fromtimestamp(e.mtime_ns / 1e9).astimezone().isoformat(),
    }
    if e.type is EntryType.SYMLINK:
        out["target"] = e.target
    if tree is not None and e.type is EntryType.DIR:
        out["children"] = tree.child_count(e)
    return out


def _tree(key: tuple[str, bytes], manifest: Manifest) -> Tree:
    """The tree of a snapshot, built once: a repack's new generation lists the same."""
    tree = _TREES.get(key)
    if tree is None:
        tree = _TREES[key] = Tree(manifest)
        while len(_TREES) > _KEEP_TREES:
            _TREES.popitem(last=False)
    _TREES.move_to_end(key)
    return tree


def _size(e: Entry) -> int:
    return listing.wire_size(e.path, e.target)


def _paged(
    tree: Tree, sid: str, items, offset=None, after=None, limit=listing.DEFAULT_LIMIT
) -> dict:
    try:
        page = listing.page(items, sid, offset=offset, after=after, limit=limit, size=_size)
    except CursorError as exc:
        raise ConfigError(f"Cannot list that page: {exc}.") from None
    return {
        "snapshot": sid,
        "entries": [entry_dict(e, tree) for e in page.items],
        "total": page.total,
        "offset": page.offset,
        "next": page.next,
    }


def _ls(tree: Tree, sid: str, path: str, offset=None, after=None,
        limit=listing.DEFAULT_LIMIT) -> dict:  # fmt: skip
    path = path.strip("/")
    only = tree.manifest.find(path) if path else None
    if path and only is None:
        raise ConfigError(f"{path} is not in snapshot {sid[:12]}.")
    items = tree.children(path) if only is None or only.type is EntryType.DIR else (only,)
    return {"path": path, **_paged(tree, sid, items, offset, after, limit)}


def _find(tree: Tree, sid: str, pattern: str, offset=None, after=None,
          limit=listing.DEFAULT_LIMIT) -> dict:  # fmt: skip
    if not pattern:
        raise ConfigError("Give a name or a pattern to find, as in '*.pdf'.")
    return {"pattern": pattern, **_paged(tree, sid, tree.find(pattern), offset, after, limit)}


async def _session_tree(s: Session, selector: str) -> tuple[Tree, str]:
    snap = await s.snapshot(selector)
    return _tree((s.node.profile.home, snap.ref.snapshot_id), snap.manifest), snap.id


async def ls(
    s: Session, selector: str, path: str = "", offset: int | None = None,
    after: str | None = None, limit: int = listing.DEFAULT_LIMIT,
) -> dict:  # fmt: skip
    """One level of folder ``path`` (or the entry ``path`` names, if not a folder)."""
    tree, sid = await _session_tree(s, selector)
    path = in_snapshot(path, list(s.settings().get("folders", [])))
    return _ls(tree, sid, path, offset, after, limit)


async def find(
    s: Session, pattern: str, selector: str = "latest", offset: int | None = None,
    after: str | None = None, limit: int = listing.DEFAULT_LIMIT,
) -> dict:  # fmt: skip
    """Every entry whose base name matches the glob ``pattern`` (case-insensitive)."""
    tree, sid = await _session_tree(s, selector)
    return _find(tree, sid, pattern, offset, after, limit)


async def from_copy(profile: Profile, name: str, params: dict) -> dict | None:
    """``ls`` or ``find`` of a snapshot named by its whole id, from this device's copy of
    its manifest; None when that cannot be (another job, a short id, no copy)."""
    selector = params.get("selector")
    if name not in ("ls", "find") or not _whole_id(selector):
        return None
    rest = {k: v for k, v in params.items() if k != "selector"}
    wanted = {"ls": {"path"}, "find": {"pattern"}}[name] | {"offset", "after", "limit"}
    if not set(rest) <= wanted or (name == "find" and "pattern" not in rest):
        return None  # the job itself tells the client what is wrong with its parameters
    sid = bytes.fromhex(selector)
    tree = _TREES.get((profile.home, sid))
    if tree is None:
        data = await trio.to_thread.run_sync(_copy_of, profile, sid)
        if data is None:
            return None
        manifest = await trio.to_thread.run_sync(Manifest.from_bytes, data)
        if manifest.snapshot_id != sid:
            return None
        tree = _tree((profile.home, sid), manifest)
    page = {k: rest[k] for k in ("offset", "after", "limit") if k in rest}
    if name == "ls":
        path = in_snapshot(str(rest.get("path", "")), list(profile.settings().get("folders", [])))
        return _ls(tree, selector, path, **page)
    return _find(tree, selector, str(rest["pattern"]), **page)


def _whole_id(selector: object) -> bool:
    if not isinstance(selector, str) or len(selector) != SNAPSHOT_ID_HEX:
        return False
    return all(c in "0123456789abcdef" for c in selector)


def _copy_of(profile: Profile, snapshot_id: bytes) -> bytes | None:
    path = profile.path("state.sqlite")
    if not os.path.exists(path):
        return None
    db = StateDB(path)
    try:
        return db.manifest(snapshot_id)
    finally:
        db.close()


async def log(s: Session, path: str) -> dict:
    """Every version of ``path`` across snapshots and devices, oldest first: its size and
    times, how it is stored (a full text, or a delta on the version before), and whether
    its content is the previous listed version's."""
    path = in_snapshot(path, list(s.settings().get("folders", []))).strip("/")
    if not path:
        raise ConfigError("Name a file or folder, as in Documents/notes.txt.")
    versions: list[dict] = []
    previous: Entry | None = None
    for ref in await s.refs():
        snap = await s.readable(ref)  # one manifest at a time; a damaged one is noted
        if snap is None:
            continue
        e = snap.manifest.find(path)
        if e is None:
            previous = None  # gone then: a version after it is not "unchanged"
            continue
        versions.append({
            "snapshot": snap.id,
            "device": snap.device,
            "time": ref_time(ref).isoformat(timespec="seconds"),
            **entry_dict(e),
            "stored": _stored(e),
            "chain": len(e.chain),
            "unchanged": previous is not None and _content(previous) == _content(e),
        })  # fmt: skip
        previous = e
    if not versions:
        raise ConfigError(f"{path} is in no snapshot; 'p2pbackup find NAME' searches by name.")
    return {
        "path": path,
        "versions": versions,
        "damaged": sorted(sid.hex() for sid in s.damaged),  # not searched: unreadable
    }


def _stored(e: Entry) -> str | None:
    """How this version's text is kept: "full", "delta" (on the one before) or "reverse"
    (a repacked delta on a later one); None for what has no text (folders, links, empty)."""
    if not e.chain:
        return None
    kind = e.chain[-1].kind
    return {StorageKind.FULL: "full", StorageKind.DELTA: "delta"}.get(kind, "reverse")


def _content(e: Entry) -> tuple:
    return (e.type, e.size, e.rev_id, e.target)
