"""Quota care: the owner is told before a friend's quota for them fills up, and before
what they give a friend runs out, as ``QuotaNearlyFull`` events on the daemon's bus
(``watch`` clients, the app's notifications).

"theirs": what a friend said it stores for me (its last STAT, kept by the daemon's
friend set, daemon/friends.py) against the quota it gives me. "mine": what my pool
keeps for a friend against what I give them. Each is told once per crossing of
upkeep's ``quota_warn``: not on every STAT while it stays above, and again only once
it has gone back below by a margin (so use wavering at the line is told once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2pbackup.engine import events as ev

if TYPE_CHECKING:
    from p2pbackup.daemon.node import Node

MARGIN = 0.02  # of the quota: how far below the line use must go before it is armed again


class QuotaWatch:
    def __init__(self, node: Node, events: ev.EventSink) -> None:
        self._node = node
        self._events = events
        self._told: dict[tuple[bytes, str], tuple[int, int]] = {}  # above the line: use, quota

    def state(self) -> list[dict[str, Any]]:
        """The quotas told nearly full and not yet well below the line, as last read."""
        names = {f.owner_id: f.name for f in self._node.catalog.friends()}
        return [
            {"name": names.get(owner, owner.hex()[:12]), "whose": whose, "used": used,
             "quota": quota}
            for (owner, whose), (used, quota) in sorted(self._told.items())
        ]  # fmt: skip

    def check(self, warn_at: float) -> list[ev.QuotaNearlyFull]:
        """Look at every quota now; tell (and return) those that crossed ``warn_at``."""
        told = []
        for friend, whose, used, quota in self._readings():
            key = (friend.owner_id, whose)
            if quota > 0 and used >= warn_at * quota:
                if key not in self._told:
                    event = ev.QuotaNearlyFull(friend.name, friend.owner_id, whose, used, quota)
                    self._events(event)
                    told.append(event)
                self._told[key] = (used, quota)
            elif key in self._told and (quota <= 0 or used < (warn_at - MARGIN) * quota):
                del self._told[key]  # well below again: the next crossing is told
            elif key in self._told:
                self._told[key] = (used, quota)  # just under the line: still told, as it is
        return told

    def _readings(self):
        """(friend, whose, used, quota) for every quota known now; a friend offline gives
        no reading of theirs, and keeps what was told."""
        usage = {}
        friends = getattr(self._node, "friends", None)
        if friends is not None and callable(getattr(friends, "usage", None)):
            usage = friends.usage()
        for friend in self._node.catalog.friends():
            theirs = usage.get(friend.owner_id)
            if theirs is not None:
                yield friend, "theirs", theirs.used, theirs.quota
            yield friend, "mine", self._node.pool.used(friend.owner_id), friend.i_give
