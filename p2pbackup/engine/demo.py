"""The whole cycle on one machine, with friends simulated in memory.

Back up a folder (a working copy of it: the user's folder is never touched),
edit a few files and back up again, let one friend vanish and another return
damaged shares, then recover with nothing but the 24-word phrase: read the
head from the friends, restore both snapshots and compare every byte.
Everything is real (chunking, deltas, sealing, zfec shares, the signed head)
except the network, which the node issue replaces with libp2p.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import time
from dataclasses import dataclass, field
from importlib import resources

import trio

from p2pbackup.core.keys import OwnerKeys, new_secret
from p2pbackup.core.phrase import phrase_to_secret, secret_to_phrase
from p2pbackup.engine import events as ev
from p2pbackup.engine.backup import Backup, BackupReport, Settings
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import read_head
from p2pbackup.engine.restore import Restorer, load_manifest
from p2pbackup.engine.state import BackupState
from p2pbackup.errors import IntegrityError
from p2pbackup.storage.memorystore import MemoryShareStore

FRIENDS = ("alice", "bob", "carol", "dave")
QUOTA = 2 * 1024**3


def sample_folder() -> str:
    return str(resources.files("p2pbackup.resources") / "sample")


@dataclass
class DemoSummary:
    files: int = 0
    bytes: int = 0
    backups: list[tuple[BackupReport, float]] = field(default_factory=list)
    shares: dict[str, tuple[int, int]] = field(default_factory=dict)  # friend -> (count, bytes)
    vanished: str = ""
    damaged: str = ""
    rejected: int = 0
    restored: list[tuple[int, int, float]] = field(default_factory=list)  # files, bytes, seconds
    identical: bool = False


def _edit(folder: str) -> None:
    """A day's work: change a byte, insert at the start, append, add, delete."""
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
        f.write(
            b"A new first line, inserted at the very start.\n" + data + b"\nThe end, appended.\n"
        )
    if len(files) > 1:
        with open(files[0], "ab") as f:
            f.write(b"\nOne more line.\n")
    with open(os.path.join(folder, "added-today.txt"), "w") as f:
        f.write("A file that did not exist in the first backup.\n")
    os.makedirs(os.path.join(folder, "an-empty-folder"), exist_ok=True)
    if len(files) > 2:
        os.unlink(files[-1])


def _same_tree(a: str, b: str) -> bool:
    """Byte-for-byte equality of two trees, symlinks and file modes included."""
    for root, dirs, files in os.walk(a):
        other = os.path.join(b, os.path.relpath(root, a))
        if sorted(dirs + files) != sorted(os.listdir(other)):
            return False
        for name in files:
            x, y = os.path.join(root, name), os.path.join(other, name)
            if os.path.islink(x) or os.path.islink(y):
                if os.readlink(x) != os.readlink(y):
                    return False
            elif (os.stat(x).st_mode, os.stat(x).st_mtime_ns) != (
                os.stat(y).st_mode,
                os.stat(y).st_mtime_ns,
            ) or not filecmp.cmp(x, y, shallow=False):
                return False
    return True


async def run_demo(source: str, workdir: str, sink: ev.EventSink = ev.ignore) -> DemoSummary:
    summary = DemoSummary()
    phrase = secret_to_phrase(new_secret())
    keys = OwnerKeys.from_secret(phrase_to_secret(phrase))
    stores = {name: MemoryShareStore(name, QUOTA, keys.owner_id) for name in FRIENDS}
    state = BackupState()
    live = os.path.join(workdir, "live", os.path.basename(os.path.normpath(source)) or "folder")
    shutil.copytree(source, live, symlinks=True)

    expected = []
    for version in (1, 2):
        if version == 2:
            _edit(live)
        started = time.perf_counter()
        room = {name: QUOTA - (await store.stat()).used for name, store in stores.items()}
        report = await Backup(
            keys, stores, state, Settings(device="demo laptop"), sink, room=room
        ).run([live])
        summary.backups.append((report, time.perf_counter() - started))
        copy = os.path.join(workdir, f"expected-{version}")
        shutil.copytree(os.path.dirname(live), copy, symlinks=True)
        expected.append(copy)
    summary.files, summary.bytes = summary.backups[-1][0].files, summary.backups[-1][0].bytes

    for name, store in stores.items():
        keys_held = await store.list()
        summary.shares[name] = (len(keys_held), (await store.stat()).used)
    # Two friends go wrong: one vanishes, one returns a damaged copy of every share.
    # They are the two who hold the primary shares, so restore must decode from parity.
    summary.vanished, summary.damaged = FRIENDS[1], FRIENDS[0]
    for key in await stores[summary.damaged].list():
        stores[summary.damaged].corrupt(key)
    stores[summary.vanished].online = False

    # The laptop is lost: a new one knows only the phrase.
    def _count(event: ev.Event) -> None:
        if isinstance(event, ev.ShareRejected):
            summary.rejected += 1
        sink(event)

    recovered = OwnerKeys.from_secret(phrase_to_secret(phrase))
    fetcher = Fetcher(recovered, stores, _count, trio.CapacityLimiter(2))
    restorer = Restorer(recovered, fetcher)
    _, body = await read_head(recovered, stores)
    snapshots = sorted(body.tips, key=lambda ref: ref.created_at_ns)
    if len(snapshots) != 2:
        raise IntegrityError(f"The head lists {len(snapshots)} snapshots; the demo made 2.")
    summary.identical = True
    for number, ref in enumerate(snapshots):
        started = time.perf_counter()
        manifest = await load_manifest(fetcher, ref)
        target = os.path.join(workdir, f"restored-{number + 1}")
        report = await restorer.restore(manifest, target)
        summary.restored.append((report.files, report.bytes, time.perf_counter() - started))
        summary.identical &= _same_tree(expected[number], target) and _same_tree(
            target, expected[number]
        )
    return summary
