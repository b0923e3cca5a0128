"""The daemon's audits: every friend online is audited on a schedule, and what an audit
finds missing or damaged is repaired at once.

``Auditor`` audits each friend ``ROUNDS`` times per ``audit_every`` (upkeep settings,
read each round: a slice of its shares a day by default, engine/audit.py), when the
friend is online and its last audit is that old. Each audit is the ``audit`` job for
one friend: in the job table, its events on the bus, and it waits for the job lock,
so it never runs beside a backup, and a backup asked meanwhile waits for one friend's
slice at most. The job keeps the friend's audit record (``audits.json``,
storage/auditlog.py), says ``AuditDone``, and rebuilds what was missing or damaged
from k good shares, stored again on friends with room (engine/verify.py, engine/
rebuild.py for large records): ``RepairDone``, and ``SafetyChanged`` for the records
it touched (what they survive losing when found, then once repaired).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import trio

from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.daemon.times import iso_time
from p2pbackup.daemon.upkeep import UpkeepSettings
from p2pbackup.engine import events as ev
from p2pbackup.engine.audit import AuditBudget, AuditResult
from p2pbackup.engine.audit import Auditor as FriendAuditor
from p2pbackup.engine.verify import Verifier
from p2pbackup.errors import P2PBackupError, PeerError
from p2pbackup.storage.auditlog import FILE, AuditLog, FriendAudit
from p2pbackup.storage.store import ShareKey

if TYPE_CHECKING:
    from p2pbackup.daemon.daemon import Daemon
    from p2pbackup.daemon.session import Session

log = logging.getLogger(__name__)

ROUNDS = 7  # audits of each friend per audit_every
LOOK_EVERY = 3600.0  # presence and settings looked at again at least this often
FIRST_WAIT = 600.0  # after the daemon starts (at most an interval): it serves friends first
PROMISED = 1  # friends every record is to survive losing (as backups place them)


class Auditor:
    def __init__(
        self, daemon: Daemon, events: ev.EventSink, *, clock=time.time
    ) -> None:  # fmt: skip
        self._daemon = daemon
        self._events = events
        self._clock = clock  # wall time, for the records (tests: trio's mock clock)
        self._log = AuditLog(daemon.node.profile.path(FILE))
        self.auditing: str | None = None  # the friend being audited now
        self.last_error: str | None = None
        self.last_result: dict[str, Any] | None = None

    def _settings(self) -> UpkeepSettings:
        return UpkeepSettings.of(self._daemon.node.profile.settings())

    # ---- what status and upkeep show

    def state(self) -> dict[str, Any]:
        records = self._log.load()
        names = {row["owner_id"]: row["name"] for row in self._daemon.friends.presence()}
        return {
            "audit_every": self._settings().audit_every,
            "auditing": self.auditing,
            "last_error": self.last_error,
            "friends": [
                {
                    "name": names.get(key, key[:12]),
                    "last_audit": iso_time(record.last),
                    "proved": record.proved,
                    "read": record.read,
                    "unproven": record.unproven,
                    "missing": len(record.missing),
                    "damaged": len(record.damaged),
                    "passes": record.passes,
                }
                for key, record in sorted(records.items())
                if key in names
            ],
        }

    # ---- the loop

    async def run(self) -> None:
        await trio.sleep(min(FIRST_WAIT, self._settings().audit_every / ROUNDS))
        while True:
            wake_at = await self._round()
            await trio.sleep_until(wake_at)

    async def _round(self) -> float:
        """Audit every friend online that is due; when to look again at the latest."""
        interval = max(1.0, self._settings().audit_every / ROUNDS)
        records = await trio.to_thread.run_sync(self._log.load)
        wake_at = trio.current_time() + min(LOOK_EVERY, interval)
        for row in self._daemon.friends.presence():
            if not row.get("online"):
                continue
            key, last = row["owner_id"], records.get(row["owner_id"], FriendAudit()).last
            wait = 0.0 if last is None else last + interval - self._clock()
            if wait <= 0:
                await self._audit(key, row["name"])
            else:
                wake_at = min(wake_at, trio.current_time() + wait)
        return wake_at

    async def _audit(self, key: str, name: str) -> None:
        self.auditing = name
        try:
            self.last_result = await self._daemon.run_job(
                "audit", {"friend": key, "now": self._clock()}, source="upkeep"
            )
            self.last_error = None
        except P2PBackupError as exc:  # away meanwhile, no friends: the next round tries
            self.last_error = exc.message
            log.warning("audit of %s: %s", name, exc.message)
        except Exception as exc:  # a bug: to the log; the node friends rely on goes on
            self.last_error = "internal error, see the log"
            log.error("audit of %s failed", name, exc_info=exc)
        finally:
            self.auditing = None


# ---- the job


async def audit(s: Session, friend: str, now: float | None = None) -> dict:
    """The ``audit`` job: audit friend ``friend`` (its key) and repair what it lacks."""
    store = s.grid.online.get(friend)
    name = s.grid.name(friend)
    if store is None:
        raise PeerError(f"Friend {name} is not online, so it cannot be audited now.")
    settings = UpkeepSettings.of(s.settings())
    budget = AuditBudget(settings.audit_every, settings.audit_read)
    audits = AuditLog(s.node.profile.path(FILE))
    records = await trio.to_thread.run_sync(audits.load)
    record = records.setdefault(friend, FriendAudit())
    descriptors = await _descriptors(s)
    expected = {
        ShareKey(rid, index)
        for rid, placed in s.state.records.items()
        if rid in descriptors
        for index, holder in placed.placement.items()
        if holder == friend
    }
    auditor = FriendAuditor(descriptors, s.state, s.workers)
    result = await auditor.audit(store, record, budget, time.time() if now is None else now,
                                 expected)  # fmt: skip
    await trio.to_thread.run_sync(audits.save, records)
    s.events(ev.AuditDone(name, bytes.fromhex(friend), result.proved, len(result.missing),
                          len(result.damaged)))  # fmt: skip
    repaired = (0, 0)
    if result.missing or result.damaged:
        repaired = await _repair(s, descriptors, friend, result)
    return {
        "friend": name,
        "held": result.held,
        "proved": result.proved,
        "read": result.read,
        "unproven": result.unproven,
        "missing": len(result.missing),
        "damaged": len(result.damaged),
        "repaired_records": repaired[0],
        "repaired_shares": repaired[1],
        "bytes_sent": result.sent,
        "bytes_received": result.received,
    }


async def _descriptors(s: Session) -> dict[bytes, RecordDescriptor]:
    """Every record the snapshots the head lists need, their manifests' included, and the
    catalog's latest backup (as this device last published the head)."""
    out: dict[bytes, RecordDescriptor] = {}
    for snap in await s.snapshots():
        out[snap.ref.manifest.record_id] = snap.ref.manifest
        out.update((d.record_id, d) for d in snap.manifest.records)
    head = s.state.head
    if head is not None and head.catalog is not None:
        out[head.catalog.descriptor.record_id] = head.catalog.descriptor
    return out


