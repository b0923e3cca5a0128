"""What a node does for its owner: back up, list, compare, restore, report.

Each job runs in a session and returns a JSON-able dict. The CLI prints it
(running a node itself when no daemon runs); the daemon runs the same jobs
for requests on its control socket and for its scheduler.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import trio

from p2pbackup.core import manifest as manifests
from p2pbackup.core.placement import friends_needed, tolerable_losses
from p2pbackup.daemon import auditor, browse
from p2pbackup.daemon import retention as upkeep_retention
from p2pbackup.daemon.browse import in_snapshot
from p2pbackup.daemon.forget import forget
from p2pbackup.daemon.grid import head_friends
from p2pbackup.daemon.identity import device_name
from p2pbackup.daemon.params import check as check_params
from p2pbackup.daemon.replacer import replace
from p2pbackup.daemon.session import DEFAULT_K, DEFAULT_N, Session, Snapshot, ref_time
from p2pbackup.engine import events as ev
from p2pbackup.engine.backup import Backup, Settings
from p2pbackup.engine.diskname import to_disk
from p2pbackup.engine.holdings import sources_under, store_from_sources, store_manifests
from p2pbackup.engine.restore import Restorer
from p2pbackup.engine.scanner import root_labels
from p2pbackup.engine.throttle import Throttle, ThrottledStore
from p2pbackup.engine.verify import RecordHealth, Verifier, VerifyReport
from p2pbackup.errors import ConfigError
from p2pbackup.net import locate


def folders_of(settings: dict) -> list[str]:
    return list(settings.get("folders", []))


async def backup(s: Session, always_snapshot: bool = False) -> dict:
    settings = s.settings()
    folders = folders_of(settings)
    if not folders:
        raise ConfigError("There is nothing to back up yet: add a folder with 'p2pbackup folders "
                          "add PATH'.")  # fmt: skip
    s.require_friends("a backup")
    stored = Counter[str]()

    def _count(event: ev.Event) -> None:
        if isinstance(event, ev.RecordStored):
            stored["records"] += 1
            stored["bytes"] += event.size
        s.events(event)

    started = time.monotonic()
    k, n = int(settings.get("k", DEFAULT_K)), int(settings.get("n", DEFAULT_N))
    # Laptops sleep: with too few friends online to survive losing one, the backup still
    # lands on those who are, marked, and 'verify --repair' spreads it once they are back.
    survive = 1
    if len(s.grid.usage) < friends_needed(k, n, 1) <= len(s.grid.friends):
        survive = 0
    config = Settings(
        k=k,
        n=n,
        survive=survive,
        device=device_name(s.node.profile),
        friends=head_friends(s.node),
        always_snapshot=always_snapshot,
    )
    stores = s.grid.online
    if settings.get("bandwidth"):  # bytes per second, for all friends together
        throttle = Throttle(float(settings["bandwidth"]))
        stores = {key: ThrottledStore(store, throttle) for key, store in stores.items()}
    await trio.to_thread.run_sync(s.state.load_files, root_labels(folders))
    report = await Backup(s.keys, stores, s.state, config, _count, room=s.grid.room()).run(
        folders, settings.get("excludes", [])
    )
    seconds = time.monotonic() - started
    s.node.profile.update_settings(last_backup=int(time.time()))
    return {
        "snapshot": report.manifest.snapshot_id.hex(),
        "files": report.files,
        "bytes": report.bytes,
        "changed": report.changed,
        "unchanged": report.unchanged,  # nothing changed: "snapshot" is the last one
        "skipped": [{"path": e.path, "reason": e.reason} for e in report.skipped],
        "records_stored": stored["records"],
        "bytes_stored": stored["bytes"],
        "friends": sorted(s.grid.name(key) for key in s.grid.usage),
        "offline": _offline(s),
        "survives_losing": survive,  # friends this backup's new records survive losing
        "seconds": round(seconds, 3),
    }


def _offline(s: Session) -> list[dict]:
    """The friends that did not answer, and when each last did (None: never)."""
    out = []
    for key, friend in sorted(s.grid.friends.items(), key=lambda item: item[1].name):
        if key in s.grid.usage:
            continue
        seen = s.node.catalog.last_seen(friend.owner_id)
        if seen is None:  # fromtimestamp(None) was a TypeError that stopped the daemon
            out.append({"name": friend.name, "last_seen": None})
            continue
        when = datetime.fromtimestamp(seen).astimezone().isoformat(timespec="minutes")
        out.append({"name": friend.name, "last_seen": when})
    return out


async def snapshots(s: Session, sizes: bool = False) -> list[dict]:
    """Every snapshot, oldest first, as the head lists it: no manifest is fetched. Counts
    and folders come from this device's copies of manifests, null where it has none;
    ``sizes`` fetches the others (and lists one that cannot be read as damaged, with why)."""
    if sizes:
        return await _snapshots_read(s)
    listed = []
    for ref in await s.refs():
        counts = await s.cached(ref)
        listed.append({
            "id": ref.snapshot_id.hex(),
            "time": ref_time(ref).isoformat(timespec="seconds"),
            "files": counts.files if counts else None,
            "bytes": counts.bytes if counts else None,
            "device": ref.device or (counts.device if counts else None),
            "roots": list(counts.roots) if counts else None,
        })  # fmt: skip
    return listed


async def _snapshots_read(s: Session) -> list[dict]:
    listed = [(snap.ref.created_at_ns, snap.summary()) for snap in await s.snapshots()]
    for ref, reason in s.damaged.values():
        when = datetime.fromtimestamp(ref.created_at_ns / 1e9).astimezone()
        listed.append((ref.created_at_ns, {
            "id": ref.snapshot_id.hex(), "time": when.isoformat(timespec="seconds"),
            "files": None, "bytes": None, "device": ref.device or None, "roots": None,
            "damaged": reason,
        }))  # fmt: skip
    return [summary for _, summary in sorted(listed, key=lambda item: item[0])]


async def diff(s: Session, old: str, new: str) -> dict:
    a, b = await s.snapshot(old), await s.snapshot(new)
    d = manifests.diff(a.manifest, b.manifest)
    return {
        "from": a.id,
        "to": b.id,
        "added": [e.path for e in d.added],
        "removed": [e.path for e in d.removed],
        "changed": [after.path for _, after in d.changed],
    }


async def restore(
    s: Session,
    selector: str = "latest",
    *,
    at: datetime | None = None,
    paths: Sequence[str] = (),
    to: str | None = None,
    in_place: bool = False,
    force: bool = False,
    only_missing: bool = False,
) -> dict:
    """``force``: replace files newer on disk too; ``only_missing``: leave every file already
    on disk alone (the app's "only bring back what is missing")."""
    if (to is None) == (not in_place):
        raise ConfigError("Say where to restore: --to DIR, or --in-place.")
    if force and only_missing:
        raise ConfigError("Choose one: replace the files already there (force), or bring back "
                          "only the missing ones (only_missing).")  # fmt: skip
    s.require_friends("a restore")
    folders = folders_of(s.settings())
    paths = [in_snapshot(path, folders) for path in paths]
    snap = await s.snapshot(selector, at)
    started = time.monotonic()
    restorer = Restorer(s.fetcher(), s.events)  # RestoreProgress: files and bytes
    if in_place:
        dest = _in_place(snap, folders_of(s.settings()))
        report = await restorer.restore(snap.manifest, dest, paths, keep_newer=not force,
                                        only_missing=only_missing)  # fmt: skip
    else:
        assert to is not None
        # The same rule as in place: what is newer on disk stays, unless --force.
        report = await restorer.restore(
            snap.manifest, os.path.abspath(to), paths, keep_newer=not force,
            only_missing=only_missing,
        )  # fmt: skip
    seconds = time.monotonic() - started
    return {
        "snapshot": snap.id,
        "files": report.files,
        "bytes": report.bytes,
        "kept_newer": report.kept_newer,
        "kept_existing": report.kept_existing,  # only_missing: already on disk, left alone
        # Files it could not write, each with the disk's reason: the rest were restored.
        "errors": [{"path": path, "reason": reason} for path, reason in sorted(report.errors)],
        "seconds": round(seconds, 3),
    }


def _in_place(snap: Snapshot, folders: list[str]):
    """Snapshot paths back to the folders they came from (matched by their labels)."""
    where = dict(zip(root_labels(folders), folders, strict=True))
    missing = [r for r in snap.manifest.roots if r not in where]
    if missing:
        raise ConfigError(
            f"This device does not back up {', '.join(missing)}; restore with --to DIR instead."
        )

    def _target(path: str) -> str:
        label, _, rest = path.partition("/")
        return os.path.join(where[label], *to_disk(rest).split("/")) if rest else where[label]

    return _target


async def status(s: Session, check: bool = True) -> dict:
    """What status tells, worked out with friends. ``check`` (ask friends again rather than
    answer from what the daemon keeps) is the daemon's to read: a session always checks."""
    settings = s.settings()
    # The friends' head merged with mine: a recovered device knows no snapshot of its own.
    snaps = sorted((await s.head()).tips, key=lambda r: r.created_at_ns)
    mine = [t for t in snaps if t.device == s.device]  # another device's is not ours
    latest = await s.manifest((mine or snaps)[-1]) if snaps else None
    needed = latest.record_ids() if latest else frozenset()
    losses = [
        tolerable_losses(rec.placement, rec.descriptor.k)
        for rid, rec in s.state.records.items()
        if rid in needed
    ]
    last = settings.get("last_backup")
    return {
        "friends": len(s.grid.friends),
        "friends_online": sorted(s.grid.name(k) for k in s.grid.usage),
        # How each is reached now: "direct" or "relay" (net.locate.path_of).
        "paths": {
            s.grid.name(k): locate.path_of(s.node.reach(), s.grid.stores[k].peer_id)
            for k in s.grid.usage
        },
        "offline": _offline(s),
        # What a backup made now would survive: fewer friends online than the rule needs
        # means one on those online alone, until the others are back.
        "backup_now_survives": int(
            len(s.grid.usage) >= friends_needed(
                int(settings.get("k", DEFAULT_K)), int(settings.get("n", DEFAULT_N)), 1
            )
        ),
        "folders": folders_of(settings),
        "last_backup": datetime.fromtimestamp(last).astimezone().isoformat() if last else None,
        "snapshots": len(snaps),
        "protected_bytes": latest.total_bytes if latest else 0,
        "protected_files": latest.file_count if latest else 0,
        # Local placement is a cache: after a rollback only 'verify' can tell.
        "friends_that_could_disappear": min(losses) if losses and not s.rolled_back else None,
        "head_rolled_back": _rolled_back(s),
    }


def _rolled_back(s: Session) -> list[dict]:
    return [
        {"friend": s.grid.name(key), "seen": seen, "known": known}
        for key, (seen, known) in sorted(s.rolled_back.items())
    ]


async def verify(s: Session, read_data: bool = False, repair: bool = False) -> dict:
    s.require_friends("verify")
    snaps = await s.snapshots()
    descriptors = {snap.ref.manifest.record_id: snap.ref.manifest for snap in snaps}
    for ref, _ in s.damaged.values():  # its manifest record is checked (and repaired) too
        descriptors[ref.manifest.record_id] = ref.manifest
    for snap in snaps:
        descriptors.update({d.record_id: d for d in snap.manifest.records})
    verifier = Verifier(s.grid.online, s.state, s.events, s.workers)
    report = await verifier.verify(descriptors.values(), read_data)
    if repair:
        await verifier.repair(report, s.grid.room())
        await _store_lost_again(s, report, snaps)
        s.state.rollbacks_checked()
    named = {s.grid.name(k): v for k, v in report.per_friend().items()}
    risky = report.at_risk()
    lost = [h for h in report.records.values() if h.lost]
    return {
        "records": len(report.records),
        "friends": named,
        "emptied": sorted(s.grid.name(k) for k in report.emptied()),
        "unreachable": sorted(s.grid.name(k) for k in report.unreachable),
        "at_risk": len(risky),
        "lost": len(lost),
        "lost_files": sorted({p for paths in report.lost_files.values() for p in paths}),
        "repaired": report.repaired,
        "unproven": sum(len(h.unproven) for h in report.records.values()),
        "friends_that_could_disappear": min(
            (h.safe_losses for h in report.records.values()), default=None
        ),
        "head_rolled_back": _rolled_back(s),
        "damaged_snapshots": sorted(sid.hex() for sid in s.damaged),
    }


async def _store_lost_again(s: Session, report: VerifyReport, snaps: list[Snapshot]) -> None:
    """Records no k good shares of are left: stored again, same id and shares, from this
    device's copy of a manifest or from files still on disk as the snapshots have them.
    The rest are lost: named with their files, and forgotten locally, so the next backup
    stores again whichever of those files are still on disk."""
    lost = {rid: h.descriptor for rid, h in report.records.items() if h.lost}
    if not lost:
        return
    room, stores = s.grid.room(), s.grid.online
    refs = [snap.ref for snap in snaps] + [ref for ref, _ in s.damaged.values()]
    again = await store_manifests(s.keys, stores, s.state, s.events, refs, set(lost), room,
                                  s.workers)  # fmt: skip
    under = sources_under(folders_of(s.settings()))

    def _source(manifest: manifests.Manifest, path: str) -> str | None:
        # Only this device's snapshots came from files on this disk.
        return under(manifest, path) if manifest.device == s.device else None

    rest = {rid: d for rid, d in lost.items() if rid not in again}
    found = await store_from_sources(s.keys, stores, s.state, s.events,
                                     [snap.manifest for snap in snaps], rest, _source, room,
                                     s.workers)  # fmt: skip
    for rid in [*again, *found.records]:
        placed = s.state.records[rid]
        health = RecordHealth(placed.descriptor)
        for index, friend in placed.placement.items():
            health.add(health.good, index, friend)
        report.records[rid] = health
        report.repaired += 1
    if found.lost:
        await trio.to_thread.run_sync(s.state.load_files)
        await trio.to_thread.run_sync(s.state.forget_lost, set(found.lost))
    report.lost_files = {rid.hex(): paths for rid, paths in found.lost.items()}


JOBS = {
    "verify": verify,
    "forget": forget,
    "backup": backup,
    "snapshots": snapshots,
    "ls": browse.ls,
    "find": browse.find,
    "log": browse.log,
    "diff": diff,
    "restore": restore,
    "status": status,
    "retention": upkeep_retention.apply,  # upkeep's policy, after scheduled backups
    "replace": replace,  # upkeep's, run by daemon/replacer.py
    "audit": auditor.audit,  # upkeep's, run by daemon/auditor.py
}  # settings, unfriend and first-run jobs: daemon/settings.py


async def run(s: Session, name: str, params: dict):
    """Run the job ``name`` with JSON parameters (from the CLI or the control socket)."""
    if name not in JOBS:
        raise ConfigError(f"There is no job called {name!r}.")
    params = dict(params)
    if params.get("at"):
        try:
            params["at"] = datetime.fromisoformat(params["at"])
        except (TypeError, ValueError):  # the client's value, parsed here: not a bug
            raise ConfigError(f"'at' is not a date and time: {params['at']!r}.") from None
    check_params(name, JOBS[name], s, **params)
    return await JOBS[name](s, **params)
