"""The daemon's re-placement: friends unseen too long, friends back, quotas lowered.

``Replacer`` watches presence (daemon/friends.py) and the bus. It counts each friend's
time unseen on trio's clock (at start, from the friend's last-seen time), says so once
a day per friend while it lasts (``FriendUnseen``, from a day on, or from the grace
period if that is shorter), and runs the ``replace`` job (engine/replace.py) when there
is something to do:

- a friend unseen longer than the grace period whose shares were not placed again yet;
- a friend with extras (copies made while it was away) online again;
- a friend whose ``stat`` shows more of mine than its quota.

The job is a job like the others: in the job table, its events on the bus, and it
waits for the job lock, so it never runs beside a backup. A run that leaves work
undone (no room) says what to do (``UpkeepNeeds``) and is tried again six hours later,
or sooner on news of friends (one back, more room, a quota changed) or of the settings.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import trio

from p2pbackup.core.placement import tolerable_losses
from p2pbackup.core.sizes import format_size
from p2pbackup.daemon.times import iso_time
from p2pbackup.daemon.upkeep import DAY, UpkeepSettings
from p2pbackup.daemon.watch import Outbox
from p2pbackup.engine import events as ev
from p2pbackup.engine.replace import Outcome, Replacement
from p2pbackup.engine.state import BackupState
from p2pbackup.errors import P2PBackupError
from p2pbackup.storage.statedb import StateDB
from p2pbackup.storage.store import ShareStore, Usage

if TYPE_CHECKING:
    from p2pbackup.daemon.daemon import Daemon
    from p2pbackup.daemon.session import Session

log = logging.getLogger(__name__)

PROMISED = 1  # friends every record is to survive losing (as backups place them)
WARN_EVERY = DAY
RETRY = 6 * 3600.0  # a run that left work undone is tried again after this (or on news)
SETTLE = 30.0  # at start, every friend is tried once before anyone is counted unseen
LOOK_EVERY = 3600.0  # looked at again at least this often, news or not
WATCHED = 3600.0  # a friend is missed this long by the daemon itself before it counts gone
JOB_SLICE = 30.0  # seconds a replace job starts records for: a backup waits no longer
NEWS = frozenset({"FriendOnline", "FriendOffline", "FriendUsage", "SettingsChanged"})


class Replacer:
    def __init__(self, daemon: Daemon, events: ev.EventSink) -> None:
        self._daemon = daemon
        self._events = events
        self._names: dict[str, str] = {}  # friend key -> name
        self._friends = 0  # how many there are, at the last look
        self._gone_at: dict[str, float] = {}  # friend key -> when last seen, on trio's clock
        self._missed_at: dict[str, float] = {}  # friend key -> trio time this daemon missed it
        self._last_seen: dict[str, str | None] = {}
        self._warned: dict[str, float] = {}  # friend key -> trio time of its last warning
        self._tried_off: set[str] = set()  # unseen friends a run placed shares off
        self._placed_off: set[str] = set()  # ... and all of them, at the last run
        self._extras_for: set[str] | None = None  # friends extras stand in for (None: unread)
        self._tried_back: set[str] = set()  # friends back whose extras a run tried to drop
        self._tried_usage: dict[str, tuple[int, int]] = {}  # usage a run tried to fit
        self._retry_at: float | None = None  # trio time, when a run left work undone
        self.running = False
        self.ready = trio.Event()  # the first look is over (a test's cue)
        self._said: tuple[str, str | None] | None = None  # the last advice and problem told
        self._said_at = -math.inf
        self.last_run: float | None = None  # wall clock
        self.last_result: dict[str, Any] | None = None
        self.last_error: str | None = None

    # ---- what status and upkeep show

    def state(self) -> dict[str, Any]:
        """For ``upkeep`` and the ``upkeep`` block of ``status``: short values, in words."""
        result = self.last_result or {}
        return {
            "unseen": _unseen_words(self.unseen(), self._friends),
            "placed_again_off": sorted(self._names.get(k, k) for k in self._placed_off),
            "extras": result.get("extras", 0),  # copies standing in for friends away
            "advice": result.get("advice"),
            "running": self.running,
            "last_run": iso_time(self.last_run),
            "last_error": self.last_error,
        }

    def unseen(self) -> list[dict[str, Any]]:
        """Friends unseen long enough to be warned about, longest first (``status``)."""
        now, grace = trio.current_time(), self._settings().grace
        return [
            {
                "name": self._names.get(key, key),
                "days": round((now - at) / DAY, 1),
                "seconds": round(now - at),
                "last_seen": self._last_seen.get(key),
                "placed_again": key in self._placed_off,
            }
            for key, at in sorted(self._gone_at.items(), key=lambda item: item[1])
            if now - at >= _warn_after(grace)
        ]

    def _settings(self) -> UpkeepSettings:
        return UpkeepSettings.of(self._daemon.node.profile.settings())

    # ---- the loop

    async def run(self) -> None:
        outbox = Outbox(100)  # only woken by it: what was missed is looked at anyway
        with self._daemon.bus.subscribed(outbox):
            await self._daemon.friends.settled(SETTLE)
            self._extras_for = await trio.to_thread.run_sync(self._read_extras)
            news = False
            while True:
                try:
                    wake_at = await self._round(news)
                except Exception as exc:  # a bug: to the log; the node friends use serves on
                    log.error("re-placement's look failed", exc_info=exc)
                    wake_at = trio.current_time() + LOOK_EVERY
                self.ready.set()
                with trio.move_on_at(wake_at):
                    await _news(outbox)
                news = trio.current_time() < wake_at

    def _read_extras(self) -> set[str] | None:
        """The friends extras stand in for; None when the state cannot be read now (a
        job holding it, a full disk): the first run with friends online finds out."""
        path = self._daemon.node.profile.path("state.sqlite")
        if not os.path.exists(path):
            return set()  # nothing backed up here yet
        try:
            db = StateDB(path)
        except P2PBackupError as exc:
            log.warning("re-placement: %s", exc.message)
            return None
        try:
            return {friend for _, friend in db.extras().values()}
        finally:
            db.close()

    async def _round(self, news: bool) -> float:
        """Look, warn, run the job if there is work; when to look again at the latest.
        Work left undone for want of room is tried again on ``news`` (more room, say)."""
        settings = self._settings()
        now = trio.current_time()
        online = self._presence(now)
        wake_at = now + LOOK_EVERY
        for key, at in self._gone_at.items():
            due = max(at + _warn_after(settings.grace), self._warned.get(key, -math.inf)
                      + WARN_EVERY)  # fmt: skip
            if now >= due:
                self._warn(key, now - at)
                due = now + WARN_EVERY
            wake_at = min(wake_at, due)
            if (gone_at := self._gone_after(key, settings.grace)) > now:
                wake_at = min(wake_at, gone_at)
        gone = {k for k in self._gone_at if self._gone_after(k, settings.grace) <= now}
        maybe_back = online if self._extras_for is None else self._extras_for & online
        back = maybe_back - self._tried_back
        over = self._over_quota(online)
        retry = self._retry_at is not None and (news or now >= self._retry_at)
        if gone - self._tried_off or back or over or retry:
            await self._replace(gone, back, over)
        if self._retry_at is not None:
            wake_at = min(wake_at, self._retry_at)
        return wake_at

    def _gone_after(self, key: str, grace: float) -> float:
        """When the friend counts as gone: unseen for the grace period, and missed by this
        daemon for a while itself (a laptop back from a week away finds every friend's
        last-seen time old; those asleep right then are not gone for that)."""
        return max(self._gone_at[key] + grace, self._missed_at[key] + min(grace, WATCHED))

    def _presence(self, now: float) -> set[str]:
        """Friends online now; the time each other one was last seen, kept."""
        online, wall = set(), time.time()  # one reading for all: friends gone at once stay so
        rows = self._daemon.friends.presence()
        self._friends = len(rows)
        for row in rows:
            key = row["owner_id"]
            self._names[key] = row["name"]
            self._last_seen[key] = row.get("last_seen")
            if row.get("online"):
                online.add(key)
                for kept in (self._gone_at, self._missed_at, self._warned):
                    kept.pop(key, None)
                self._tried_off.discard(key)
                self._placed_off.discard(key)
            else:
                self._tried_back.discard(key)
                self._gone_at.setdefault(key, now - _since(row.get("last_seen"), wall))
                self._missed_at.setdefault(key, now)
        for key in set(self._gone_at) - {row["owner_id"] for row in rows}:  # unfriended
            self._gone_at.pop(key)
            self._missed_at.pop(key)
            self._tried_off.discard(key)
            self._placed_off.discard(key)
        return online

    def _over_quota(self, online: set[str]) -> dict[str, tuple[int, int]]:
        out = {}
        for owner_id, usage in self._daemon.friends.usage().items():
            key = owner_id.hex()
            if usage is None or key not in online or usage.used <= usage.quota:
                continue
            if self._tried_usage.get(key) != (usage.used, usage.quota):  # news since
                out[key] = (usage.used, usage.quota)
        return out

    def _warn(self, key: str, unseen: float) -> None:
        self._warned[key] = trio.current_time()
        self._events(ev.FriendUnseen(self._names.get(key, key), bytes.fromhex(key),
                                     round(unseen / DAY, 1), self._last_seen.get(key)))  # fmt: skip

    async def _replace(self, gone: set[str], back: set[str], over: dict) -> None:
        self.running = True
        try:
            result = await self._daemon.run_job("replace", {"gone": sorted(gone)}, source="upkeep")
        except P2PBackupError as exc:
            self.last_error = exc.message
            log.warning("re-placement: %s", exc.message)
            self._retry_at = trio.current_time() + RETRY
            return
        except Exception as exc:  # a bug: to the log, and the daemon serves on
            self.last_error = "internal error, see the log"
            log.error("re-placement failed", exc_info=exc)
            self._retry_at = trio.current_time() + RETRY
            return
        finally:
            self.running = False
            self.last_run = time.time()
        self.last_result, self.last_error = result, None
        self._tried_off |= gone
        whole = not (result.get("unplaced") or result.get("more"))
        self._placed_off = set(gone) if whole else set()
        self._tried_back |= back
        self._tried_usage.update(over)
        self._extras_for = set(result.get("extras_for", ()))
        # Left undone: what had no room, and extras of a friend back that stay (their
        # holder away, or the friend failed its proofs): tried again later.
        undone = result.get("unplaced") or result.get("short") or back & self._extras_for
        self._retry_at = trio.current_time() + RETRY if undone else None
        if result.get("more"):  # the rest at once, behind whatever job waits for the lock
            self._retry_at = trio.current_time()
        self._tell(result.get("problem"), result.get("advice"))

    def _tell(self, problem: str | None, advice: str | None) -> None:
        """What the person can do, said when it changes and once a day while it lasts."""
        now = trio.current_time()
        if advice is None:
            self._said = None
        elif (advice, problem) != self._said or now >= self._said_at + WARN_EVERY:
            self._said, self._said_at = (advice, problem), now
            self._events(ev.UpkeepNeeds(problem or "", advice))


async def _news(outbox: Outbox) -> None:
    """Until news that may change what there is to do."""
    while True:
        taken = await outbox.take()
        if any(m.get("event", {}).get("type") in NEWS for m in taken):
            return


def _unseen_words(unseen: list[dict[str, Any]], friends: int) -> str | None:
    """ "2 of 4 friends unseen for 9 days" (from the shortest to the longest, if they differ)."""
    if not unseen:
        return None
    spans = sorted({_span(u["seconds"]) for u in unseen}, key=lambda t: t[0])
    how_long = spans[0][1] if len(spans) == 1 else f"{spans[0][1]} to {spans[-1][1]}"
    who = unseen[0]["name"] if len(unseen) == 1 else f"{len(unseen)} of {friends} friends"
    return f"{who} unseen for {how_long}"


def _span(seconds: float) -> tuple[float, str]:
    for unit, size in (("day", DAY), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return count * size, f"{count} {unit}{'s' if count != 1 else ''}"
    return seconds, f"{int(seconds)} seconds"


def _warn_after(grace: float) -> float:
    return min(DAY, grace)


def _since(last_seen: str | None, now: float) -> float:
    """Seconds from an ISO time to ``now`` (0: never seen, counted from now)."""
    if not last_seen:
        return 0.0
    try:
        return max(0.0, now - datetime.fromisoformat(last_seen).timestamp())
    except ValueError:
        return 0.0


# ---- the job


async def replace(s: Session, gone: list[str] | None = None) -> dict:
    """The ``replace`` job: see engine/replace.py. ``gone``: friend keys unseen longer
    than the grace period (only those still away count)."""
    s.require_friends("re-placement")
    away = {key for key in gone or () if key in s.grid.friends and key not in s.grid.usage}
    names = {key: s.grid.name(key) for key in s.grid.friends}
    return await replace_round(s.grid.online, s.grid.usage, s.state, s.events, s.workers,
                               away, names, until=trio.current_time() + JOB_SLICE)  # fmt: skip


async def replace_round(
    stores: Mapping[str, ShareStore],
    usage: Mapping[str, Usage],
    state: BackupState,
    events: ev.EventSink,
    workers: trio.CapacityLimiter,
    gone: set[str],
    names: Mapping[str, str],
    until: float | None = None,
) -> dict:
    """One run, its news as events (RepairDone, SafetyChanged) and its result as JSON
    values, what to do where room is short among them."""
    before = _survives(state, gone)
    work = Replacement(stores, usage, state, events, workers, survive=PROMISED)
    outcome = await work.run(gone, names, until)
    after = _survives(state, gone)
    why = "friend unseen" if gone else "quota lowered" if outcome.moved_off else "friend back"
    if outcome.shares:
        events(ev.RepairDone(outcome.records, outcome.shares, why))
    if after != before:
        events(ev.SafetyChanged(after, PROMISED, why))
    advice = _advice(outcome, names)
    name = names.get
    return {
        "placed_again": outcome.records,
        "shares_stored": outcome.shares,
        "extras_dropped": outcome.dropped,
        "unplaced": outcome.unplaced,
        "damaged": outcome.damaged,
        "moved_off": {name(k, k): size for k, size in sorted(outcome.moved_off.items())},
        "short": {name(k, k): size for k, size in sorted(outcome.short.items())},
        "more_friends": outcome.more_friends,
        "more": outcome.more,  # stopped at its time limit: the daemon runs it again
        "distrusted": sorted(name(k, k) for k in outcome.distrusted),
        "extras": len(state.extras),
        "extras_for": sorted({friend for _, friend in state.extras.values()}),
        "survives_losing": after,
        "problem": _problem(outcome, gone, names) if advice else None,
        "advice": advice,  # what the person can do (the Replacer says it: UpkeepNeeds)
    }


def _survives(state: BackupState, gone: set[str]) -> int:
    """How many more friends every record survives losing, the ``gone`` ones lost."""
    left = (
        ({i: f for i, f in rec.placement.items() if f not in gone}, rec.descriptor.k)
        for rec in state.records.values()
    )
    return min((tolerable_losses(placed, k) for placed, k in left), default=PROMISED)


def _problem(outcome: Outcome, gone: set[str], names: Mapping[str, str]) -> str:
    records = f"{outcome.unplaced} record{'s' if outcome.unplaced != 1 else ''}"
    if gone:
        who = " and ".join(sorted(names.get(k, k) for k in gone))
        return f"{records} held by {who} could not be placed again: too little room."
    return f"{records} could not be moved to fit your friends' quotas: too little room."


def _advice(outcome: Outcome, names: Mapping[str, str]) -> str | None:
    """What to do, when the run could not do it all: "invite another friend, or ask bob
    for 2.0 GiB more"."""
    if not (outcome.short or outcome.more_friends):
        return None  # nothing for want of room (a friend failed mid-way: tried again)
    asks = [f"{names.get(k, k)} for {format_size(size)} more"
            for k, size in sorted(outcome.short.items(), key=lambda item: -item[1])]  # fmt: skip
    return "invite another friend" + (f", or ask {' and '.join(asks)}" if asks else "")
