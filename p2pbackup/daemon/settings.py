"""What a settings window changes, as typed jobs: folders, excludes, the schedule, pause
and resume, the bandwidth limit, each friend's quota and name, unfriending (with what it
does to safety), and stopping the daemon; the first-run jobs are in firstrun.py.

The daemon is the only writer of profile state while it runs (docs/decisions.md, "One
writer of profile state"): the CLI and the app send these jobs to it, and the same code
runs in the client's process, under the profile's lock, only when no daemon runs. In the
daemon a job changes the daemon's own objects (its catalog, which its pool and storage
service ask for quotas; its scheduler; its friend set), so the next job sees the change.

Each job checks its parameters first (a ConfigError, and nothing changed) and returns the
new state as JSON values.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import unicodedata
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from p2pbackup.core import names
from p2pbackup.core.placement import tolerable_losses
from p2pbackup.core.sizes import parse_size
from p2pbackup.daemon import firstrun, upkeep
from p2pbackup.daemon.params import check as check_params
from p2pbackup.engine import events as ev
from p2pbackup.errors import ConfigError, IntegrityError, P2PBackupError, PeerError
from p2pbackup.storage.catalog import Catalog, Friend
from p2pbackup.storage.profile import Profile
from p2pbackup.storage.sharepool import stored_for

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from p2pbackup.daemon.node import Node
    from p2pbackup.daemon.session import Session

DEFAULT_INTERVAL = 3600  # seconds between scheduled backups until the user sets one
DEFAULT_OFFER = 20 * 1024**3  # bytes a new friend is given until the user sets another
STOP_GRACE = 0.2  # seconds a shutdown waits, so its own answer reaches the client first
MAX_NAME = 64  # a friend's name, as the head carries it
MAX_PATTERN = 1024


class Keeper:
    """Who holds the profile's state for one job: a running daemon (its node's catalog and
    pool, its scheduler, its job lock), a node, or this process alone."""

    def __init__(self, where: Any, events: ev.EventSink) -> None:
        self.events = events
        self.daemon: Any = None  # the Daemon (daemon/daemon.py) when it runs the job
        self.node: Node | None = None
        if isinstance(where, Profile):
            self.profile = where
        else:
            if hasattr(where, "node"):
                self.daemon, where = where, where.node
            self.node, self.profile = where, where.profile
        self._stack = ExitStack()  # what this process opened for the job, closed after it
        self._catalog: Catalog | None = None

    @property
    def catalog(self) -> Catalog:
        if self.node is not None:
            return self.node.catalog  # the one the daemon's pool and service ask for quotas
        if self._catalog is None:  # opened once per job, closed after it
            self._catalog = Catalog(self.profile.path("catalog.sqlite"))
            self._stack.callback(self._close_catalog)
        return self._catalog

    def _close_catalog(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def used(self, owner_id: bytes) -> int:
        """What this node keeps for ``owner_id``, by the pool's own accounting if it runs."""
        if self.node is not None:
            return self.node.pool.used(owner_id)
        return stored_for(self.profile.path("pool"), owner_id)

    def changed(self, what: str, reschedule: bool = False) -> None:
        """Tell the daemon's scheduler, and whoever watches, that ``what`` changed."""
        scheduler = getattr(self.daemon, "scheduler", None)
        if scheduler is not None:
            scheduler.changed(reschedule)
        self.events(ev.SettingsChanged(what))

    async def friends_changed(self) -> None:
        """The daemon's friend set (daemon/friends.py) forgets or renames at once."""
        refresh = getattr(getattr(self.daemon, "friends", None), "refresh", None)
        if refresh is not None and inspect.isawaitable(done := refresh()):
            await done

    async def safety_changed(self, s: Session) -> None:
        """What the daemon's ``status`` tells without friends (daemon/status.py), worked
        out again in this session; a failure here is no failure of the job, which is done."""
        facts = getattr(self.daemon, "facts", None)
        if facts is None:
            return
        from p2pbackup.daemon.jobs import status

        try:
            facts.remember(await status(s))
        except P2PBackupError as exc:
            log.warning("status after unfriend: %s", exc.message)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """Friends connected and the backup state open: in the daemon, behind its job lock."""
        from p2pbackup.daemon.session import session

        if self.daemon is not None:
            async with self.daemon.jobs_lock, session(self.node, self.events) as s:
                yield s
        elif self.node is not None:
            async with session(self.node, self.events) as s:
                yield s
        else:
            from p2pbackup.daemon.node import running_node

            self._close_catalog()  # the node opens its own, under the profile's lock
            async with running_node(self.profile) as node, session(node, self.events) as s:
                yield s


