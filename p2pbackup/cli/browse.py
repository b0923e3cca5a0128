"""Browsing snapshots from the command line: ls, find and log.

``ls`` and ``find`` ask for one page at a time (docs/format.md, the control
socket's ``ls``) and fetch every page themselves; ``ls --recursive`` walks the
folders a page at a time, here in the client, so no answer is ever the whole
snapshot."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from p2pbackup.cli.common import add_common, emit
from p2pbackup.cli.runner import Ask, call_job, call_jobs
from p2pbackup.core import names
from p2pbackup.core.names import shown
from p2pbackup.core.sizes import format_size
from p2pbackup.engine.diskname import from_disk

LATEST_HELP = (
    "'latest' (this device's newest), 'latest@DEVICE' (another device's), or the start of a "
    "snapshot id"
)
PAGE = 1000  # entries asked for per page


def add_parsers(commands: argparse._SubParsersAction) -> None:
    ls = commands.add_parser("ls", help="list a folder of a snapshot (one level; -R: all)")
    add_common(ls)
    ls.add_argument("snapshot", help=LATEST_HELP)
    ls.add_argument("path", nargs="?", default="", help="a folder in the snapshot, or a path "
                    "in a backed-up folder (default: the top level)")  # fmt: skip
    ls.add_argument("--recursive", "-R", action="store_true", help="every folder under it too")
    ls.add_argument("--limit", type=int, default=PAGE, help=argparse.SUPPRESS)  # page size
    ls.set_defaults(run=run_ls, more_paths="path")

    find = commands.add_parser("find", help="find files by name in a snapshot")
    add_common(find)
    find.add_argument("pattern", help="a name or a glob on the name, any case: '*.pdf'")
    find.add_argument("snapshot", nargs="?", default="latest", help=LATEST_HELP)
    find.add_argument("--limit", type=int, default=PAGE, help=argparse.SUPPRESS)
    find.set_defaults(run=run_find)

    log = commands.add_parser("log", help="every version of a file, oldest first")
    add_common(log)
    log.add_argument("path", help="a path in the snapshots, or in a backed-up folder")
    log.set_defaults(run=run_log, more_paths="path")


async def pages(ask: Ask, name: str, params: dict, each: Callable[[dict], None]) -> dict:
    """Every page of a listing, each entry given to ``each``; the first page's answer.
    Later pages name the snapshot by its id, so they list the one the first page did."""
    first = result = await ask(name, params)
    while True:
        for entry in result["entries"]:
            each(entry)
        if not result["next"]:
            return first
        more = {**params, "selector": result["snapshot"], "after": result["next"]}
        if "path" in result:
            more["path"] = result["path"]
        result = await ask(name, more)


def run_ls(args: argparse.Namespace) -> int:
    entries: list[dict] = []

    async def _walk(ask: Ask) -> dict:
        params = {"selector": args.snapshot, "path": from_disk(args.path), "limit": args.limit}
        level: list[dict] = []
        first = await pages(ask, "ls", params, level.append)
        await _into(ask, first["snapshot"], level)
        return first

    async def _into(ask: Ask, snapshot: str, level: list[dict]) -> None:
        """The entries of one level, each folder followed by what it holds (path order)."""
        for entry in level:
            entries.append(entry)
            if args.recursive and entry["type"] == "dir" and entry.get("children"):
                inner: list[dict] = []
                params = {"selector": snapshot, "path": entry["path"], "limit": args.limit}
                await pages(ask, "ls", params, inner.append)
                await _into(ask, snapshot, inner)

    first = call_jobs(args, _walk)
    data = {"snapshot": first["snapshot"], "path": first["path"], "entries": entries}
    if not args.recursive:
        data["total"] = first["total"]
    text = "\n".join(map(_line, entries))
    for entry in entries:
        _entry_json(entry)
    emit(args, data, text)
    return 0


def _line(e: dict) -> str:
    size = f"{e['children']} items" if e["type"] == "dir" else e["size"]
    when = e["mtime"][:16].replace("T", " ")
    link = f" -> {shown(e['target'])}" if "target" in e else ""
    return f"{e['type'][0]} {e['mode']:>4} {size:>12}  {when}  {shown(e['path'])}{link}"


def _entry_json(entry: dict) -> None:
    for key in ("path", "name", "target"):
        names.to_json(entry, key)


def run_find(args: argparse.Namespace) -> int:
    entries: list[dict] = []

    async def _all(ask: Ask) -> dict:
        params = {"pattern": args.pattern, "selector": args.snapshot, "limit": args.limit}
        return await pages(ask, "find", params, entries.append)

    first = call_jobs(args, _all)
    data = {"snapshot": first["snapshot"], "pattern": args.pattern, "entries": entries,
            "total": first["total"]}  # fmt: skip
    text = (
        "\n".join(map(_line, entries))
        or f"Nothing in snapshot {first['snapshot'][:12]} is named like {args.pattern!r}."
    )
    for entry in entries:
        _entry_json(entry)
    emit(args, data, text)
    return 0


def run_log(args: argparse.Namespace) -> int:
    data = call_job(args, "log", {"path": from_disk(args.path)})
    text = _log_text(data)
    names.to_json(data, "path")
    for version in data["versions"]:
        _entry_json(version)
    emit(args, data, text)
    return 0


def _log_text(data: dict) -> str:
    lines = [f"{shown(data['path'])}: {len(data['versions'])} version(s), oldest first"]
    for v in data["versions"]:
        what = "folder" if v["type"] == "dir" else format_size(v["size"])
        note = "  unchanged" if v["unchanged"] else ""
        lines.append(f"  {v['time']}  {v['snapshot'][:12]}  {v['device']:<12} {what:>10}  "
                     f"modified {v['mtime'][:19]}  {v['stored'] or '-':<7}{note}")  # fmt: skip
    lines += [f"  (snapshot {sid[:12]} could not be read)" for sid in data["damaged"]]
    return "\n".join(lines)