async def _repair(
    s: Session, descriptors: dict[bytes, RecordDescriptor], friend: str, found: AuditResult
) -> tuple[int, int]:
    """Rebuild the records the audit found short from k good shares: (records, shares)."""
    wanted = sorted({key.record_id for key in found.missing | found.damaged})
    verifier = Verifier(s.grid.online, s.state, s.events, s.workers)
    report = await verifier.verify([descriptors[rid] for rid in wanted], read_data=False)
    for key in found.damaged:  # found by a full read, which verify does not repeat
        health = report.records[key.record_id]
        for kind in (health.good, health.unproven):
            holders = kind.get(key.index, set())
            holders.discard(friend)
            if not holders:  # an empty entry would count as held
                kind.pop(key.index, None)
        health.add(health.bad, key.index, friend)
    s.events(ev.SafetyChanged(_survives(report), PROMISED, "audit found shares missing"))
    before = {rid: {i: set(f) for i, f in h.good.items()} for rid, h in report.records.items()}
    await verifier.repair(report, s.grid.room())
    shares = sum(
        len(friends - before[rid].get(index, set()))
        for rid, health in report.records.items()
        for index, friends in health.good.items()
    )
    s.events(ev.RepairDone(report.repaired, shares, "audit"))
    s.events(ev.SafetyChanged(_survives(report), PROMISED, "repair"))
    return report.repaired, shares


def _survives(report) -> int:
    return min((h.safe_losses for h in report.records.values()), default=0)