# ---- checks of what a client sent


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ConfigError(f"Give {what} as text.")
    return value.strip()


def _size(value: object, what: str) -> int:
    """Bytes from a number or from text such as 500M or 20G."""
    if isinstance(value, str):
        return parse_size(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"Give {what} as a number of bytes, or as text such as 500M or 20G.")
    if value < 0:
        raise ConfigError(f"{what.capitalize()} cannot be negative.")
    return int(value)


def _folder_path(value: object) -> str:
    path = _text(value, "the folder's path")
    if not os.path.isabs(os.path.expanduser(path)):  # the daemon's working folder is not yours
        raise ConfigError(f"Give the folder's full path, not {names.shown(path)!r}.")
    return os.path.normpath(os.path.expanduser(path))


def _friend(k: Keeper, text: object) -> Friend:
    return k.catalog.find(_text(text, "the friend's name or id"))  # ConfigError: unknown


def _one_of(add: object, remove: object) -> None:
    if add is not None and remove is not None:
        raise ConfigError("Add or remove, not both at once.")


# ---- the jobs


def show(k: Keeper) -> dict:
    """Every setting a window shows, in one answer."""
    settings = k.profile.settings()
    shown = {
        **_folders_state(settings),
        "excludes": list(settings.get("excludes", [])),
        "schedule": _schedule_state(k),
        "bandwidth": int(settings.get("bandwidth", 0)),
        "offer": default_offer(k.profile),
        "phrase_confirmed": bool(settings.get("phrase_confirmed", False)),
        "friends": [_friend_state(k, f) for f in k.catalog.friends()],
    }
    return shown


def _folders_state(settings: dict) -> dict:
    data = {"folders": list(settings.get("folders", []))}
    names.to_json(data, "folders")  # a folder whose name is not UTF-8: strict JSON all the same
    return data


def folders(k: Keeper, add: str | None = None, remove: str | None = None) -> dict:
    """The folders to back up; ``add`` or ``remove`` one (a full path)."""
    _one_of(add, remove)
    current = list(k.profile.settings().get("folders", []))
    if add is not None:
        path = _folder_path(add)
        if not os.path.isdir(path):
            raise ConfigError(f"{names.shown(path)} is not a folder.")
        if path not in current:
            current.append(path)
    elif remove is not None:
        path = _folder_path(remove)
        if path not in current:
            raise ConfigError(f"{names.shown(path)} is not backed up; the folders are listed "
                              "by 'p2pbackup folders'.")  # fmt: skip
        current.remove(path)
    if add is not None or remove is not None:
        k.profile.update_settings(folders=current)
        k.changed("folders")  # the scheduler looks again: a first folder starts it
    return _folders_state({"folders": current})


def excludes(k: Keeper, add: str | None = None, remove: str | None = None) -> dict:
    """Names or paths a backup skips; ``add`` or ``remove`` one pattern."""
    _one_of(add, remove)
    current = list(k.profile.settings().get("excludes", []))
    if add is not None:
        pattern = _text(add, "the pattern")
        if len(pattern) > MAX_PATTERN:
            raise ConfigError(f"A pattern is at most {MAX_PATTERN} characters.")
        if pattern not in current:
            current.append(pattern)
    elif remove is not None:
        pattern = _text(remove, "the pattern")
        if pattern not in current:
            raise ConfigError(f"{pattern!r} is not excluded.")
        current.remove(pattern)
    if add is not None or remove is not None:
        k.profile.update_settings(excludes=current)
        k.changed("excludes")
    return {"excludes": current}


