"""``forget``: snapshots dropped by a retention policy, per device and folder set, and
with ``prune`` their records freed at friends after old chains are repacked. Upkeep's
retention (daemon/retention.py) runs the same work after scheduled backups, under a
repack budget.
"""

from __future__ import annotations

import time

import trio

from p2pbackup.core import head as heads
from p2pbackup.core import retention
from p2pbackup.core.retention import RetentionPolicy
from p2pbackup.daemon.grid import head_friends
from p2pbackup.daemon.session import DEFAULT_K, DEFAULT_N, Session, Snapshot, ref_time
from p2pbackup.engine.fetcher import Fetcher
from p2pbackup.engine.headstore import publish
from p2pbackup.engine.prune import needed_records
from p2pbackup.engine.prune import prune as prune_records
from p2pbackup.engine.repack import Meter, RepackBudget, repack
from p2pbackup.engine.uploader import Uploader
from p2pbackup.errors import ConfigError, IntegrityError


async def forget(
    s: Session,
    keep_last: int = 0,
    keep_hourly: int = 0,
    keep_daily: int = 0,
    keep_weekly: int = 0,
    keep_monthly: int = 0,
    keep_yearly: int = 0,
    prune: bool = False,
    dry_run: bool = False,
    device: str | None = None,
    all_devices: bool = False,
) -> dict:
    s.require_friends("forget")
    policy = RetentionPolicy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly,
                             keep_yearly)  # fmt: skip
    return await apply_policy(s, policy, prune=prune, dry_run=dry_run, device=device,
                              all_devices=all_devices)  # fmt: skip


async def apply_policy(
    s: Session, policy: RetentionPolicy, *, prune: bool = False, dry_run: bool = False,
    device: str | None = None, all_devices: bool = False,
    budget: RepackBudget | None = None,
) -> dict:  # fmt: skip
    """``forget``'s work, for it and for upkeep's retention (daemon/retention.py), which
    repacks under ``budget``."""
    budget = budget or RepackBudget()
    snaps = await s.snapshots()
    listed = {snap.ref.snapshot_id for snap in snaps}
    unreadable = [t for t in (await s.head()).tips if t.snapshot_id not in listed]
    wanted = _forget_device(snaps, unreadable, s.device, device, all_devices)
    # Retention per device and folder set: one device's snapshots never make another's look
    # old. A snapshot whose manifest cannot be read goes by what the head says of it (head
    # version 2); one it says nothing of is never forgotten by a policy.
    members = [(sn.id, sn.group, sn.time, sn.device) for sn in snaps]
    members += [(t.snapshot_id.hex(), (t.device, t.folder_set), ref_time(t), t.device)
                for t in unreadable if t.device]  # fmt: skip
    members = sorted(
        (m for m in members if wanted is None or m[3] == wanted), key=lambda m: (m[2], m[0])
    )
    decision = retention.keep_per_group(policy, [m[:3] for m in members])
    forgotten = set(decision.forget)
    if prune:
        _refuse_blind_prune(unreadable, forgotten)
    gone = [snap for snap in snaps if snap.id in forgotten]
    # Kept means every snapshot not forgotten, other devices' too: prune must not free
    # what they need.
    kept = [snap for snap in snaps if snap.id not in forgotten]
    blind = {t.snapshot_id.hex() for t in unreadable}
    result: dict = {
        "kept": [
            {"id": sid, "why": list(decision.keep[sid]), "device": dev}
            | ({"unreadable": True} if sid in blind else {})
            for sid, _, _, dev in members
            if sid in decision.keep
        ],
        "forgotten": [sid for sid, _, _, _ in members if sid in forgotten],
        "devices": sorted({dev for _, _, _, dev in members}),
        "other_devices_kept": len(snaps) + len(unreadable) - len(members),
        "dry_run": dry_run,
    }
    if dry_run:
        return result
    if forgotten:
        change = heads.HeadBody(
            frozenset(), frozenset(bytes.fromhex(sid) for sid in forgotten),
            head_friends(s.node), None,
        )  # fmt: skip
        await publish(s.keys, s.grid.online, s.state, change)
    if prune:
        await trio.to_thread.run_sync(s.state.load_files)  # every folder's, to repack and prune
        settings = s.settings()
        meter = Meter()  # what the repack reads and sends, counted (and held to the budget)
        stores = budget.stores(s.grid.online, meter)
        uploader = Uploader(
            s.keys, stores, s.state, s.events, k=int(settings.get("k", DEFAULT_K)),
            n=int(settings.get("n", DEFAULT_N)), survive=1, room=s.grid.room(),
            workers=s.workers,
        )  # fmt: skip
        away = [s.grid.name(key) for key in s.grid.friends if key not in s.grid.usage]
        fetcher = Fetcher(s.keys, stores, s.events, s.workers, away)
        started = time.monotonic()
        repacked, rewritten = await repack(
            s.keys, s.grid.online, s.state, uploader, fetcher,
            [(snap.ref, snap.manifest) for snap in kept], head_friends(s.node),
            budget=budget, scratch=s.node.profile.home,  # large texts: beside the profile
        )  # fmt: skip
        kept = [Snapshot(ref, manifest) for ref, manifest in rewritten]
        result["repacked_revisions"] = repacked.revisions
        result["rewritten_snapshots"] = repacked.snapshots
        result["repack"] = {"seconds": round(time.monotonic() - started, 3),
                            "bytes_read": meter.read, "bytes_sent": meter.sent,
                            "left_for_later": repacked.left_for_later}  # fmt: skip
        needed = needed_records(
            [snap.manifest for snap in kept], [snap.ref.manifest.record_id for snap in kept]
        )
        known = needed_records(
            [snap.manifest for snap in gone], [snap.ref.manifest.record_id for snap in gone]
        )
        report = await prune_records(s.grid.online, s.state, needed, known, s.events)
        result["removed_records"] = len(report.removed_records)
        result["removed_shares"] = report.removed_shares
        result["unreachable"] = sorted(s.grid.name(k) for k in report.unreachable)
        result["unknown_shares"] = {s.grid.name(k): n for k, n in report.unknown_shares.items()}
    return result


def _refuse_blind_prune(unreadable: list[heads.SnapshotRef], forgotten: set[str]) -> None:
    """A kept snapshot whose manifest cannot be read needs records no one can name: a
    prune now would free them. Refused before anything is forgotten."""
    blind = sum(1 for t in unreadable if t.snapshot_id.hex() not in forgotten)
    if blind:
        raise IntegrityError(
            f"{blind} snapshot(s) cannot be read from friends, so a prune cannot tell what "
            "they need. Run 'p2pbackup verify --repair' (or forget without --prune)."
        )


def _forget_device(
    snaps: list[Snapshot], unreadable: list[heads.SnapshotRef], this_device: str,
    device: str | None, all_devices: bool,
) -> str | None:  # fmt: skip
    """Whose snapshots a forget may touch: this device's, unless told another; None: all."""
    if device and all_devices:
        raise ConfigError("Give --device NAME or --all-devices, not both.")
    if all_devices:
        return None
    known = {snap.device for snap in snaps} | {t.device for t in unreadable if t.device}
    if device and device not in known:
        devices = ", ".join(sorted(known)) or "none yet"
        raise ConfigError(f"No snapshot was made on a device called {device!r}; devices: "
                          f"{devices}.")  # fmt: skip
    return device or this_device
