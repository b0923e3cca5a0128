"""``p2pbackup demo [PATH]``: the whole product on one machine, for real.

Five profiles in a temporary folder, each node its own OS process on
loopback: your laptop and four friends. Pair with invite codes, back PATH up
(a copy: your folder is never touched), edit a few files and back up again,
stop a friend, restore both snapshots and compare every byte. Then the
laptop is lost: a new device recovers from the 24-word phrase, one friend
invites it, and it restores everything again. Nothing is left running.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from p2pbackup.core.sizes import format_size
from p2pbackup.errors import ConfigError

FRIENDS = ("alice", "bob", "carol", "dave")
GONE = "bob"  # the friend who goes away before the restore


def sample_folder() -> str:
    from importlib import resources

    return str(resources.files("p2pbackup.resources") / "sample")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="run 5 real nodes here: back up to friends, lose one, restore, recover",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("path", nargs="?", help="the folder to back up (default: a sample)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    source = args.path or sample_folder()
    if not os.path.isdir(source):
        raise ConfigError(f"{source} is not a folder. Give a folder to back up, or no path.")
    import tempfile  # here and below: the other commands start faster without these

    say = (lambda text: None) if args.json else (lambda text: print(text, flush=True))
    with tempfile.TemporaryDirectory(prefix="p2pbackup-demo-") as root:
        summary = run_demo(source, root, say)
    if args.json:
        print(json.dumps(summary))
    else:
        print("Every byte matches." if summary["identical"] else "MISMATCH: a restore differs!")
    return 0 if summary["identical"] else 3


def _rate(size: int, seconds: float) -> str:
    return f"{size / max(seconds, 1e-9) / 1e6:.1f} MB/s"


def run_demo(source: str, root: str, say) -> dict:
    import shutil

    from p2pbackup.cli.localgrid import LocalGrid  # subprocesses: only the demo needs them

    started = time.monotonic()
    summary: dict = {"friends": list(FRIENDS), "backups": [], "restores": []}
    with LocalGrid(os.path.join(root, "nodes")) as grid:
        phrase = grid.init_all(["laptop", *FRIENDS])["laptop"]["recovery_phrase"]
        grid.cli("laptop", "schedule", "off")  # the demo says when to back up
        grid.start("laptop", *FRIENDS)
        grid.pair("laptop", *FRIENDS)
        say(f"Started 5 nodes on 127.0.0.1 and paired the laptop with {', '.join(FRIENDS)}.")

        live = os.path.join(root, "live", os.path.basename(os.path.normpath(source)) or "folder")
        shutil.copytree(source, live, symlinks=True)
        grid.cli("laptop", "folders", "add", live)
        expected = []
        for number in (1, 2):
            if number == 2:
                _edit(live)
            report = grid.cli("laptop", "backup")
            summary["backups"].append(report)
            expected.append(os.path.join(root, f"expected-{number}"))
            shutil.copytree(os.path.dirname(live), expected[-1], symlinks=True)
            say(
                f"Backup {number}: {report['files']} files, {format_size(report['bytes'])}; "
                f"{report['changed']} read and stored in {report['seconds']:.2f} s "
                f"({_rate(report['bytes'], report['seconds'])} of source)."
            )
        friends = grid.cli("laptop", "friends")
        summary["stored_at"] = {f["name"]: f["they_store_for_me"] for f in friends}
        say("Stored at each friend (k=2 of n=4: any 2 friends rebuild everything): " + ", ".join(
            f"{name} {format_size(used or 0)}" for name, used in summary["stored_at"].items()
        ))  # fmt: skip

        grid.stop(GONE)
        say(f"{GONE} went away.")
        snapshots = grid.cli("laptop", "snapshots")
        identical = len(snapshots) == 2
        for number, snap in enumerate(snapshots[:2], 1):
            target = os.path.join(root, f"restored-{number}")
            report = grid.cli("laptop", "restore", snap["id"][:8], "--to", target)
            summary["restores"].append(report)
            identical &= same_tree(expected[number - 1], target)
            say(
                f"Restored snapshot {number} ({snap['id'][:12]}) without {GONE}: "
                f"{report['files']} files in {report['seconds']:.2f} s."
            )

        grid.stop("laptop")
        grid.init("new-laptop", recover_phrase=phrase)
        grid.cli("new-laptop", "schedule", "off")
        grid.start("new-laptop")
        grid.pair(FRIENDS[0], "new-laptop")
        target = os.path.join(root, "recovered")
        report = grid.cli("new-laptop", "restore", "latest", "--to", target)
        identical &= same_tree(expected[1], target)
        summary["recovered"] = report
        say(
            f"The laptop was lost: a new one recovered from the 24-word phrase, {FRIENDS[0]} "
            f"invited it, and it restored {report['files']} files from {FRIENDS[0]}, carol "
            f"and dave in {report['seconds']:.2f} s."
        )
    summary["identical"] = identical
    summary["seconds"] = round(time.monotonic() - started, 2)
    return summary


def _edit(folder: str) -> None:
    """A day's work: insert at the start of the largest file, append, add, delete."""
    files = sorted(
        os.path.join(d, f)
        for d, _, names in os.walk(folder)
        for f in names
        if not os.path.islink(os.path.join(d, f))
    )
    biggest = max(files, key=os.path.getsize)
    with open(biggest, "r+b") as f:
        data = f.read()
        f.seek(0)
        f.write(b"A new first line, inserted at the very start.\n" + data + b"\nThe end.\n")
    if len(files) > 1:
        with open(files[0], "ab") as f:
            f.write(b"\nOne more line.\n")
    with open(os.path.join(folder, "added-today.txt"), "w") as f:
        f.write("A file that did not exist in the first backup.\n")
    os.makedirs(os.path.join(folder, "an-empty-folder"), exist_ok=True)
    if len(files) > 2:
        os.unlink(files[-1])


def same_tree(a: str, b: str) -> bool:
    """Both trees hold the same names, bytes, symlinks, modes and file mtimes."""
    import filecmp

    for top, other in ((a, b), (b, a)):
        for folder, dirs, files in os.walk(top):
            mirror = os.path.join(other, os.path.relpath(folder, top))
            if not os.path.isdir(mirror) or sorted(dirs + files) != sorted(os.listdir(mirror)):
                return False
            for name in files:
                x, y = os.path.join(folder, name), os.path.join(mirror, name)
                if os.path.islink(x) or os.path.islink(y):
                    if not (os.path.islink(x) and os.path.islink(y)):
                        return False
                    if os.readlink(x) != os.readlink(y):
                        return False
                    continue
                sx, sy = os.stat(x), os.stat(y)
                if (sx.st_mode, sx.st_mtime_ns) != (sy.st_mode, sy.st_mtime_ns):
                    return False
                if not filecmp.cmp(x, y, shallow=False):
                    return False
    return True