def _schedule_state(k: Keeper) -> dict:
    scheduler = getattr(k.daemon, "scheduler", None)
    if scheduler is not None:
        return {**scheduler.status(), "daemon": True}
    settings = k.profile.settings()
    return {
        "interval": float(settings.get("schedule", DEFAULT_INTERVAL)),
        "paused": bool(settings.get("paused", False)),
        "next_run": None,  # nothing runs on schedule until a daemon does
        "last_error": None,
        "daemon": False,
    }


def schedule(k: Keeper, interval: float | None = None) -> dict:
    """How often the daemon backs up: ``interval`` seconds (0: never); none: as it is."""
    if interval is not None:
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise ConfigError("Give the interval as a number of seconds (0: never).")
        if not math.isfinite(interval) or interval < 0:
            raise ConfigError("The interval must be 0 (never) or a positive number of seconds.")
        k.profile.update_settings(schedule=float(interval))
        k.changed("schedule", reschedule=True)
    return _schedule_state(k)


def pause(k: Keeper) -> dict:
    """No scheduled backups until ``resume``."""
    k.profile.update_settings(paused=True)
    k.changed("schedule")
    return _schedule_state(k)


def resume(k: Keeper) -> dict:
    k.profile.update_settings(paused=False)
    k.changed("schedule")
    return _schedule_state(k)


def bandwidth(k: Keeper, limit: int | str | None = None) -> dict:
    """The upload limit in bytes per second for all friends together (0: none)."""
    if limit is not None:
        off = isinstance(limit, str) and limit.strip().lower() in ("off", "none")
        rate = 0 if off else _size(limit, "the limit")
        k.profile.update_settings(bandwidth=rate)
        k.changed("bandwidth")  # the next backup reads it
    return {"bandwidth": int(k.profile.settings().get("bandwidth", 0))}


def default_offer(profile: Profile) -> int:
    """The space a new friend is given when an invite or a join names none."""
    return int(profile.settings().get("offer", DEFAULT_OFFER))


def offer(k: Keeper, size: int | str | None = None) -> dict:
    """The space each new friend is given by default (the first-run wizard asks it);
    a friend's own quota is changed with ``quota``."""
    if size is not None:
        k.profile.update_settings(offer=_size(size, "the space"))
        k.changed("offer")
    return {"offer": default_offer(k.profile)}


def _friend_state(k: Keeper, friend: Friend) -> dict:
    kept = k.used(friend.owner_id)
    return {
        "name": friend.name,
        "owner_id": friend.owner_id.hex(),
        "i_give": friend.i_give,
        "i_store_for_them": kept,
        "over_quota": kept > friend.i_give,  # nothing deleted; nothing new of theirs fits
        "they_give": friend.they_give,
    }


async def quota(k: Keeper, friend: str, size: int | str) -> dict:
    """What I give ``friend``: their next STAT, and every share they send, sees it."""
    who, room = _friend(k, friend), _size(size, "the quota")
    k.catalog.set_quota(who.owner_id, room)
    k.changed("quota")
    await k.friends_changed()
    return _friend_state(k, k.catalog.friend(who.owner_id))


async def rename(k: Keeper, friend: str, name: str) -> dict:
    """Call ``friend`` ``name`` on this device."""
    who, new = _friend(k, friend), _text(name, "the new name")
    if len(new) > MAX_NAME or any(unicodedata.category(c).startswith("C") for c in new):
        raise ConfigError(f"A friend's name is at most {MAX_NAME} printable characters.")
    if any(f.name == new and f.owner_id != who.owner_id for f in k.catalog.friends()):
        raise ConfigError(f"Another friend is called {new!r} already.")
    k.catalog.rename_friend(who.owner_id, new)
    k.changed("friends")
    await k.friends_changed()
    return {**_friend_state(k, k.catalog.friend(who.owner_id)), "old_name": who.name}


