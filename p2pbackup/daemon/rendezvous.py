"""The daemon's standing at its rendezvous point, kept up for as long as it runs.

Two things, both held by the point in memory and both with an end date:

- a registration (``p2pbackup/node/<peer id>``, 2 hours), so friends find this
  node's addresses after they changed;
- a relay slot (1 hour), so friends behind another NAT reach it through the point.

They were taken once, at start: a point that restarted forgot them and everyone
stayed cut off, silently. Here both are renewed at half their life, at once when
the connection to the point drops (a restart), and after a failure with a pause
from 1 s doubling to 2 minutes. Each change is logged and sent as an event
(``RendezvousChanged``); ``state()`` is what ``status`` shows.
"""

from __future__ import annotations

import logging
import time

import trio

from p2pbackup.daemon.node import Node
from p2pbackup.daemon.times import iso_time
from p2pbackup.engine import events as ev
from p2pbackup.errors import P2PBackupError
from p2pbackup.net import discovery, relay

log = logging.getLogger(__name__)

RENEW_AT = 0.5  # of the shorter life of the two
RETRY_FIRST, RETRY_MAX = 1.0, 120.0


class PointLink:
    """Registration and relay slot at the node's rendezvous point (``run`` keeps them)."""

    def __init__(
        self,
        node: Node,
        events: ev.EventSink = ev.ignore,
        retry_first: float = RETRY_FIRST,
        retry_max: float = RETRY_MAX,
    ) -> None:
        self._node = node
        self._events = events
        self._retry_first, self._retry_max = retry_first, retry_max
        self.registered = False
        self.reserved = False
        self.since: float | None = None  # when the standing last changed (wall clock)
        self.last_error: str | None = None
        self.changed = trio.Event()  # set at each change, then replaced (tests wait on it)
        self.tried = trio.Event()  # the first registration has succeeded or failed

    def state(self) -> dict | None:
        """What ``status`` shows; None without a rendezvous point."""
        address = self._node.profile.settings().get("rendezvous")
        if not address:
            return None
        return {
            "point": address,
            "registered": self.registered,
            "reserved": self.reserved,
            "since": iso_time(self.since),
            "last_error": self.last_error,
        }

    def _set(self, registered: bool, reserved: bool, error: str | None) -> None:
        if (registered, reserved, error) == (self.registered, self.reserved, self.last_error):
            return
        if (registered, reserved) != (self.registered, self.reserved):
            self.since = time.time()
        self.registered, self.reserved, self.last_error = registered, reserved, error
        if error:
            log.warning("rendezvous: registered %s, relay slot %s: %s",
                        registered, reserved, error)  # fmt: skip
        else:
            log.info("rendezvous: registered %s, relay slot %s", registered, reserved)
        self._events(ev.RendezvousChanged(registered, reserved, error or ""))
        self.changed.set()
        self.changed = trio.Event()

    async def run(self) -> None:
        """Keep both up until cancelled (the daemon stops)."""
        point = self._node.rendezvous()
        node_relay = self._node.relay
        if point is None or node_relay is None:
            self.tried.set()
            return
        host = self._node.host
        namespace = discovery.node_namespace(host.get_id())
        failures = 0
        with relay.PointWatch(host, point.peer_id) as watch:
            while True:
                registered = False
                try:
                    await discovery.register(host, point, namespace)
                    registered = True
                    slot_ends = await node_relay.reserve(point)
                except P2PBackupError as exc:
                    self._set(registered, False, exc.message)
                    self.tried.set()
                    delay = min(self._retry_max, self._retry_first * 2**failures)
                    failures += 1
                    await trio.sleep(delay)
                    continue
                failures = 0
                self._set(True, True, None)
                self.tried.set()
                life = min(discovery.TTL, max(1.0, slot_ends - time.time()))
                with trio.move_on_after(life * RENEW_AT):
                    await watch.until_gone()  # a slot serves only while connected
                    self._set(False, False, "The connection to the rendezvous point closed.")