async def unfriend(k: Keeper, friend: str, dry_run: bool = False) -> dict:
    """Stop being friends (daemon/unfriend.py), and what it does to safety: how many
    friends remain, and how many the latest backup then survives losing. With
    ``dry_run``, only what it would do."""
    from p2pbackup.daemon.unfriend import unfriend as unfriend_in

    if not isinstance(dry_run, bool):
        raise ConfigError("dry_run is true or false.")
    key = _friend(k, friend).owner_id.hex()
    async with k.session() as s:
        who = s.node.catalog.friend(bytes.fromhex(key))
        if who is None:  # dropped by the head the session just read: unfriended elsewhere
            raise ConfigError(f"{friend!r} is no longer a friend.")
        if dry_run:
            return {"name": who.name, "dry_run": True, **await _safety(s, key)}
        done = await unfriend_in(s, key)  # the pool drops them through its own accounting
        safety = await _safety(s, key)
        await k.safety_changed(s)
    await k.friends_changed()
    k.changed("friends")
    return {**done, "dry_run": False, **safety}


async def _safety(s: Session, without: str) -> dict:
    """What remains without friend ``without``: friends, and how many of them the latest
    backup of this device survives losing (None: no backup, or it cannot be read now)."""
    left = sum(1 for key in s.grid.friends if key != without)
    tips = sorted((await s.head()).tips, key=lambda r: (r.created_at_ns, r.snapshot_id))
    mine = [t for t in tips if t.device == s.device] or tips
    out = {"friends_left": left, "latest_survives_losing": None, "latest_records_short": 0}
    if not mine:
        return out
    try:
        needed = (await s.manifest(mine[-1])).record_ids()
    except (IntegrityError, PeerError):  # friends away: say nothing rather than guess
        return out
    losses = []
    for rid, record in s.state.records.items():
        if rid in needed:
            kept = {i: f for i, f in record.placement.items() if f != without}
            out["latest_records_short"] += len(kept) < record.descriptor.k
            losses.append(tolerable_losses(kept, record.descriptor.k))
    out["latest_survives_losing"] = min(losses) if losses else None
    return out


def shutdown(k: Keeper) -> dict:
    """Stop the daemon cleanly, once this answer is on its way."""
    import trio  # only a daemon gets here; the CLI's settings commands do without it

    scope = getattr(k.daemon, "cancel_scope", None)
    if scope is None:
        raise ConfigError("No daemon runs on this profile: there is nothing to stop.")
    scope.deadline = min(scope.deadline, trio.current_time() + STOP_GRACE)
    return {"stopping": True}


SETTINGS_JOBS: dict[str, Callable[..., Any]] = {
    "settings": show,
    "folders": folders,
    "excludes": excludes,
    "schedule": schedule,
    "pause": pause,
    "resume": resume,
    "bandwidth": bandwidth,
    "offer": offer,
    "quota": quota,
    "rename": rename,
    "unfriend": unfriend,
    "shutdown": shutdown,
    "upkeep": upkeep.job,  # audits, re-placement, retention: daemon/upkeep.py
    **firstrun.JOBS,
}
# Jobs that hold the profile's lock themselves (a node), or need none: no identity yet.
_OWN_LOCK = frozenset({"unfriend", *firstrun.NO_PROFILE})


async def run_settings_job(where: Any, name: str, params: dict, events: ev.EventSink) -> Any:
    """Run settings job ``name`` with JSON parameters, for the daemon (``where`` is it), a
    node, or this process alone (``where`` is the Profile: no daemon runs on it)."""
    if name not in SETTINGS_JOBS:
        raise ConfigError(f"There is no settings job called {name!r}.")
    job = SETTINGS_JOBS[name]
    k = Keeper(where, events)
    check_params(name, job, k, **params)
    with k._stack:
        if k.node is None and name not in _OWN_LOCK:
            # No daemon: this process writes, and no daemon starts meanwhile.
            k._stack.enter_context(k.profile.require().lock())
        result = job(k, **params)
        return await result if inspect.isawaitable(result) else result
